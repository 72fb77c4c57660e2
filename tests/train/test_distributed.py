"""The same loop on 1 device, on 8 fake devices (data x fsdp x tensor) and on 2 processes gives the same losses;
checkpoints move between meshes and process counts (resume, restore, fine-tune)."""

from __future__ import annotations

import json
import os
import shutil
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


def _single(stage: str, data_dir: str, workdir: str, steps: int = 3, **fields) -> tuple[list[float], dict, dict]:
    config = tiny_config(stage, data_dir, steps=steps)
    config.data.shuffle = False
    config.update(fields)
    results = run(config, workdir)
    losses = [r["loss"] for r in read_metrics(workdir) if r["split"] == "train"]
    return losses, results.get("test", {}), quantizer_state(workdir) if stage == "tokenizer" else {}


def _parse(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, stdout[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


def _on_eight_devices(*args: str) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=8")
    cmd = [sys.executable, "-m", "tests.train.run_tiny", *args]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]
    return _parse(out.stdout)


def _params(workdir: str) -> dict:
    import jax

    import labram_jax

    flat = jax.tree_util.tree_flatten_with_path(labram_jax.load(workdir).variables["params"])[0]
    return {jax.tree_util.keystr(k): np.asarray(v) for k, v in flat}


@pytest.fixture(scope="module")
def eight_device_runs(demo_data_dir, tmp_path_factory) -> dict[str, tuple[str, dict]]:
    """`{stage: (workdir, result)}` of 3 steps on 8 fake devices (2 x 2 x 2), shared by the tests below."""
    root = tmp_path_factory.mktemp("eight")
    runs = {}
    for stage in ("finetune_tuab", "tokenizer"):
        workdir = str(root / stage)
        runs[stage] = (workdir, _on_eight_devices(stage, demo_data_dir, workdir, "2,2,2"))
    return runs


@pytest.mark.parametrize("stage", ["finetune_tuab", "tokenizer"])
def test_eight_fake_devices_match_one(stage, demo_data_dir, eight_device_runs, tmp_path):
    losses, test, quantizer = _single(stage, demo_data_dir, str(tmp_path / "one"))
    result = eight_device_runs[stage][1]
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


def test_an_eight_device_checkpoint_resumes_on_one_device_and_on_another_mesh(
    demo_data_dir, eight_device_runs, tmp_path
):
    reference, _, _ = _single("finetune_tuab", demo_data_dir, str(tmp_path / "one"), steps=6)
    saved = eight_device_runs["finetune_tuab"][0]  # steps 1-3 on data x fsdp x tensor
    for name in ("on_one", "on_fsdp4_tensor2"):
        shutil.copytree(saved, tmp_path / name)
    resumed, _, _ = _single("finetune_tuab", demo_data_dir, str(tmp_path / "on_one"), steps=6)  # steps 4-6
    np.testing.assert_allclose(resumed, reference, rtol=2e-5)
    moved = _on_eight_devices("finetune_tuab", demo_data_dir, str(tmp_path / "on_fsdp4_tensor2"), "1,4,2", "--steps=6")
    np.testing.assert_allclose(moved["losses"], reference, rtol=2e-5)


def test_a_pretraining_checkpoint_from_eight_devices_fine_tunes_on_one(
    demo_data_dir, eight_device_runs, tmp_path, capsys
):
    tokenizer, pretrain = eight_device_runs["tokenizer"][0], str(tmp_path / "pretrain")
    _on_eight_devices("pretrain", demo_data_dir, pretrain, "1,4,2", f"--tokenizer={tokenizer}")
    losses, test, _ = _single("finetune_tuab", demo_data_dir, str(tmp_path / "tuned"), init_checkpoint=pretrain)
    assert f"initialised backbone from pretrain checkpoint {pretrain}" in capsys.readouterr().out
    assert len(losses) == 3 and np.all(np.isfinite(losses)) and test
    # The backbone is the pod's student backbone, moved by 3 small optimiser steps (lr <= 1e-3 each).
    tuned, pre = _params(str(tmp_path / "tuned")), _params(pretrain)
    backbone = {k: v for k, v in tuned.items() if k.startswith("['backbone']")}
    assert backbone and max(np.abs(pre["['student']" + k]).max() for k in backbone) > 0.05
    for key, value in backbone.items():
        np.testing.assert_allclose(value, pre["['student']" + key], atol=0.01, err_msg=key)


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
    # Saved by two processes, restored by one: the parameters of the one-process run, up to what float32
    # reduction order does through Adam (each step moves a parameter by at most ~lr = 1e-3, whatever the
    # gradient's size, so gradients near 0 can differ by a step), and it fine-tunes.
    two, one = _params(str(tmp_path / "two")), _params(str(tmp_path / "one"))
    assert two.keys() == one.keys()
    for key in one:
        np.testing.assert_allclose(two[key], one[key], atol=3e-3, err_msg=key)
    assert np.mean([np.abs(two[k] - one[k]).mean() for k in one]) < 1e-4  # typically far closer
    more, _, _ = _single("finetune_tuev", demo_data_dir, str(tmp_path / "more"), init_checkpoint=str(tmp_path / "two"))
    assert len(more) == 3 and np.all(np.isfinite(more))
