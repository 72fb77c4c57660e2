"""Where a training step's time goes: a `jax.profiler` trace of the real step, per op and per model part.

    python -m bench.profile [--configs=finetune_base] [--steps=2] [--top=25] [--trace_dir=DIR]
                            [--batch=16 --channels=23 --seconds=10] [--dtype=bfloat16] [--smoke]

Traces `--steps` steps of the jitted step (`bench.common.StepBench`, after compile and warm-up), reads the
trace with `jax.profiler.ProfileData` and matches every executed op (its `hlo_op` stat) to the compiled
HLO's instruction, whose metadata names the model code that produced it (`backbone/blocks_3/attn/...`,
block numbers folded to `blocks_N`). Per configuration the JSON holds:

* `step_s` (traced steps, wall; `step_s_untraced`: the best of as many steps just before, as tracing
  slows the step), `op_s_per_step` (sum of the ops' durations per step) and `op_s_over_step_s`. On a GPU
  the ops are the device's kernels, so a ratio well below 1 means the GPU idles (launch or host
  overhead); kernels without an HLO instruction are summed in `unattributed_kernel_s_per_step` and listed
  by name in `unattributed_kernels`. On CPU XLA runs independent ops on several threads at once, so the
  ratio can exceed 1, and an op sharing the cores with another shows a longer time than alone.
* `top_ops`: the `--top` instructions by time per step, each with its phase (`forward`, `backward` =
  inside the gradient's transpose, `other` = optimiser and bookkeeping), model path, XLA op kind, result
  shape, calls per step, ms per step and share of `op_s_per_step`.
* `by_part`: the same time summed per model part and phase (the op's path without its primitive and
  without einsum subscript scopes), so `backbone/blocks_N/attn` totals the attention core of all blocks
  and `backbone/blocks_N/attn/qkv` their qkv projections.

The trace directory (TensorBoard's profile plugin reads it) is kept with `--trace_dir`, else deleted.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import shutil
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common

# `%name = f32[16,231,200]{2,1,0} fusion(...), kind=kLoop, ..., metadata={op_name="..." ...}`
_HLO_LINE = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(\S+)\s+([\w\-]+)\(")
_OP_NAME = re.compile(r'op_name="([^"]*)"')


def hlo_ops(hlo_text: str) -> dict[str, dict[str, str]]:
    """Instruction name -> {shape, opcode, op_name} for every instruction of an HLO module's text."""
    ops = {}
    for line in hlo_text.splitlines():
        m = _HLO_LINE.match(line)
        if m:
            name, shape, opcode = m.groups()
            found = _OP_NAME.search(line)
            ops[name] = {"shape": shape, "opcode": opcode, "op_name": found.group(1) if found else ""}
    return ops


def phase_and_path(op_name: str) -> tuple[str, str]:
    """(`forward` | `backward` | `other`, the model path with block numbers folded and wrappers removed)."""
    phase = "backward" if "transpose(" in op_name else "forward" if "jvp(" in op_name else "other"
    path = re.sub(r"^jit\([^)]*\)/", "", op_name)
    path = re.sub(r"\b(?:transpose|jvp|remat|checkpoint|vmap|pjit|jit)\(", "", path).replace(")", "")
    path = re.sub(r"(\w+)\.\w+(?=/|$)", r"\1", path)  # Flax method scopes: `VQNSP.encode` -> `VQNSP`
    path = re.sub(r"_\d+(?=/|$)", "_N", path)  # blocks_3 -> blocks_N
    segments = [seg for seg in path.split("/") if seg]
    # A module calling its own methods repeats its scope (`encoder.features/encoder._encode`): keep one.
    segments = [seg for i, seg in enumerate(segments) if i == 0 or seg != segments[i - 1]]
    return phase, "/".join(segments) or "(unnamed)"


def part_of(path: str) -> str:
    """The model part an op belongs to: its path without the primitive and without `jnp.einsum`'s
    subscript scopes (`attn/qkv/bnd,dthk->bnthk/dot_general` -> `attn/qkv`)."""
    segments = [s for s in path.split("/")[:-1] if "->" not in s]
    return "/".join(segments) or path


def _events(trace_dir: str) -> tuple[list[tuple[str, str, float]], str]:
    """(hlo_op, hlo_module, seconds) of every op event, from the device planes if any, else the host's.

    On a GPU the kernels are read from the stream lines only (the profiler may add derived lines such as
    "XLA Ops" that repeat them); a kernel without an `hlo_op` stat is kept as `("kernel:" + name, "", s)`.
    """
    from jax.profiler import ProfileData

    files = glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True)
    if not files:
        raise RuntimeError(f"no .xplane.pb under {trace_dir}: the profiler wrote no trace")
    data = ProfileData.from_file(files[0])
    planes = list(data.planes)
    device_planes = [p for p in planes if p.name.startswith("/device:") and "CPU" not in p.name]
    source = "device" if device_planes else "host"
    out = []
    for plane in device_planes or [p for p in planes if p.name.startswith("/host:CPU")]:
        lines = list(plane.lines)
        if device_planes and any(line.name.startswith("Stream") for line in lines):
            lines = [line for line in lines if line.name.startswith("Stream")]
        for line in lines:
            for event in line.events:
                stats = dict(event.stats)
                op = stats.get("hlo_op")
                if op:
                    out.append((str(op), str(stats.get("hlo_module", "")), event.duration_ns / 1e9))
                elif device_planes:
                    out.append(("kernel:" + event.name, "", event.duration_ns / 1e9))
    return out, source


