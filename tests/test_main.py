"""The entry point as a user runs it."""

import os
import re
import subprocess
import sys
import time

import pytest

EXPECTED = {
    "configs/base.py": ["9,153,520", "8,579,408", "5,821,142"],
    "configs/large.py": ["52,989,504", "8,579,408", "46,261,126"],
    "configs/huge.py": ["383,000,896", "8,579,408", "369,240,518"],
    "configs/tokenizer.py": ["8,579,408"],
}


def _run(*args):
    return subprocess.run([sys.executable, "-m", "labram_jax.main", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("config", sorted(EXPECTED))
def test_dry_run_prints_official_counts_quickly(config):
    start = time.monotonic()
    result = _run(f"--config={config}", "--dry_run")
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    for count in EXPECTED[config]:
        assert re.search(rf"\b{count}\b parameters", result.stdout), result.stdout
    assert "DIFFERS" not in result.stdout
    assert elapsed < 60


def test_recipes_load_from_any_directory(tmp_path):
    """Config files import `configs.common`; an absolute --config path works outside the repository."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cmd = [sys.executable, "-m", "labram_jax.main", f"--config={root}/configs/large.py", "--dry_run"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # labram_jax from the install only
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert re.search(r"\b52,989,504\b parameters", result.stdout), result.stdout


def test_training_needs_a_workdir():
    result = _run("--config=configs/base.py")
    assert result.returncode != 0
    assert "--workdir" in result.stderr


@pytest.mark.parametrize(
    "override,named,suggested",
    [
        ("--config.modle.size=large", "'modle'", '"model"'),  # top-level section
        ("--config.optim.bach_size=8", "'bach_size'", '"batch_size"'),  # nested field
        ("--config.data_dir=/tmp/x", "'data_dir'", "--config.data.data_dir"),  # a field of another section
        ("--config.optim.data_dir=/tmp/x", "'data_dir'", "--config.data.data_dir"),
        ("--config.optim.no_such_field=1", "'no_such_field'", None),  # nothing close, nowhere else
    ],
)
def test_config_typo_is_one_line_naming_the_flag_and_field(override, named, suggested):
    result = _run("--config=configs/base.py", override, "--dry_run")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1, result.stderr
    assert override.split("=")[0] in error[0] and named in error[0]
    assert (suggested in error[0]) if suggested else "Did you mean" not in error[0]
