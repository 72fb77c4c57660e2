"""`python -m labram_jax.plan`: sizes that match the pytrees and XLA's own memory analysis, the fit
verdict and exit status, the lever search, collectives, TPU slices (with the `tpu` extra) and targets."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from labram_jax.config_errors import ConfigError
from labram_jax.planning import collectives, levers, program, targets
from labram_jax.planning.report import NOT_FITTING_EXIT_STATUS, plan, report
from labram_jax.train import sharding as shd
from tests.train.tiny_configs import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(batch_size: int = 8):
    config = tiny_config("finetune_tuab", "/no/data/needed", batch_size=batch_size)
    config.data.eval_batch_size = batch_size
    return config


def _tree_bytes(tree) -> int:
    return sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


@pytest.fixture(scope="module")
def local_plan():
    return plan(_config(), "local", search=False)


def test_sizes_are_the_pytrees_and_xla_agrees(local_plan):
    from labram_jax.train.stages import make_stage

    result = local_plan
    stage = make_stage(_config())
    variables = jax.eval_shape(stage.init_variables, jax.random.PRNGKey(0))
    params = shd.unbox(variables)["params"]
    b = result["per_device_bytes"]
    # One device: every parameter whole; AdamW keeps two moments of each (plus scalar counts).
    assert b["params"] == _tree_bytes(params)
    assert 2 * b["params"] <= b["optimizer"] < 2 * b["params"] + 1024
    batch = 8 * (23 * 10 * 200 * 4 + 23 * 4 + 23 + 10 + 4)  # eeg f32, channel ids i32, masks, label
    assert b["batch"] == batch
    # XLA:CPU lays arguments out unpadded: its argument bytes are exactly the parts the report lists.
    parts = b["params"] + b["optimizer"] + b["model_state"] + b["frozen"] + b["batch"]
    assert b["xla_arguments"] == parts
    assert b["total"] == parts + b["outputs_not_donated"] + b["temporaries"] + b["code"]
    # The donated state comes back in place: only the metrics are new outputs.
    assert 0 < b["outputs_not_donated"] < 4096
    assert result["fits"] is True and result["capacity_bytes"] > b["total"]
    assert result["flops_per_step_per_device"] > 0 and result["eval_per_device_bytes"]["total"] > 0
    for key in ("config", "topology", "device_kind", "devices", "mesh", "global_batch", "capacity_bytes"):
        assert key in result
    assert result["devices"] == 1 and result["global_batch"] == 8


def test_too_small_a_device_does_not_fit_and_the_search_finds_a_change(local_plan):
    total = local_plan["per_device_bytes"]["total"]
    capacity_gib = 0.9 * total / 2**30
    result = plan(_config(), "local", memory_gib=capacity_gib, evaluate=False, max_compiles=2)
    assert result["fits"] is False
    assert any("remat" in lever for lever in result["levers"])
    suggestion = result["suggestion"]
    assert suggestion is not None, result["search"]
    assert suggestion["total_bytes"] <= result["capacity_bytes"]
    assert suggestion["flags"].startswith("--config.")
    # The smallest change is tried first; on XLA:CPU, where remat saves no memory, that is accumulation.
    assert result["search"][0]["overrides"] == {"optim.grad_accum_steps": 2}
    assert all("model.remat" not in row["overrides"] for row in result["search"])


def _cli(*flags: str, timeout: int = 300) -> tuple[int, dict | None, str]:
    """`python -m labram_jax.plan` on a small model of the demo fine-tuning config; strict JSON (no NaN)."""
    args = [
        sys.executable,
        "-m",
        "labram_jax.plan",
        "--config=configs/demo_finetune_tuab.py",
        "--config.model.depth=1",
        "--config.model.width=100",
        "--config.model.num_heads=4",
        *flags,
        "--json",
    ]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout)

    def no_nan(name: str):
        raise ValueError(f"{name} in the JSON")

    result = json.loads(proc.stdout, parse_constant=no_nan) if proc.stdout.strip() else None
    return proc.returncode, result, proc.stderr


def test_cli_exit_status_and_json_on_fake_devices(tmp_path):
    """cpu:2 from the command line (the plan sets XLA_FLAGS itself), fsdp over both devices, a device too
    small for the batch: exit 3 and a JSON report."""
    status, result, stderr = _cli(
        "--topology=cpu:2",
        "--config.mesh.data=1",
        "--config.mesh.fsdp=2",
        "--config.optim.batch_size=64",
        "--config.data.eval_batch_size=64",
        "--memory_gib=0.01",
        "--nosearch",
        "--noeval",
    )
    assert status == NOT_FITTING_EXIT_STATUS, stderr[-2000:]
    assert result["fits"] is False and result["devices"] == 2
    assert result["mesh"] == {"data": 1, "fsdp": 2, "tensor": 1}
    assert result["per_device_bytes"]["total"] > result["capacity_bytes"] == int(0.01 * 2**30)
    assert "levers" in result and "suggestion" not in result
    # The batch splits over the two devices; the parameters mostly do (small vectors stay whole).
    assert result["per_device_bytes"]["batch"] == 64 // 2 * (23 * 10 * 200 * 4 + 23 * 4 + 23 + 10 + 4)
    assert any(c["kind"] in ("all-gather", "all-reduce", "reduce-scatter") for c in result["collectives"])


def test_unknown_topology_lists_the_known_ones():
    with pytest.raises(targets.TargetError, match="v5e-16.*|.*v5e-16") as err:
        targets.resolve("v5e-17")
    assert "cpu:N" in str(err.value) and "v4-32" in str(err.value)


def test_slice_names_map_to_topologies():
    assert targets.TPU_SLICES["v5e-16"] == ("v5e", "v5e:4x4")
    assert targets.TPU_SLICES["v4-32"] == ("v4", "v4:2x2x4")  # v4 names count cores: 16 chips
    assert targets.TPU_SLICES["v5p-8"] == ("v5p", "v5p:2x2x1")
    assert targets.roofline_seconds(2e12, 1e9, targets.TPU_KINDS["v5e"]) == pytest.approx(2e12 / 197e12)
    assert targets.roofline_seconds(1e9, 819e9, targets.TPU_KINDS["v5e"]) == pytest.approx(1.0)


@pytest.mark.skipif(importlib.util.find_spec("libtpu") is None, reason="the tpu extra (libtpu) is not installed")
def test_a_tpu_slice_plans_without_a_tpu():
    result = plan(_config(batch_size=16), "v5e-8", search=False)
    assert result["device_kind"] == "TPU v5 lite" and result["devices"] == 8
    assert result["capacity_bytes"] == 16 * 2**30 and result["fits"] is True
    b = result["per_device_bytes"]
    # TPU layouts pad small arrays: XLA's argument bytes are at least the parts'.
    assert b["xla_arguments"] >= b["params"] + b["optimizer"] + b["batch"]
    assert b["batch"] == 16 // 8 * (23 * 10 * 200 * 4 + 23 * 4 + 23 + 10 + 4)
    # Data parallelism over 8 chips: the gradients are all-reduced.
    assert any(c["kind"] == "all-reduce" and c["bytes"] > 0 for c in result["collectives"])
    assert result["roofline_step_seconds"] > 0 and result["estimate"] is False


@pytest.mark.skipif(importlib.util.find_spec("libtpu") is None, reason="the tpu extra (libtpu) is not installed")
def test_a_step_the_tpu_compiler_refuses_does_not_fit():
    """libtpu refuses, at compile time, a step whose temporaries exceed a chip's HBM (Giant on v4-32 at batch
    512 did). That is a plan that does not fit (exit 3, its figures, its levers), not a crash of `plan`."""
    status, result, stderr = _cli(
        "--topology=v5e-8",
        "--config.optim.batch_size=65536",
        "--config.data.eval_batch_size=8",
        "--noeval",
        "--nosearch",
    )
    assert status == NOT_FITTING_EXIT_STATUS, stderr[-2000:]
    assert result["fits"] is False and result["device_kind"] == "TPU v5 lite"
    refusal = result["refused_by_compiler"]["train"]
    assert "RESOURCE_EXHAUSTED" in refusal["message"] and refusal["what"] == "HLO temporaries"
    # libtpu leaves a little under the v5e's 16 GiB to a program; the step asks for more than that.
    assert 15 * 2**30 < refusal["available_bytes"] < result["capacity_bytes"] < refusal["required_bytes"]
    b = result["per_device_bytes"]
    assert b["temporaries"] == refusal["required_bytes"]
    assert b["total"] >= b["temporaries"] + b["batch"] + b["params"] + b["optimizer"]
    # Nothing was compiled to analyse: unknown, not zero.
    assert result["flops_per_step_per_device"] is None and result["roofline_step_seconds"] is None
    assert "levers" in result
    text = report(result)
    assert "DOES NOT FIT (at least" in text and "the compiler refused the train step (HLO temporaries" in text
    assert "compute: unknown" in text


def test_compiler_refusals_are_recognised_and_read():
    tpu = (
        "RESOURCE_EXHAUSTED: Ran out of memory on HBM, the total memory required for HLO temporaries (30.99G) "
        "exceeds available HBM (30.75G).\nmore context"
    )
    refusal = program.compiler_refusal(tpu)
    assert refusal.what == "HLO temporaries" and refusal.message.endswith("(30.75G).")
    assert refusal.required_bytes == round(30.99 * 2**30) and refusal.available_bytes == round(30.75 * 2**30)
    other = program.compiler_refusal(
        "XLA:TPU compile permanent error. Ran out of memory in memory space hbm. Used 31.50G of 15.48G hbm. "
        "Exceeded hbm capacity by 16.02G."
    )
    assert other.what == "total" and other.required_bytes == round(31.5 * 2**30)
    assert other.available_bytes == round(15.48 * 2**30)
    unread = program.compiler_refusal("RESOURCE_EXHAUSTED: out of memory while trying to allocate 12 bytes")
    assert unread.required_bytes is None and unread.message.startswith("RESOURCE_EXHAUSTED")
    assert program.compiler_refusal("INVALID_ARGUMENT: shapes do not match") is None

    # Memory grows with depth: a refused probe means the deeper model is refused too.
    fine = program.CompiledStep(1.0, 10, 1, 0, 100, 5, 1e9, 1e8, [])
    refused = program._refused(refusal, arguments=50, seconds=2.0)
    assert refused.temporaries == refusal.required_bytes and refused.total == 50 + refusal.required_bytes
    deep = program._extrapolate_step(fine, refused, 2, 4, 12)
    assert deep.refused == refusal and deep.compile_seconds == 3.0 and math.isnan(deep.flops)


def test_the_search_passes_over_a_candidate_the_compiler_refused():
    """A refused candidate does not fit whatever its bytes say: its figures are a lower bound."""
    config = _config()

    def compile_total(changed):
        if changed.optim.grad_accum_steps == 2:
            return 100, "RESOURCE_EXHAUSTED: Ran out of memory on HBM"
        return 200, None

    found = levers.search(config, 1, 1000, lambda c: 10, compile_total, max_compiles=3, remat_helps=False)
    assert found.overrides == {"optim.grad_accum_steps": 4} and found.total_bytes == 200
    assert found.tried[0]["refused"].startswith("RESOURCE_EXHAUSTED") and found.tried[0]["total"] == 100


def test_collectives_of_hand_written_hlo():
    hlo = """
  %all-reduce.1 = f32[200,800]{1,0} all-reduce(f32[200,800]{1,0} %p), channel_id=1, to_apply=%add
  all-reduce.2 = (f32[10]{0}, bf16[4,4]{1,0}) all-reduce(f32[10]{0} %a, bf16[4,4]{1,0} %b), to_apply=%add
  %ag = (f32[25,8]{1,0}, f32[200,8]{1,0}) all-gather-start(f32[25,8]{1,0} %x), dimensions={0}
  %agd = f32[200,8]{1,0} all-gather-done((f32[25,8]{1,0}, f32[200,8]{1,0}) %ag)
  ROOT %rs = s32[3]{0} reduce-scatter(s32[24]{0} %y), dimensions={0}
  %not = f32[2]{0} add(f32[2]{0} %u, f32[2]{0} %v)
