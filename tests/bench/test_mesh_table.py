"""`python -m bench.mesh_table`: the entries the docs' table needs, and the whole compile deciding over the
depth probes where an entry was planned both ways."""

from __future__ import annotations

import json

from bench import mesh_table


def _result(total_gib: float, fits: bool, probes=None) -> dict:
    gib = 2**30
    return {
        "param_count": 369_000_000,
        "mesh": {"data": 1, "fsdp": 16, "tensor": 1},
        "global_batch": 512,
        "per_device_bytes": {"params": gib, "optimizer": 2 * gib, "temporaries": 5 * gib, "total": total_gib * gib},
        "capacity_bytes": 16 * gib,
        "fits": fits,
        "roofline_step_seconds": 0.5,
        "flops_per_step_per_device": 1e13,
        "compile_seconds": {"train": 100.0, "eval": None},
        "depth_probes": probes,
    }


def test_entries_cover_every_size_stage_and_slice():
    names = {name for name, *_ in mesh_table.entries()}
    for size in ("base", "large", "huge"):
        for stage in ("pretrain", "finetune"):
            for slice_name in ("v5e-16", "v5p-8", "v4-32"):
                assert f"{size}-{stage}-{slice_name}" in names
    assert "giant-pretrain-v5p-8" in names


def test_the_whole_compile_decides_over_the_probes(tmp_path):
    (tmp_path / "huge-finetune-v5e-16.json").write_text(json.dumps(_result(20.0, False, [1, 2])))
    (tmp_path / "huge-finetune-v5e-16.whole.json").write_text(json.dumps(_result(12.0, True)))
    (tmp_path / "base-finetune-v5e-16.json").write_text(json.dumps(_result(3.0, True, [1, 2])))
    table = mesh_table.markdown(str(tmp_path)).splitlines()
    huge = next(r for r in table if r.startswith("| huge"))
    assert "12.00 / 16 GiB | yes" in huge and "| whole |" in huge
    base = next(r for r in table if r.startswith("| base"))
    assert "| probes 1,2 |" in base
    comparison = mesh_table.comparison(str(tmp_path))
    assert "huge-finetune-v5e-16 | 20.00 GiB | 12.00 GiB" in comparison
