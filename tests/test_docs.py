"""The documentation tells the truth: what README.md and docs/*.md name exists.

* Every `python -m <module>` command (fenced shell blocks, with `\\` continuations and commented-out
  alternatives, and inline code spans) names a module: ours answer `--help` (argparse exits 0; absl prints
  its usage and exits 1 by design, so that counts too), others must be one of `EXTERNAL_MODULES`. A
  `python <path>.py` script must exist.
* A command with `--config=configs/X.py[:arg]` (any command: `launch/local.sh` passes it on) loads that
  config, and each of its `--config.a.b=value` overrides names a field or section of it (a pipeline config's
  stages are `stages.<name>.`). Any other `--config.a.b` (prose, commands without a config file) must exist
  in at least one stage's default config. Code spans starting with `error:` quote error messages about
  misspelt fields and are skipped.
* Every `configs/*.py` path mentioned exists (`{a,b}` expanded, globs match something), and every
  `configs/X.py:arg` loads with its argument.
* docs/configuration.md is what `python -m labram_jax.config_fields` generates.
* `mkdocs build --strict` succeeds (skipped without mkdocs and its material theme: `pip install -e '.[docs]'`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import os
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import ml_collections
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
OUR_PACKAGES = ("labram_jax", "tfds_builders", "bench")
EXTERNAL_MODULES = {"pip", "venv", "pytest", "mkdocs"}
SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console"}
ABSL_HELP = "Try --helpfull"  # absl's --help: usage, then exit status 1

FENCE = re.compile(
    r"^[ \t]*(?P<fence>```+|~~~+)(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^[ \t]*(?P=fence)[ \t]*$", re.M | re.S
)
SPAN = re.compile(r"(?<!`)`([^`]+)`(?!`)")
FIELD = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
CONFIG_FIELD = re.compile(rf"--config\.({FIELD})")
CONFIG_FILE_FLAG = re.compile(r"^--config=(configs/[\w.-]+\.py)(?::(\S+))?$")
CONFIG_PATH = re.compile(r"configs/[\w{},*.-]*\.py")
CONFIG_WITH_ARG = re.compile(r"(configs/\w+\.py):([\w,]+)")
PYTHON_MODULE = re.compile(r"(?:^|\s)python3?\s+-m\s+([A-Za-z_][\w.]*)(.*)$")
PYTHON_SCRIPT = re.compile(r"(?:^|\s)python3?\s+([\w./-]+\.py)\b")


@dataclasses.dataclass(frozen=True)
class Command:
    doc: str
    text: str  # one shell command, continuations joined

    @property
    def module(self) -> str | None:
        m = PYTHON_MODULE.search(self.text)
        return m.group(1) if m else None

    @property
    def tokens(self) -> list[str]:
        try:
            tokens = shlex.split(self.text)
        except ValueError:  # an unbalanced quote in an illustrative command
            tokens = self.text.split()
        return [t.strip("[]") for t in tokens]


def _shell_commands(body: str) -> list[str]:
    """The commands of a shell block: comment markers dropped (commented-out alternatives are commands too),
    trailing comments cut, `\\` continuations joined, `&&` / `;` / `|` chains split."""
    lines = []
    for raw in body.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            line = line.lstrip("#").strip()
        lines.append(re.sub(r"\s+#\s.*$", "", line))
    joined = "\n".join(lines).replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        commands += [c.strip() for c in re.split(r"&&|\|\||;|\|", line) if c.strip()]
    return commands


@cache
def doc_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@cache
def commands() -> tuple[Command, ...]:
    out = []
    for path in DOCS:
        text = doc_text(path)
        name = path.relative_to(ROOT).as_posix()
        for block in FENCE.finditer(text):
            if block.group("lang") in SHELL_LANGUAGES:
                out += [Command(name, c) for c in _shell_commands(block.group("body"))]
        for span in SPAN.finditer(FENCE.sub("", text)):
            code = " ".join(span.group(1).split())
            if PYTHON_MODULE.search(code):
                out += [Command(name, c) for c in _shell_commands(code)]
    return tuple(out)


def _modules() -> list[str]:
    return sorted({c.module for c in commands() if c.module})


def _ours(module: str) -> bool:
    return module.split(".")[0] in OUR_PACKAGES


# -- configs ----------------------------------------------------------------------------------------------
@cache
def load_config(path: str, arg: str | None = None) -> ml_collections.ConfigDict:
    spec = importlib.util.spec_from_file_location(f"_docs_config_{abs(hash((path, arg)))}", ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg) if arg else module.get_config()


def config_paths(config: ml_collections.ConfigDict, prefix: str = "") -> set[str]:
    """Every section and field path, a pipeline's `stages.<name>.` included."""
    paths = set()
    for name, value in config.items():
        paths.add(prefix + name)
        if isinstance(value, ml_collections.ConfigDict):
            paths |= config_paths(value, f"{prefix}{name}.")
    return paths


