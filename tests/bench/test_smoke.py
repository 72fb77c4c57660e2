"""Smoke runs of the benchmarks: `python -m bench.all --smoke` runs every `bench/` script with tiny shapes
and one step, each in its own process (~1 minute on 2 cores); the tests check each script's JSON.

The torch comparisons need braindecode (the `bench` extra); without it their parts report `skipped` and
the tests of those parts skip.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from bench import all as bench_all
from bench import common

pytestmark = pytest.mark.slow  # whole training runs or subprocesses: `-m "not slow"` skips them

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HAVE_BRAINDECODE = common.have("braindecode")


def positive(record: dict, *keys: str) -> None:
    for key in keys:
        value = record.get(key)
        assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, (key, value)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "all.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.all", "--smoke", f"--out={out}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    report = json.loads(proc.stdout)  # stdout holds exactly one JSON object
    with open(out) as f:
        assert json.load(f) == report
    return report, proc.stderr


def test_all_collects_every_benchmark_and_prints_a_summary(run):
    report, stderr = run
    assert report["smoke"] is True
    assert set(report["benchmarks"]) == set(bench_all.BENCHMARKS)
    machine = report["machine"]
    for key in ("cpu_model", "cpu_cores_available", "date_utc", "versions", "device_kind", "load_average_1_5_15"):
        assert key in machine, key
    assert machine["versions"]["jax"]
    assert "| config | s/step |" in stderr and "| batches/s |" in stderr


def test_train_step(run):
    result = run[0]["benchmarks"]["train_step"]
    assert result["settings"]["isolated_processes"] is True
    assert set(result["results"]) == {"finetune_base", "pretrain_base"}
    for name, r in result["results"].items():
        assert "error" not in r, (name, r)
        positive(
            r,
            "step_s",
            "samples_per_s",
            "tokens_per_s",
            "compile_s",
            "first_step_s",
            "flops_per_step",
            "flops_per_step_analytic",
            "model_flops_per_step",
            "achieved_flops_per_s",
            "peak_matmul_flops_per_s",
            "utilization",
            "peak_memory_bytes",
            "param_count",
        )
        assert r["tokens_per_s"] == pytest.approx(r["samples_per_s"] * r["channels"] * r["seconds"])
        assert r["page_faults_per_step"] >= 0 and math.isfinite(r["loss"])
        assert r["cpu_during_timed_steps"]["own_cores_busy"] >= 0
    # The pre-training step runs the tokenizer and two student passes: more work than fine-tuning.
    res = result["results"]
    assert res["pretrain_base"]["flops_per_step"] > res["finetune_base"]["flops_per_step"]


@pytest.mark.skipif(not HAVE_BRAINDECODE, reason="braindecode is not installed (the bench extra)")
def test_torch_reference(run):
    result = run[0]["benchmarks"]["torch_reference"]
    for name, r in result["results"].items():
        assert "error" not in r, (name, r)
        positive(
            r,
            "ours_step_s",
            "theirs_step_s",
            "ratio_ours_over_theirs",
            "ours_samples_per_s",
            "theirs_samples_per_s",
            "ours_param_count",
            "theirs_param_count",
        )
        assert len(r["ours_block_s"]) == len(r["theirs_block_s"]) == r["rounds"]
    counts = result["param_counts"]
    positive(counts, "braindecode_labram", "ours")


def test_torch_reference_skips_cleanly_without_braindecode(run):
    result = run[0]["benchmarks"]["torch_reference"]
    if HAVE_BRAINDECODE:
        assert "results" in result
    else:
        assert "braindecode" in result["skipped"]


def test_inference(run):
    r = run[0]["benchmarks"]["inference"]
    positive(
        r,
        "windows",
        "ours_windows_per_s",
        "ours_x_realtime",
        "ours_first_call_s",
        "load_s",
        "param_count",
        "peak_memory_bytes",
    )
    assert r["windows_computed"] % r["settings"]["batch"] == 0 and r["windows_computed"] >= r["windows"]
    assert r["feature_shape"][1] == r["settings"]["channels"] * r["settings"]["window_s"]
    if HAVE_BRAINDECODE:
        positive(r, "theirs_windows_per_s", "ratio_ours_over_theirs")
    else:
        assert r["theirs"].startswith("skipped")


def test_loader(run):
    r = run[0]["benchmarks"]["loader"]
    positive(
        r,
        "loader_batches_per_s",
        "loader_examples_per_s",
        "step_s",
        "step_steps_per_s",
        "ratio_loader_over_step",
        "loop_step_s",
        "first_batch_s",
    )
    assert r["batch_shape"] == [r["settings"]["batch"], 23, 10, 200]
    assert r["ratio_loader_over_step"] == pytest.approx(r["loader_batches_per_s"] * r["step_s"])


def test_scaling(run):
    r = run[0]["benchmarks"]["scaling"]
    assert len(r["tokens"]) == len(r["settings"]["points"]) and len(r["models"]) == len(r["settings"]["sizes"])
    rows = r["tokens"] + r["models"]
    for row in rows:
        assert "error" not in row, row
        positive(
            row,
            "step_s",
            "tokens_per_s",
            "model_flops_per_step",
            "attention_core_flops_per_step",
            "attention_core_s_per_step",
            "attention_flop_share",
            "attention_time_share",
        )
        assert row["attention_flop_share"] < 1
    # More tokens per example: more attention work, and a larger share of the step.
    first, second = r["tokens"][:2]
    assert second["tokens_per_example"] > first["tokens_per_example"]
    assert second["attention_flop_share"] > first["attention_flop_share"]


def test_markdown_reports_failures_and_skips():
    text = bench_all.markdown(
        {
            "machine": {},
            "benchmarks": {
                "loader": {"error": "exit code 1"},
                "torch_reference": {"skipped": "braindecode is not installed"},
            },
        }
    )
    assert "**loader**: exit code 1" in text and "braindecode is not installed" in text


def test_profile(run):
    result = run[0]["benchmarks"]["profile"]
    r = result["results"]["finetune_base"]
    assert r["events_from"] == "host" and r["hlo_module"] and r["ops_matched"] > 10
    positive(r, "step_s", "op_s_per_step")
    shares = [x["share"] for x in r["top_ops"]]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1.0 + 1e-6
    phases = {x["phase"] for x in r["top_ops"]}
    assert {"forward", "backward"} <= phases
    # The attention core and the MLP of the (folded) blocks show as parts in both directions.
    parts = {(p["phase"], p["part"].split("backbone/", 1)[-1]) for p in r["by_part"]}
    assert ("backward", "blocks_N/attn") in parts and ("forward", "blocks_N/attn") in parts, parts
    assert any(part.startswith("blocks_N/mlp") for _, part in parts)
