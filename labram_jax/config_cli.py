"""Command-line config flags shared by `labram_jax.main` and `labram_jax.plan`: absl parsing of
`--config=configs/X.py[:arg] --config.key=value ...` with one-line errors for unknown fields, and config files
importable from any directory."""

from __future__ import annotations

import os
import re
import sys

from absl import app


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with an unknown `--config.<field>` reported as a one-line error.

    ml_collections raises KeyError / AttributeError from inside absl's parser for an override of a field the
    config does not have (its message, sometimes escaped twice, names the field and may suggest one); absl
    would print a traceback.
    """
    _importable_recipes(argv)
    try:
        return app.parse_flags_with_usage(argv)
    except (KeyError, AttributeError) as err:
        text = str(err.args[0]) if err.args else str(err)
        for _ in range(2):
            text = text.replace("\\n", "\n").replace("\\'", "'")
        suggestion = re.search(r'Did you mean "([^"]+)" instead of "([^"]+)"', text)
        key = suggestion.group(2) if suggestion else re.sub(r"[\"']", "", text.splitlines()[0]).split()[-1]
        flag = next(
            (a.split("=")[0] for a in argv[1:] if a.startswith("--config.") and key in a.split("=")[0].split(".")),
            "a --config.<field> override",
        )
        hint = f' Did you mean "{suggestion.group(1)}"?' if suggestion else ""
        elsewhere = [f"--config.{p}" for p in _fields_named(argv, key) if f"--config.{p}" != flag]
        if elsewhere:
            hint += f" The config has it as {' and '.join(elsewhere)}."
        print(
            f"error: {flag}: the config has no field {key!r} there.{hint} The fields are those of the config "
            "file (every field: docs/configuration.md).",
            file=sys.stderr,
        )
        sys.exit(2)


def _config_argument(argv: list[str]) -> str | None:
    args = argv[1:]
    value = next((a.split("=", 1)[1] for a in args if a.startswith("--config=")), None)
    if value is None and "--config" in args[:-1]:
        value = args[args.index("--config") + 1]
    return value


def _importable_recipes(argv: list[str]) -> None:
    """Config files import `configs.common`: put the folder holding `configs/` on the import path, so that
    `--config=/path/to/repo/configs/base.py` works from any directory."""
    value = _config_argument(argv)
    if not value:
        return
    folder = os.path.dirname(os.path.abspath(os.path.expanduser(value.partition(":")[0])))
    if os.path.basename(folder) == "configs" and os.path.isfile(os.path.join(folder, "common.py")):
        root = os.path.dirname(folder)
        if root not in sys.path:
            sys.path.insert(0, root)


def _fields_named(argv: list[str], key: str) -> list[str]:
    """Dotted paths of every field called `key` in the config file `--config` names (best effort: [] when
    the file cannot be loaded here), so that `--config.data_dir` can point at `--config.data.data_dir`."""
    import importlib.util

    import ml_collections

    spec_arg = _config_argument(argv)
    if not spec_arg:
        return []
    path, _, config_arg = spec_arg.partition(":")
    try:
        spec = importlib.util.spec_from_file_location("_labram_config_for_hint", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        config = module.get_config(config_arg) if config_arg else module.get_config()
    except Exception:  # noqa: BLE001 - only a hint; the error line is printed either way
        return []
    found = []

    def walk(node: ml_collections.ConfigDict, prefix: str) -> None:
        for name, value in node.items():
            if name == key:
                found.append(prefix + name)
            if isinstance(value, ml_collections.ConfigDict):
                walk(value, f"{prefix}{name}.")

    walk(config, "")
    return found
