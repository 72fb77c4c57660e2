"""A stopped or killed run, restarted with the same command, continues with the same losses."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from labram_jax.train.loop import run
from labram_jax.train.metric_writers import read_metrics
from tests.train.tiny_configs import tiny_config

pytestmark = pytest.mark.slow  # whole training runs or subprocesses: `-m "not slow"` skips them

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _losses(workdir: str) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(workdir) if r["split"] == "train"}


def _config(data_dir: str, steps: int):
    # The tokenizer exercises every kind of state: params, Adam moments, the quantiser's k-means / EMA
    # collection and the shuffled data iterator.
    config = tiny_config("tokenizer", data_dir, steps=steps)
    config.checkpoint.every_steps = 3
    return config


def _quantizer(workdir: str) -> dict:
    import labram_jax

    return {k: np.asarray(v) for k, v in labram_jax.load(workdir).variables["quantizer"]["quantize"].items()}


def _same_quantizer(a: str, b: str) -> None:
    qa, qb = _quantizer(a), _quantizer(b)
    assert qa["restarts"] > 0  # the runs exercise dead-code restart
    for key in qa:
        np.testing.assert_allclose(qb[key], qa[key], rtol=1e-6, atol=1e-7, err_msg=key)


def command(data_dir: str, workdir: str, steps: int, every_steps: int) -> list[str]:
    """`_config(data_dir, steps)` as a command line, checkpoints every `every_steps` steps."""
    return [
        sys.executable,
        "-m",
        "labram_jax.main",
        "--config=configs/demo_tokenizer.py",
        f"--workdir={workdir}",
        f"--config.data.data_dir={data_dir}",
        "--config.data.train=demo/tuab:train",
        "--config.data.validation=",
        "--config.tokenizer.width=100",
        "--config.tokenizer.num_heads=4",
        "--config.tokenizer.encoder_depth=1",
        "--config.tokenizer.decoder_depth=1",
        "--config.tokenizer.num_codes=16",
        "--config.tokenizer.code_dim=8",
        "--config.optim.batch_size=8",
        "--config.tokenizer.continuous_steps=1",
        "--config.tokenizer.restart_threshold=0.9",
        "--config.tokenizer.restart_decay=0.5",
        "--config.optim.epochs=1",
        "--config.optim.warmup_epochs=0",
        "--config.optim.warmup_steps=1",
        f"--config.max_steps={steps}",
        "--config.log.every_steps=1",
        "--config.log.progress=False",
        f"--config.checkpoint.every_steps={every_steps}",
        "--config.eval.every_epochs=0",
    ]


def test_stop_and_restart_gives_the_same_losses(demo_data_dir, tmp_path):
    reference = str(tmp_path / "reference")
    run(_config(demo_data_dir, 6), reference)
    resumed = str(tmp_path / "resumed")
    run(_config(demo_data_dir, 3), resumed)  # stops after the checkpoint at step 3
    assert sorted(_losses(resumed)) == [1, 2, 3]
    run(_config(demo_data_dir, 6), resumed)
    ref, res = _losses(reference), _losses(resumed)
    assert sorted(res) == list(range(1, 7))
    np.testing.assert_allclose([res[s] for s in range(4, 7)], [ref[s] for s in range(4, 7)], rtol=1e-6)
    _same_quantizer(reference, resumed)  # codebook, restart state and counters resume exactly
    # The same command once more: nothing left to train.
    again = run(_config(demo_data_dir, 6), resumed)
    assert again["steps"] == 6


@pytest.fixture(scope="module")
def nine_steps(demo_data_dir, tmp_path_factory) -> str:
    """An uninterrupted 9-step run: what every interrupted run must reproduce."""
    reference = str(tmp_path_factory.mktemp("reference"))
    run(_config(demo_data_dir, 9), reference)
    return reference


def test_killed_run_resumes_from_the_last_complete_checkpoint(demo_data_dir, nine_steps, tmp_path):
    reference = nine_steps
    workdir = str(tmp_path / "killed")
    args = command(demo_data_dir, workdir, steps=9, every_steps=3)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    first = os.path.join(workdir, "checkpoints", "3")
    deadline = time.time() + 300
    while not os.path.isdir(first) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # wherever it is: training step 4-6, or in the middle of a save
    proc.wait()
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "resuming from step" in done.stdout
    ref, res = _losses(reference), _losses(workdir)
    assert sorted(res) == list(range(1, 10))
    np.testing.assert_allclose([res[s] for s in range(1, 10)], [ref[s] for s in range(1, 10)], rtol=1e-6)
    _same_quantizer(reference, workdir)


def test_sigterm_saves_at_the_next_step_and_the_same_command_resumes_exactly(demo_data_dir, nine_steps, tmp_path):
    reference = nine_steps
    workdir = str(tmp_path / "preempted")
    args = command(demo_data_dir, workdir, steps=9, every_steps=100)  # no periodic save before the end
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    metrics = os.path.join(workdir, "metrics.jsonl")
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:  # until step 2 is logged: training is under way
        if os.path.isfile(metrics) and len(open(metrics).read().splitlines()) >= 2:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # a second notice, typically while the checkpoint is written
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 143, out[-3000:]
    stopped = re.search(r"\[tokenizer\] preempted \(SIGTERM\) at step (\d+): checkpoint saved in (\S+);", out)
    assert stopped, out[-3000:]
    step = int(stopped.group(1))
    assert 2 <= step < 9 and stopped.group(2) == os.path.join(workdir, "checkpoints")
    saved = sorted(int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit())
    assert saved == [step]  # exactly the step it stopped at, complete
    assert sorted(_losses(workdir)) == list(range(1, step + 1))  # every step's metrics written

    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"resuming from step {step} of 9" in done.stdout
    ref, res = _losses(reference), _losses(workdir)
    assert sorted(res) == list(range(1, 10))
    np.testing.assert_allclose([res[s] for s in range(1, 10)], [ref[s] for s in range(1, 10)], rtol=1e-6)
    _same_quantizer(reference, workdir)
