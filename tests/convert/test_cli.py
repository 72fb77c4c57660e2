"""`python -m labram_jax.convert` end to end, in a fresh interpreter, on a synthetic official Base file."""

import json
import subprocess
import sys

import pytest

from labram_jax import checkpoints
from tests.convert import official_files as files

pytest.importorskip("torch")


def test_cli_converts_and_writes_the_summary(tmp_path):
    files.save_pth(files.pattern_state_dict(files.FINETUNE_BASE), tmp_path / "labram-base-tuev.pth")
    out = tmp_path / "converted"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "labram_jax.convert",
            "--checkpoint",
            str(tmp_path / "labram-base-tuev.pth"),
            "--out",
            str(out),
            "--kind",
            "finetune",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "kind finetune (labram_base_patch200_200, 6-output head), 5,821,142 parameters" in run.stdout
    report = json.loads((out / "conversion.json").read_text())
    assert report["counts"] == {"file_tensors": 223, "mapped": 223, "let_go": 0, "initialised": 0}
    assert report["source"]["wrapper"] == "model"
    meta = checkpoints.read_meta(out)
    spec = meta["model_spec"]
    assert (meta["kind"], spec["num_outputs"], spec["transformer"]["size"]) == ("finetune", 6, "base")
