"""`python -m bench.codebook` trains tokenizer variants with the real loop and reports their codebook health."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench import codebook

pytestmark = pytest.mark.slow  # whole training runs or subprocesses: `-m "not slow"` skips them

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = [
    "--config.tokenizer.width=100",
    "--config.tokenizer.num_heads=4",
    "--config.tokenizer.encoder_depth=1",
    "--config.tokenizer.decoder_depth=1",
    "--config.tokenizer.num_codes=16",
    "--config.tokenizer.code_dim=8",
    "--config.optim.batch_size=8",
    "--config.optim.epochs=1",
    "--config.max_steps=4",
    "--config.optim.warmup_epochs=0",
    "--config.optim.warmup_steps=2",
    "--config.log.every_steps=1",
    "--config.log.progress=False",
    "--config.data.train=demo/tuab:train",
    "--config.data.validation=demo/tuab:validation",
]


def test_remedies_sweep_reports_health_of_each_variant(demo_data_dir, tmp_path):
    md = tmp_path / "table.md"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.codebook",
            "--sweep=remedies",
            "--only=reference,warm-up + restart",
            f"--workdir={tmp_path / 'runs'}",
            f"--markdown={md}",
            f"--config.data.data_dir={demo_data_dir}",
            *TINY,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout)
    assert list(report["variants"]) == ["reference", "warm-up + restart"]
    for name, variant in report["variants"].items():
        v = variant["validation"]
        for key in ("used_codes", "perplexity", "z_cos", "rec_loss", "rec_loss_one_code", "amp_info_gain"):
            assert isinstance(v[key], (int, float)), (name, key)
        assert variant["steps"] == 4 and variant["z_cos_trajectory"]
    assert "restarts" not in report["variants"]["reference"]["validation"]  # the reference has no restart state
    assert "restarts" in report["variants"]["warm-up + restart"]["validation"]
    baselines = report["target_baselines"]
    assert baselines["per_window_channel_mean"] <= baselines["per_channel_mean"] <= baselines["mean_target"]
    assert "| warm-up + restart |" in md.read_text()


def test_sweep_overrides_are_relative_to_the_command_line():
    import ml_collections

    config = ml_collections.ConfigDict({"optim": {"lr": 3e-3}, "tokenizer": {"beta": 1.0}})
    out = codebook.apply(config, {"optim.lr": "x1/3", "tokenizer.beta": 0.25})
    assert abs(out.optim.lr - 1e-3) < 1e-12 and out.tokenizer.beta == 0.25 and config.optim.lr == 3e-3