def analyse(
    events: list[tuple[str, str, float]], hlo: dict[str, dict[str, str]], steps: int, step_s: float, top: int
) -> dict[str, Any]:
    """Per-op and per-part time per step, restricted to the step's module (the one holding most events
    that match its HLO's instruction names)."""
    by_module = collections.Counter(mod for op, mod, _ in events if op in hlo)
    module = by_module.most_common(1)[0][0] if by_module else None
    per_op = collections.defaultdict(float)
    calls = collections.Counter()
    for op, mod, seconds in events:
        if mod == module and op in hlo:
            per_op[op] += seconds
            calls[op] += 1
    total = sum(per_op.values()) / steps
    rows, parts = [], collections.defaultdict(float)
    merged = collections.defaultdict(lambda: [0.0, 0.0])  # same phase/path/kind/shape -> one row
    for op, seconds in per_op.items():
        meta = hlo[op]
        phase, path = phase_and_path(meta["op_name"])
        kind = re.sub(r"\.\d+$", "", op)
        key = (phase, path, kind, meta["shape"])
        merged[key][0] += seconds / steps
        merged[key][1] += calls[op] / steps
        parts[(phase, part_of(path))] += seconds / steps
    for (phase, path, kind, shape), (seconds, n) in sorted(merged.items(), key=lambda kv: -kv[1][0]):
        rows.append(
            {
                "phase": phase,
                "path": path,
                "kind": kind,
                "shape": shape,
                "calls_per_step": round(n, 2),
                "ms_per_step": round(seconds * 1e3, 3),
                "share": round(seconds / total, 4) if total else None,
            }
        )
    part_rows = [
        {"phase": ph, "part": p, "ms_per_step": round(s * 1e3, 3), "share": round(s / total, 4) if total else None}
        for (ph, p), s in sorted(parts.items(), key=lambda kv: -kv[1])
    ]
    # Device kernels the trace did not attribute to an HLO instruction (none expected; listed if any).
    loose = collections.Counter()
    for op, _mod, seconds in events:
        if op.startswith("kernel:"):
            loose[op[len("kernel:") :]] += seconds / steps
    unattributed = [{"kernel": k, "ms_per_step": round(v * 1e3, 3)} for k, v in loose.most_common(top)]
    return {
        "hlo_module": module,
        "ops_matched": len(per_op),
        "op_s_per_step": total,
        "unattributed_kernel_s_per_step": sum(loose.values()),
        "unattributed_kernels": unattributed,
        "op_s_over_step_s": total / step_s if step_s else None,
        "top_ops": rows[:top],
        "by_part": part_rows[:top],
    }


def run_one(name: str, args) -> dict[str, Any]:
    import jax

    shape = common.shape_of(args)
    config = common.bench_config(name, dtype=args.dtype, smoke=args.smoke, **shape)
    bench = common.StepBench(config)
    timing = common.measure(bench, steps=args.steps, warmup=args.warmup)  # compile, warm-up, untraced steps
    trace_dir = args.trace_dir or tempfile.mkdtemp(prefix="labram_profile_")
    try:
        t0 = time.perf_counter()
        with jax.profiler.trace(trace_dir):
            for _ in range(args.steps):
                jax.block_until_ready(bench.step())
        step_s = (time.perf_counter() - t0) / args.steps
        events, source = _events(trace_dir)
    finally:
        if not args.trace_dir:
            shutil.rmtree(trace_dir, ignore_errors=True)
    result = {
        "config": name,
        "stage": config.stage,
        "size": config.model.size,
        **shape,
        "dtype": args.dtype,
        "device": bench.device.device_kind,
        "platform": bench.device.platform,
        "lower_s": timing["lower_s"],
        "compile_s": timing["compile_s"],
        "traced_steps": args.steps,
        "step_s": step_s,
        "step_s_untraced": timing["step_s_min"],
        "events_from": source,
        "trace_dir": args.trace_dir,
    }
    result.update(analyse(events, hlo_ops(bench.compiled.as_text()), args.steps, step_s, args.top))
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default="finetune_base", help="comma-separated <finetune|pretrain>_<size>")
    parser.add_argument("--steps", type=int, default=2, help="traced steps (after compile and warm-up)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before timing (the first included)")
    parser.add_argument("--top", type=int, default=25, help="rows of top_ops and by_part")
    parser.add_argument("--trace_dir", default=None, help="keep the trace here (default: a deleted temp dir)")
    common.add_shape_args(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.warmup, args.steps = 1, 1
    common.smoke_env(args)
    results = {}
    for name in [n.strip() for n in args.configs.split(",") if n.strip()]:
        common.parse_name(name)
        results[name] = r = run_one(name, args)
        head = ", ".join(f"{x['path'].rsplit('/', 1)[-1]} {x['ms_per_step']:.1f} ms" for x in r["top_ops"][:3])
        common.log(
            f"{name}: {r['step_s']:.4f} s/step traced ({r['step_s_untraced']:.4f} untraced), "
            f"ops {r['op_s_per_step']:.4f} s/step "
            f"({r['ops_matched']} ops); top: {head}"
        )
    common.emit(
        {
            "benchmark": "profile",
            "machine": common.machine_info(),
            "settings": {
                "configs": list(results),
                "steps": args.steps,
                "dtype": args.dtype,
                "smoke": args.smoke,
                **common.shape_of(args),
            },
            "results": results,
        }
    )


if __name__ == "__main__":
    common.run_main(main)
