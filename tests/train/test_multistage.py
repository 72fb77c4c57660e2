"""The multi-stage pipeline: stages wired together, and fine-tuning from the pre-trained backbone compared with
random initialisation on the same budget and seeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import ml_collections
import pytest

from labram_jax.train import multistage
from tests.train.tiny_configs import tiny_config

pytestmark = pytest.mark.slow  # whole training runs or subprocesses: `-m "not slow"` skips them


def _pipeline_config(data_dir: str, seeds: str = "") -> ml_collections.ConfigDict:
    stages = {name: tiny_config(name, data_dir, steps=4) for name in ("tokenizer", "pretrain", "finetune_tuab")}
    for name in ("tokenizer", "pretrain"):
        stages[name].data.validation = "demo/tuab:validation"
    return ml_collections.ConfigDict(
        dict(
            stage="pipeline",
            data_dir=data_dir,
            build_demo_data=False,
            order=tuple(stages),
            scratch_baselines=True,
            seeds=seeds,
            stages=stages,
        )
    )


def test_pipeline_reports_every_stage_and_what_pretraining_buys(demo_data_dir, tmp_path):
    results = multistage.run_pipeline(_pipeline_config(demo_data_dir), str(tmp_path))
    assert list(results) == ["tokenizer", "pretrain", "finetune_tuab", "finetune_tuab_scratch"]
    with open(tmp_path / "finetune_tuab" / "config.json") as f:
        assert json.load(f)["init_checkpoint"] == str(tmp_path / "pretrain")
    with open(tmp_path / "finetune_tuab_scratch" / "config.json") as f:
        scratch = json.load(f)
    assert scratch["init_checkpoint"] == "" and scratch["seed"] == 0
    with open(tmp_path / "results.json") as f:
        saved = json.load(f)
    pre, rnd = (results[n]["test"]["demo/tuab:test"] for n in ("finetune_tuab", "finetune_tuab_scratch"))
    gain = saved["pretraining_gain"]["finetune_tuab"]["demo/tuab:test"]
    assert gain["balanced_accuracy"] == pytest.approx(pre["balanced_accuracy"] - rnd["balanced_accuracy"])
    table = (tmp_path / "results.md").read_text()
    assert "| tokenizer | demo/tuab:validation | perplexity" in table and "amplitude gain over one code" in table
    assert "always the most frequent code" in table
    assert "| finetune_tuab (pre-trained) | demo/tuab:test |" in table
    assert "| finetune_tuab_scratch (random init) | demo/tuab:test |" in table
    assert "| finetune_tuab: pre-trained minus random init | demo/tuab:test | balanced_accuracy" in table


def test_results_table_shows_mean_and_std_over_seeds():
    configs = {
        n: ml_collections.ConfigDict(dict(stage="finetune", init_checkpoint=init, task=dict(kind="binary")))
        for n, init in (("ft", "/pre"), ("ft_scratch", ""))
    }
    agg = lambda m: {"mean": m, "std": 0.01, "n": 3, "values": [m] * 3}  # noqa: E731
    results = {
        "ft": {"seeds": [0, 1, 2], "test": {"d:test": {"balanced_accuracy": agg(0.8), "roc_auc": agg(0.9)}}},
        "ft_scratch": {"seeds": [0, 1, 2], "test": {"d:test": {"balanced_accuracy": agg(0.7), "roc_auc": agg(0.85)}}},
    }
    table = multistage.results_table(results, configs)
    assert (
        "| ft (pre-trained, seeds 0,1,2) | d:test | balanced_accuracy 0.800 ± 0.010, roc_auc 0.900 ± 0.010 |" in table
    )
    assert "| ft: pre-trained minus random init | d:test | balanced_accuracy +0.100, roc_auc +0.050 |" in table
    assert multistage.pretraining_gain(results, configs)["ft"]["d:test"]["balanced_accuracy"] == pytest.approx(0.1)


_CACHE_PROBE = """
import sys
import jax, jax.numpy as jnp
from labram_jax.train import multistage
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
print("cache", multistage.share_compilations(sys.argv[1]))
jax.jit(lambda x: jnp.tanh(x @ x.T).sum())(jnp.ones((64, 64))).block_until_ready()
"""


@pytest.mark.parametrize("user_cache", [False, True])
def test_pipeline_shares_compilations_through_a_cache_in_its_workdir(user_cache, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    if user_cache:
        env["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path / "mine")
    command = [sys.executable, "-c", _CACHE_PROBE, str(tmp_path / "run")]
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    chosen = tmp_path / ("mine" if user_cache else "run/xla_cache")
    assert f"cache {chosen}" in out.stdout
    assert any(name.startswith("jit_") for name in os.listdir(chosen)), "nothing was written to the cache"
    assert user_cache != (tmp_path / "run" / "xla_cache").exists()