"""
    rows = {r["kind"]: r for r in collectives.collectives(hlo)}
    assert rows["all-reduce"] == {"kind": "all-reduce", "count": 2, "bytes": 200 * 800 * 4 + 10 * 4 + 16 * 2}
    assert rows["all-gather"] == {"kind": "all-gather", "count": 1, "bytes": 200 * 8 * 4}
    assert rows["reduce-scatter"] == {"kind": "reduce-scatter", "count": 1, "bytes": 12}
    assert set(rows) == {"all-reduce", "all-gather", "reduce-scatter"}


def test_lever_candidates_smallest_first():
    config = _config()
    found = levers.candidates(config, 8)
    assert found[0] == {"model.remat": True}
    assert found[1] == {"optim.grad_accum_steps": 2}
    assert all("model.remat" not in c for c in levers.candidates(config, 8, remat_helps=False))
    assert {"mesh.data": 1, "mesh.fsdp": -1} in found
    assert found[-1]["model.dtype"] == "bfloat16"
    config.model.remat = True
    assert all("model.remat" not in c for c in levers.candidates(config, 8))


def test_uneven_dimensions_are_replicated_not_refused():
    """Base's 200-wide embedding on fsdp=16: 200 does not divide into 16, so that dimension stays whole."""
    mesh = jax.sharding.AbstractMesh((1, 16, 1), shd.MESH_AXES)
    spec = jax.sharding.PartitionSpec("fsdp", None, "tensor")
    assert shd.divisible_spec(spec, (200, 3, 10), mesh) == jax.sharding.PartitionSpec(None, None, "tensor")
    assert shd.divisible_spec(spec, (800, 3, 10), mesh) == spec


