"""The plan of a config on a target (`plan`, the object `python -m labram_jax.plan --json` prints) and its
human-readable report (`report`)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

NOT_FITTING_EXIT_STATUS = 3
"""`python -m labram_jax.plan`'s exit status when the plan does not fit."""

NO_VERDICT_EXIT_STATUS = 4
"""... when it cannot say (unreliable depth probes, unknown device memory)."""


def _gib(n: float | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f} B"


def _finite(x: float) -> float | None:
    """JSON has no NaN: unknown figures (a step the compiler refused) are null."""
    return x if math.isfinite(x) else None


def _refusal(step: Any) -> dict[str, Any] | None:
    if step is None or step.refused is None:
        return None
    return dataclasses.asdict(step.refused)


def _eval_bytes(step: Any) -> dict[str, int]:
    return {
        "xla_arguments": step.arguments,
        "temporaries": step.temporaries,
        "code": step.generated_code,
        "total": step.total,
    }


def plan(
    config: Any,
    topology: str,
    *,
    memory_gib: float | None = None,
    evaluate: bool = True,
    search: bool = True,
    max_compiles: int = 3,
    config_name: str = "",
    depth_probes: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """The plan of `config` on `topology` as the JSON object `--json` prints. `depth_probes`: compile two
    shallow copies of the model and extrapolate in depth (`program.extrapolate`) instead of the whole."""
    from labram_jax.planning import levers, program, targets

    target = targets.resolve(topology, memory_gib)
    config, notes = program.prepare(config)
    if depth_probes:
        built = program.extrapolate(config, target.devices, depth_probes, evaluate=evaluate)
    else:
        built = program.build(config, target.devices, evaluate=evaluate)
    train, ev = built.train, built.eval
    capacity = target.capacity_bytes
    peak = max(train.total, ev.total if ev else 0)
    refusals = {"train": _refusal(train), "eval": _refusal(ev)}
    refused = any(refusals.values())
    # The compiler's refusal is the verdict: it knows what its runtime reserves, which the table's capacity
    # does not (a v4 chip has 32 GiB; libtpu made 30.75 GiB available to Giant's step).
    fits = False if refused else None if capacity is None or not built.reliable else peak <= capacity
    flops = _finite(train.flops)
    roofline = targets.roofline_seconds(train.flops, train.bytes_accessed, target.kind)
    result: dict[str, Any] = {
        "config": config_name,
        "stage": config.stage,
        "topology": target.name,
        "platform": target.platform,
        "device_kind": target.device_kind,
        "devices": len(target.devices),
        "mesh": dict(built.mesh.shape),
        "global_batch": built.global_batch,
        "micro_batch": built.micro_batch,
        "eval_batch": built.eval_batch,
        "param_count": built.param_count,
        "dtype": config["tokenizer" if config.stage == "tokenizer" else "model"].dtype,
        "remat": bool(config["tokenizer" if config.stage == "tokenizer" else "model"].remat),
        "per_device_bytes": {
            **built.per_device,
            "xla_arguments": train.arguments,
            "outputs_not_donated": train.outputs - train.aliased,
            "temporaries": train.temporaries,
            "code": train.generated_code,
            "total": train.total,
        },
        "eval_per_device_bytes": None if ev is None else _eval_bytes(ev),
        "capacity_bytes": capacity,
        "fits": fits,
        "refused_by_compiler": refusals if refused else None,
        "flops_per_step": None if flops is None else flops * len(target.devices),
        "flops_per_step_per_device": flops,
        "bytes_accessed_per_step_per_device": _finite(train.bytes_accessed),
        "roofline_step_seconds": roofline,
        "peak_flops_per_s": target.kind.peak_flops if target.kind else None,
        "hbm_bytes_per_s": target.kind.hbm_bytes_per_s if target.kind else None,
        "collectives": train.collectives,
        "eval_collectives": ev.collectives if ev else None,
        "compile_seconds": {"train": train.compile_seconds, "eval": ev.compile_seconds if ev else None},
        "estimate": target.is_estimate,
        "depth_probes": list(depth_probes) if depth_probes else None,
        "notes": target.notes + notes + built.notes,
    }
    if fits is False:
        result["levers"] = list(levers.LEVERS)
        if search:

            def size(changed: Any) -> int:
                sized = program.build(changed, target.devices, train=False, evaluate=False)
                return sum(sized.per_device.values())

            def compile_total(changed: Any) -> tuple[int, str | None]:
                if depth_probes:
                    step = program.extrapolate(changed, target.devices, depth_probes, evaluate=False).train
                else:
                    step = program.build(changed, target.devices, evaluate=False).train
                return step.total, step.refused.message if step.refused else None

            # XLA:CPU saves no memory with remat (docs/scale-out.md): its plans cannot judge that lever.
            remat_helps = target.platform != "cpu"
            found = levers.search(config, len(target.devices), capacity, size, compile_total, max_compiles, remat_helps)
            if not remat_helps:
                result["notes"].append(
                    "the search leaves model.remat out: XLA:CPU saves no memory with it, so this plan cannot "
                    "judge it (on TPU and GPU it shrinks the temporaries)"
                )
            result["suggestion"] = (
                None
                if found.overrides is None
                else {
                    "overrides": found.overrides,
                    "flags": levers.as_flags(found.overrides),
                    "total_bytes": found.total_bytes,
                    "note": "train step compiled with these overrides; the eval step was not re-planned",
                }
            )
            result["search"] = found.tried
    return result


def report(result: dict[str, Any]) -> str:
    """The human-readable plan."""
    b, ev = result["per_device_bytes"], result["eval_per_device_bytes"] or {}
    mesh = " ".join(f"{k}={v}" for k, v in result["mesh"].items())
    lines = [
        f"plan: {result['config'] or result['stage']} ({result['stage']}) on {result['topology']}: "
        f"{result['devices']} x {result['device_kind']}, {_gib(result['capacity_bytes'])} each",
        f"mesh {mesh}; global batch {result['global_batch']} (micro-batch {result['micro_batch']}), eval batch "
        f"{result['eval_batch']}; {result['param_count']:,} parameters, {result['dtype']}, remat "
        f"{'on' if result['remat'] else 'off'}",
        "",
        f"{'per device':<34}{'train step':>14}{'eval step':>14}",
    ]
    rows = [
        ("parameters", b["params"], None),
        ("optimiser state", b["optimizer"], None),
        ("model state (quantiser, step, rng)", b["model_state"], None),
        ("frozen tokenizer", b["frozen"], None),
        ("batch", b["batch"], None),
        ("  XLA arguments (as laid out)", b["xla_arguments"], ev.get("xla_arguments")),
        ("  outputs not written in place", b["outputs_not_donated"], None),
        ("  temporaries", b["temporaries"], ev.get("temporaries")),
        ("  code", b["code"], ev.get("code")),
        ("  total", b["total"], ev.get("total")),
    ]
    for name, train_value, eval_value in rows:
        lines.append(f"{name:<34}{_gib(train_value):>14}{_gib(eval_value) if eval_value is not None else '':>14}")
    capacity = result["capacity_bytes"]
    if capacity:
        peak = max(b["total"], ev.get("total", 0))
        verdict = {True: "fits", False: "DOES NOT FIT", None: "no verdict (see the notes)"}[result["fits"]]
        used = f"{100 * peak / capacity:.0f}% used"
        if result.get("refused_by_compiler"):  # its figures are a lower bound
            used = f"at least {used}"
        lines.append(f"{'capacity':<34}{_gib(capacity):>14}   -> {verdict} ({used})")
    else:
        lines.append("capacity unknown (give --memory_gib)")
    for step, refusal in (result.get("refused_by_compiler") or {}).items():
        if refusal:
            need, have = refusal["required_bytes"], refusal["available_bytes"]
            figures = f" ({refusal['what']} {_gib(need)} > {_gib(have)} available)" if need and have else ""
            lines.append(
                f"the compiler refused the {step} step{figures}: {refusal['message']}; the {step} step's "
                "figures above are a lower bound"
            )
    lines.append("")
    if result["flops_per_step_per_device"] is None or result["bytes_accessed_per_step_per_device"] is None:
        lines.append("compute: unknown (no compiled train step to analyse)")
    else:
        lines.append(
            f"compute: {result['flops_per_step_per_device']:.3g} FLOPs and "
            f"{result['bytes_accessed_per_step_per_device']:.3g} bytes accessed per device per step "
            f"({result['flops_per_step']:.3g} FLOPs per step on all devices)"
        )
    if result["roofline_step_seconds"] is not None:
        lines.append(
            f"roofline: >= {result['roofline_step_seconds'] * 1e3:.1f} ms per step at "
            f"{result['peak_flops_per_s'] / 1e12:.0f} TFLOP/s and {result['hbm_bytes_per_s'] / 1e9:.0f} GB/s per "
            "device (a lower bound from peak figures, not a measurement)"
        )
    coll = ", ".join(f"{c['kind']} x{c['count']} ({_gib(c['bytes'])})" for c in result["collectives"]) or "none"
    lines.append(f"collectives in the train step (static count, bytes per device): {coll}")
    seconds = result["compile_seconds"]
    lines.append(
        f"compile: train {seconds['train']:.0f} s" + (f", eval {seconds['eval']:.0f} s" if seconds["eval"] else "")
    )
    lines += [f"note: {n}" for n in result["notes"]]
    if result["fits"] is False:
        lines += ["", "levers:"] + [f"  {lever}" for lever in result["levers"]]
        suggestion = result.get("suggestion")
        if suggestion:
            lines.append(
                f"smallest change that fits: {suggestion['flags']} (train step {_gib(suggestion['total_bytes'])})"
            )
        elif "suggestion" in result:
            lines.append("no candidate change fitted; see --json's `search` for what was tried")
    return "\n".join(lines)
