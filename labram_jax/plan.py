"""`python -m labram_jax.plan --config=configs/X.py --topology=T [--config.key=value ...] [--json]`.

Compiles the config's real train step (and eval step) ahead of time for a target and reports, per device,
the bytes of parameters, optimiser state, batch and XLA temporaries against the device's memory, the FLOPs
and bytes of one step with the roofline time they allow, and the collectives XLA inserted. Targets: a TPU
slice by name (`v5e-16`, `v5p-8`, `v4-32`, ...; compiled with libtpu, no TPU needed: `pip install -e '.[tpu]'`),
`cpu:N` (N fake CPU devices: exact parameter and optimiser sizes of an N-device mesh, XLA:CPU estimates of the
rest; `--memory_gib` sets the device memory, e.g. a GPU's) or `local` (this process's devices).

Exit status: 0 when the plan fits, 3 when it does not (the levers are named and, unless --nosearch, the
smallest change that fits is searched for and printed), 1 for a config error, 2 for a usage error.
"""

from __future__ import annotations

import os
import re
import sys

NOT_FITTING_EXIT_STATUS = 3


def _prepare_environment(argv: list[str]) -> None:
    """Before JAX starts: fake CPU devices for `cpu:N`; quiet, compile-only libtpu for TPU slices."""
    topology = next((a.split("=", 1)[1] for a in argv if a.startswith("--topology=")), None)
    if topology is None and "--topology" in argv[:-1]:
        topology = argv[argv.index("--topology") + 1]
    if topology is None:
        return
    match = re.fullmatch(r"cpu:(\d+)", topology)
    if match:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_force_host_platform_device_count" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={match.group(1)}".strip()
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    elif topology != "local":
        # A TPU slice: compile-only libtpu (planning.targets), and JAX's own backend on the CPU, so that
        # libtpu is not also started (and locked) as this host's accelerator.
        os.environ.setdefault("JAX_PLATFORMS", "cpu")


if __name__ == "__main__":
    _prepare_environment(sys.argv[1:])

import json  # noqa: E402
from typing import Any  # noqa: E402

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from labram_jax import config_cli  # noqa: E402
from labram_jax.config_errors import ConfigError  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file (configs/*.py).", lock_config=True)
_TOPOLOGY = flags.DEFINE_string(
    "topology", None, "Target: a TPU slice (v5e-16, v5p-8, v4-32, ...), cpu:N (N fake CPU devices) or local."
)
_JSON = flags.DEFINE_bool("json", False, "Print one JSON object instead of the report.")
_MEMORY_GIB = flags.DEFINE_float(
    "memory_gib", None, "Memory per device in GiB (default: the device kind's; cpu:N: the host's split N ways)."
)
_EVAL = flags.DEFINE_bool("eval", True, "Also compile the eval step (--noeval: the train step only).")
_SEARCH = flags.DEFINE_bool(
    "search", True, "When the plan does not fit, compile candidate changes until one fits (--nosearch: name them)."
)
_MAX_COMPILES = flags.DEFINE_integer("max_compiles", 3, "At most this many candidate compiles in the search.")


def _gib(n: float | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f} B"


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
) -> dict[str, Any]:
    """The plan of `config` on `topology` as the JSON object `--json` prints."""
    from labram_jax.planning import levers, program, targets

    target = targets.resolve(topology, memory_gib)
    config, notes = program.prepare(config)
    built = program.build(config, target.devices, evaluate=evaluate)
    train, ev = built.train, built.eval
    capacity = target.capacity_bytes
    peak = max(train.total, ev.total if ev else 0)
    fits = None if capacity is None else peak <= capacity
    flops = train.flops
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
        "flops_per_step": flops * len(target.devices),
        "flops_per_step_per_device": flops,
        "bytes_accessed_per_step_per_device": train.bytes_accessed,
        "roofline_step_seconds": roofline,
        "peak_flops_per_s": target.kind.peak_flops if target.kind else None,
        "hbm_bytes_per_s": target.kind.hbm_bytes_per_s if target.kind else None,
        "collectives": train.collectives,
        "eval_collectives": ev.collectives if ev else None,
        "compile_seconds": {"train": train.compile_seconds, "eval": ev.compile_seconds if ev else None},
        "estimate": target.is_estimate,
        "notes": target.notes + notes + built.notes,
    }
    if fits is False:
        result["levers"] = list(levers.LEVERS)
        if search:

            def size(changed: Any) -> int:
                sized = program.build(changed, target.devices, train=False, evaluate=False)
                return sum(sized.per_device.values())

            def compile_total(changed: Any) -> int:
                return program.build(changed, target.devices, evaluate=False).train.total

            found = levers.search(config, len(target.devices), capacity, size, compile_total, max_compiles)
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
        verdict = "fits" if result["fits"] else "DOES NOT FIT"
        lines.append(f"{'capacity':<34}{_gib(capacity):>14}   -> {verdict} ({100 * peak / capacity:.0f}% used)")
    else:
        lines.append("capacity unknown (give --memory_gib)")
    lines += [
        "",
        f"compute: {result['flops_per_step_per_device']:.3g} FLOPs and "
        f"{result['bytes_accessed_per_step_per_device']:.3g} bytes accessed per device per step "
        f"({result['flops_per_step']:.3g} FLOPs per step on all devices)",
    ]
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


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    if _CONFIG.value is None:
        raise app.UsageError("--config is required, e.g. --config=configs/huge.py")
    if not _TOPOLOGY.value:
        raise app.UsageError("--topology is required: a TPU slice (e.g. v5e-16), cpu:N or local")
    from labram_jax.planning.targets import TargetError

    try:
        result = plan(
            _CONFIG.value,
            _TOPOLOGY.value,
            memory_gib=_MEMORY_GIB.value,
            evaluate=_EVAL.value,
            search=_SEARCH.value,
            max_compiles=_MAX_COMPILES.value,
            config_name=flags.FLAGS["config"].serialize().split("=", 1)[-1],
        )
    except TargetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str) if _JSON.value else report(result))
    return NOT_FITTING_EXIT_STATUS if result["fits"] is False else 0


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)), flags_parser=config_cli.parse_flags)
