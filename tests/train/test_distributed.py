"""The same loop on 1 device, on 8 fake devices (data x fsdp x tensor) and on 2 processes gives the same losses."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from labram_jax.train.loop import run
from labram_jax.train.metric_writers import read_metrics
from tests.train.run_tiny import quantizer_state
from tests.train.tiny_configs import tiny_config

pytestmark = pytest.mark.slow  # whole training runs or subprocesses: `-m "not slow"` skips them

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _single(stage: str, data_dir: str, workdir: str) -> tuple[list[float], dict, dict]:
    config = tiny_config(stage, data_dir, steps=3)
    config.data.shuffle = False
    results = run(config, workdir)
    losses = [r["loss"] for r in read_metrics(workdir) if r["split"] == "train"]
    return losses, results.get("test", {}), quantizer_state(workdir) if stage == "tokenizer" else {}


def _parse(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, stdout[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


@pytest.mark.parametrize("stage", ["finetune_tuab", "tokenizer"])
def test_eight_fake_devices_match_one(stage, demo_data_dir, tmp_path):
    losses, test, quantizer = _single(stage, demo_data_dir, str(tmp_path / "one"))
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=8")
    out = subprocess.run(
        [sys.executable, "-m", "tests.train.run_tiny", stage, demo_data_dir, str(tmp_path / "eight"), "2,2,2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    result = _parse(out.stdout)
    assert result["devices"] == 8
    np.testing.assert_allclose(result["losses"], losses, rtol=2e-5)
    for label, metrics in test.items():
        for key, value in metrics.items():
            assert result["test"][label][key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
    if stage == "tokenizer":
        # k-means, the EMA and the dead-code restarts (drawn from the global batch) agree across devices.
        assert quantizer["restarts"] > 0 and bool(quantizer["initted"])
        assert result["quantizer"]["restarts"] == quantizer["restarts"]
        np.testing.assert_allclose(result["quantizer"]["codebook"], quantizer["codebook"], atol=2e-5)
        np.testing.assert_allclose(result["quantizer"]["restart_usage"], quantizer["restart_usage"], atol=1e-6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one(demo_data_dir, tmp_path):
    losses, test, _ = _single("finetune_tuab", demo_data_dir, str(tmp_path / "one"))
    port = _free_port()
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.train.run_tiny",
                "finetune_tuab",
                demo_data_dir,
                str(tmp_path / "two"),
                "-1,1,1",
                str(i),
                "2",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-4000:]
    result = _parse(outs[0][0])
    assert result["devices"] == 2
    np.testing.assert_allclose(result["losses"], losses, rtol=2e-5)
    # Evaluation over two processes sees every test example exactly once.
    for label, metrics in test.items():
        assert result["test"][label]["examples"] == metrics["examples"]
        for key, value in metrics.items():
            assert result["test"][label][key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