def test_depth_probes_extrapolate_to_the_whole_model():
    """Compiles at 2 and 3 blocks, extrapolated to 4, against the 4-block compile itself: an unrolled stack of
    identical blocks makes every XLA figure linear in depth (exact on XLA:CPU; docs/scale-out.md has the
    TPU comparison). One-block probes are refused."""
    config = _config()
    config.model.depth = 4
    whole = plan(config, "local", search=False, evaluate=False)
    probed = plan(config, "local", search=False, evaluate=False, depth_probes=(2, 3))
    with pytest.raises(ConfigError, match="depth_probes=1,2"):
        plan(config, "local", search=False, evaluate=False, depth_probes=(1, 2))
    for key in ("params", "optimizer", "batch"):  # sized at the full depth, not extrapolated
        assert probed["per_device_bytes"][key] == whole["per_device_bytes"][key]
    for key in ("xla_arguments", "temporaries", "total"):
        assert probed["per_device_bytes"][key] == pytest.approx(whole["per_device_bytes"][key], rel=0.02)
    assert probed["flops_per_step_per_device"] == pytest.approx(whole["flops_per_step_per_device"], rel=0.02)
    assert probed["depth_probes"] == [2, 3] and any("extrapolated" in n for n in probed["notes"])
    assert probed["fits"] is True
