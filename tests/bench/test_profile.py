"""`bench.profile`'s matching of trace events to the compiled HLO and its per-op / per-part sums."""

from __future__ import annotations

import pytest

from bench import profile

HLO = """
HloModule jit_step, entry_computation_layout={...}

ENTRY %main {
  %p0 = f32[16,231,200]{2,1,0} parameter(0)
  %ynn_fusion.3 = f32[3696,800]{1,0} fusion(%a, %b), kind=kCustom, calls=%c, metadata={op_name="jit(step)/jvp(LaBraMClassifier)/backbone/blocks_3/mlp/fc1/aby,yz->abz/dot_general" source_file="x.py"}
  %ynn_fusion.7 = f32[3696,800]{1,0} fusion(%a, %b), kind=kCustom, calls=%c, metadata={op_name="jit(step)/jvp(LaBraMClassifier)/backbone/blocks_10/mlp/fc1/aby,yz->abz/dot_general"}
  %dot.2 = f32[16,10,20,231]{3,2,1,0} dot(%q, %p), lhs_contracting_dims={2}, metadata={op_name="jit(step)/transpose(jvp(LaBraMClassifier))/backbone/blocks_0/attn/bhqd,bhqk->bhdk/dot_general"}
  ROOT %adam.1 = f32[200]{0} fusion(%m), kind=kLoop, metadata={op_name="jit(step)/mul"}
}
"""


def test_hlo_ops_reads_names_shapes_and_op_names():
    ops = profile.hlo_ops(HLO)
    assert ops["ynn_fusion.3"]["shape"] == "f32[3696,800]{1,0}"
    assert ops["dot.2"]["opcode"] == "dot"
    assert ops["dot.2"]["op_name"].endswith("blocks_0/attn/bhqd,bhqk->bhdk/dot_general")
    assert ops["adam.1"]["op_name"] == "jit(step)/mul"
    assert ops["p0"]["op_name"] == ""


@pytest.mark.parametrize(
    "op_name, phase, path",
    [
        (
            "jit(step)/jvp(LaBraMClassifier)/backbone/blocks_3/mlp/fc1/aby,yz->abz/dot_general",
            "forward",
            "LaBraMClassifier/backbone/blocks_N/mlp/fc1/aby,yz->abz/dot_general",
        ),
        (
            "jit(step)/transpose(jvp(LaBraMClassifier.pooled/LaBraMClassifier._encode/backbone/blocks_11/attn/reduce_sum))",
            "backward",
            "LaBraMClassifier/backbone/blocks_N/attn/reduce_sum",
        ),
        (
            "jit(step)/jvp(VQNSP.get_codebook_indices)/VQNSP.encode/encoder.features/encoder._encode/backbone/blocks_0/"
            "attn/bhqk,bhdk->bhqd/dot_general",
            "forward",
            "VQNSP/encoder/backbone/blocks_N/attn/bhqk,bhdk->bhqd/dot_general",
        ),
        ("jit(step)/mul", "other", "mul"),
        ("", "other", "(unnamed)"),
    ],
)
def test_phase_and_path(op_name, phase, path):
    assert profile.phase_and_path(op_name) == (phase, path)


def test_part_of_drops_the_primitive_and_einsum_scopes():
    assert profile.part_of("backbone/blocks_N/attn/qkv/bnd,dthk->bnthk/dot_general") == "backbone/blocks_N/attn/qkv"
    assert profile.part_of("backbone/blocks_N/attn/reduce_sum") == "backbone/blocks_N/attn"
    assert profile.part_of("mul") == "mul"


def test_analyse_sums_per_step_and_ignores_other_modules():
    hlo = profile.hlo_ops(HLO)
    events = [
        ("ynn_fusion.3", "jit_step", 0.010),
        ("ynn_fusion.7", "jit_step", 0.030),  # step 1
        ("ynn_fusion.3", "jit_step", 0.010),
        ("ynn_fusion.7", "jit_step", 0.030),  # step 2
        ("dot.2", "jit_step", 0.020),
        ("dot.2", "jit_step", 0.020),
        ("adam.1", "jit_step", 0.004),
        ("dot.2", "jit_peak_matmul", 5.0),  # another program's op of the same name
        ("unknown.1", "jit_step", 1.0),
    ]  # not an instruction of this HLO
    r = profile.analyse(events, hlo, steps=2, step_s=0.1, top=10)
    assert r["hlo_module"] == "jit_step" and r["ops_matched"] == 4
    assert r["op_s_per_step"] == pytest.approx((0.08 + 0.04 + 0.004) / 2)
    assert r["op_s_over_step_s"] == pytest.approx(0.62)
    first = r["top_ops"][0]  # both fc1 instructions fold into one row: same phase, path, kind and shape
    assert (first["phase"], first["kind"], first["calls_per_step"]) == ("forward", "ynn_fusion", 2)
    assert first["ms_per_step"] == pytest.approx(40.0) and first["share"] == pytest.approx(40 / 62, abs=1e-4)
    parts = {(p["phase"], p["part"]): p["ms_per_step"] for p in r["by_part"]}
    assert parts == pytest.approx(
        {
            ("forward", "LaBraMClassifier/backbone/blocks_N/mlp/fc1"): 40.0,
            ("backward", "LaBraMClassifier/backbone/blocks_N/attn"): 20.0,
            ("other", "mul"): 2.0,
        }
    )


def test_analyse_lists_device_kernels_it_cannot_attribute():
    hlo = profile.hlo_ops(HLO)
    events = [
        ("dot.2", "jit_step", 0.02),
        ("kernel:nccl_allreduce", "", 0.006),
        ("kernel:memcpy", "", 0.002),
        ("kernel:nccl_allreduce", "", 0.006),
    ]
    r = profile.analyse(events, hlo, steps=2, step_s=0.05, top=10)
    assert r["op_s_per_step"] == pytest.approx(0.01)
    assert r["unattributed_kernel_s_per_step"] == pytest.approx(0.007)
    assert r["unattributed_kernels"][0] == {"kernel": "nccl_allreduce", "ms_per_step": 6.0}