@cache
def default_paths() -> frozenset[str]:
    from labram_jax import config_fields

    return frozenset(
        itertools.chain.from_iterable(config_paths(config_fields.load_config(p)) for _, p in config_fields.STAGES)
    )


def _expand(path: str) -> list[str]:
    """`configs/demo_{a,b}.py` -> both names."""
    m = re.search(r"\{([^{}]*)\}", path)
    if not m:
        return [path]
    return [e for part in m.group(1).split(",") for e in _expand(path[: m.start()] + part + path[m.end() :])]


def _without_error_quotes(text: str) -> str:
    return re.sub(r"`error:[^`]*`", "", text)


# -- tests ------------------------------------------------------------------------------------------------
def test_the_parser_sees_the_commands():
    modules = _modules()
    assert {"labram_jax.main", "labram_jax.convert", "labram_jax.embed", "tfds_builders.build"} <= set(modules)
    assert any(CONFIG_FILE_FLAG.match(t) for c in commands() for t in c.tokens)


@pytest.mark.slow
@pytest.mark.parametrize("module", [m for m in _modules() if _ours(m)])
def test_module_answers_help(module):
    assert importlib.util.find_spec(module) is not None, f"python -m {module}: no such module"
    env = dict(os.environ, JAX_PLATFORMS="cpu", LABRAM_JAX_MALLOC="off")
    proc = subprocess.run(
        [sys.executable, "-m", module, "--help"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    ok = proc.returncode == 0 or (proc.returncode == 1 and ABSL_HELP in proc.stdout + proc.stderr)
    assert ok and "Traceback" not in proc.stderr, (
        f"python -m {module} --help exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    )


def test_other_modules_are_known():
    unknown = sorted({m for m in _modules() if not _ours(m)} - EXTERNAL_MODULES)
    assert not unknown, f"python -m of modules neither ours nor in EXTERNAL_MODULES: {unknown}"


def test_scripts_exist():
    missing = sorted(
        {f"{c.doc}: {s}" for c in commands() for s in PYTHON_SCRIPT.findall(c.text) if not (ROOT / s).is_file()}
    )
    assert not missing, f"python <script> of scripts that do not exist: {missing}"


def test_command_overrides_exist_in_their_config():
    problems, checked = [], 0
    for command in commands():
        tokens = command.tokens
        files = [m for m in map(CONFIG_FILE_FLAG.match, tokens) if m]
        if not files:
            continue
        path, arg = files[-1].group(1), files[-1].group(2)
        paths = config_paths(load_config(path, arg))
        for token in tokens:
            m = re.match(rf"--config\.({FIELD})(=|$)", token)
            if m:
                checked += 1
                if m.group(1) not in paths:
                    problems.append(f"{command.doc}: --config.{m.group(1)} is not a field of {path}: {command.text}")
    assert checked, "no --config.<field> override found next to a --config=configs/X.py"
    assert not problems, "\n".join(problems)


def test_every_config_field_mentioned_exists_in_a_default_config():
    known = default_paths()
    problems = sorted(
        {
            f"{path.relative_to(ROOT).as_posix()}: --config.{field}"
            for path in DOCS
            for field in CONFIG_FIELD.findall(_without_error_quotes(doc_text(path)))
            if field not in known
        }
    )
    assert not problems, "fields no default config has:\n" + "\n".join(problems)


def test_config_files_mentioned_exist():
    problems = []
    for path in DOCS:
        for mention in set(CONFIG_PATH.findall(doc_text(path))):
            for name in _expand(mention):
                found = list(ROOT.glob(name)) if "*" in name else [ROOT / name] if (ROOT / name).is_file() else []
                if not found:
                    problems.append(f"{path.relative_to(ROOT).as_posix()}: {name}")
    assert not problems, "config files that do not exist:\n" + "\n".join(problems)


def test_config_arguments_mentioned_load():
    seen = {(m.group(1), m.group(2)) for path in DOCS for m in CONFIG_WITH_ARG.finditer(doc_text(path))}
    assert seen
    for path, arg in sorted(seen):
        try:
            load_config(path, arg)
        except Exception as err:  # noqa: BLE001 - any failure to build the config is the finding
            pytest.fail(f"{path}:{arg} is mentioned in the docs but does not load: {err}")


def test_configuration_reference_is_generated():
    from labram_jax import config_fields

    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert page == config_fields.render(), (
        "docs/configuration.md is stale: python -m labram_jax.config_fields --out docs/configuration.md"
    )


def test_every_default_field_is_documented():
    from labram_jax import config_fields

    config_fields.check_documented(config_fields.stage_defaults())
    with pytest.raises(config_fields.UndocumentedFieldError, match="optim.new_knob"):
        config_fields.check_documented([*config_fields.stage_defaults(), "optim.new_knob"])


@pytest.mark.slow
def test_site_builds_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is not installed: pip install -e '.[docs]'")
    pytest.importorskip("material", reason="mkdocs-material is not installed: pip install -e '.[docs]'")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
