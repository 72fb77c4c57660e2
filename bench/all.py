"""Runs every benchmark (each in its own process) and collects their JSON into one object.

    python -m bench.all [--smoke] [--out=FILE] [--only=train_step,loader] [--skip=scaling] [--dtype=bfloat16]

Prints the combined JSON on stdout (and writes it to `--out`), and a markdown summary on stderr. A
benchmark that fails is recorded as `{"error": ...}` and the others still run; the exit code is 1 then.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common

BENCHMARKS = ("train_step", "torch_reference", "inference", "loader", "scaling", "profile")
DTYPE_AWARE = ("train_step", "torch_reference", "inference", "scaling", "loader", "profile")


def _f(x, fmt: str = "{:.3g}") -> str:
    return fmt.format(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else "-"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def markdown(report: dict) -> str:
    """The summary tables of a `bench.all` report."""
    m = report.get("machine", {})
    lines = [
        f"Machine: {m.get('cpu_model')} ({m.get('cpu_cores_available')} cores), device {m.get('device_kind')}, "
        f"jax {m.get('versions', {}).get('jax')}, torch {m.get('versions', {}).get('torch')}, "
        f"{m.get('date_utc')}, load {m.get('load_average_1_5_15')}",
        "",
    ]
    b = report.get("benchmarks", {})
    gib = 2**30

    def error_line(name: str, r: dict) -> list[str]:
        return [f"**{name}**: {r.get('error') or r.get('skipped')}", ""]

    r = b.get("train_step")
    if r is not None:
        if "results" in r:
            rows = [
                [
                    n,
                    _f(x.get("step_s")),
                    _f(x.get("samples_per_s")),
                    _f(x.get("tokens_per_s")),
                    _f(x.get("compile_s")),
                    _f((x.get("model_flops_per_step") or 0) / 1e9),
                    _f(x.get("utilization"), "{:.1%}"),
                    _f((x.get("peak_memory_bytes") or 0) / gib),
                    _f(x.get("page_faults_per_step"), "{:.0f}"),
                    _f((x.get("cpu_during_timed_steps") or {}).get("others_cores_busy")),
                ]
                if "error" not in x
                else [n, x["error"]] + ["-"] * 8
                for n, x in r["results"].items()
            ]
            lines += (
                ["train_step"]
                + _table(
                    [
                        "config",
                        "s/step",
                        "samples/s",
                        "tokens/s",
                        "compile s",
                        "GFLOP/step",
                        "utilisation",
                        "peak mem GiB",
                        "faults/step",
                        "others' cores",
                    ],
                    rows,
                )
                + [""]
            )
        else:
            lines += error_line("train_step", r)
    r = b.get("torch_reference")
    if r is not None:
        if "results" in r:
            rows = [
                [
                    n,
                    _f(x.get("ours_step_s")),
                    _f(x.get("theirs_step_s")),
                    _f(x.get("ratio_ours_over_theirs")),
                    _f((x.get("cpu_during_rounds") or {}).get("others_cores_busy")),
                ]
                if "error" not in x
                else [n, x["error"], "-", "-", "-"]
                for n, x in r["results"].items()
            ]
            lines += ["torch_reference (ours vs braindecode Labram, interleaved)"] + _table(
                ["config", "ours s/step", "torch s/step", "ours/torch", "others' cores"], rows
            )
            pc = r.get("param_counts", {})
            lines += [
                f"params (6-class Base head): braindecode {pc.get('braindecode_labram')}, ours {pc.get('ours')}, "
                f"official {pc.get('official_base_classifier')}",
                "",
            ]
        else:
            lines += error_line("torch_reference", r)
    r = b.get("inference")
    if r is not None:
        if "ours_windows_per_s" in r:
            lines += (
                ["inference (features over a long recording)"]
                + _table(
                    ["windows", "ours windows/s", "torch windows/s", "ours/torch time", "x realtime"],
                    [
                        [
                            str(r.get("windows")),
                            _f(r.get("ours_windows_per_s")),
                            _f(r.get("theirs_windows_per_s")),
                            _f(r.get("ratio_ours_over_theirs")),
                            _f(r.get("ours_x_realtime")),
                        ]
                    ],
                )
                + [""]
            )
        else:
            lines += error_line("inference", r)
    r = b.get("loader")
    if r is not None:
        if "loader_batches_per_s" in r:
            lines += (
                ["loader (demo/tuab, training loader)"]
                + _table(
                    ["batches/s", "step steps/s", "loader / step (goal >= 3)", "loop overhead"],
                    [
                        [
                            _f(r.get("loader_batches_per_s")),
                            _f(r.get("step_steps_per_s")),
                            _f(r.get("ratio_loader_over_step")),
                            _f(r.get("loop_overhead_fraction"), "{:.1%}"),
                        ]
                    ],
                )
                + [""]
            )
        else:
            lines += error_line("loader", r)
    r = b.get("scaling")
    if r is not None:
        if "tokens" in r:
            rows = [
                [
                    x.get("config", "-"),
                    f"{x.get('channels')}x{x.get('seconds')}",
                    str(x.get("tokens_per_example")),
                    _f(x.get("step_s")),
                    _f(x.get("tokens_per_s")),
                    _f(x.get("attention_flop_share"), "{:.1%}"),
                    _f(x.get("attention_time_share"), "{:.1%}"),
                ]
                if "error" not in x
                else [x["error"]] + ["-"] * 6
                for x in r["tokens"] + r["models"]
            ]
            lines += (
                ["scaling (fine-tuning step)"]
                + _table(["config", "C x s", "tokens", "s/step", "tokens/s", "attention FLOPs", "attention time"], rows)
                + [""]
            )
        else:
            lines += error_line("scaling", r)
    r = b.get("profile")
    if r is not None:
        if "results" in r:
            for n, x in r["results"].items():
                if "error" in x:
                    lines += [f"**profile {n}**: {x['error']}", ""]
                    continue
                lines += (
                    [
                        f"profile {n}: {_f(x.get('step_s'))} s/step traced, ops {_f(x.get('op_s_per_step'))} s/step "
                        f"({x.get('events_from')} events)"
                    ]
                    + _table(
                        ["phase", "part", "ms/step", "share"],
                        [
                            [p["phase"], p["part"], _f(p["ms_per_step"]), _f(p["share"], "{:.1%}")]
                            for p in x.get("by_part", [])[:8]
                        ],
                    )
                    + [""]
                )
        else:
            lines += error_line("profile", r)
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="every benchmark in smoke mode")
    parser.add_argument("--out", default=None, help="also write the combined JSON here")
    parser.add_argument("--only", default=None, help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    parser.add_argument("--skip", default="", help="comma-separated benchmarks to leave out")
    parser.add_argument("--dtype", default=None, choices=("float32", "bfloat16"), help="model.dtype for all")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per benchmark")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    names = [n for n in names if n and n not in args.skip.split(",")]
    for n in names:
        if n not in BENCHMARKS:
            raise SystemExit(f"unknown benchmark {n!r}; choose from {', '.join(BENCHMARKS)}")
    common.smoke_env(args)
    report = {"benchmark": "all", "machine": common.machine_info(), "smoke": args.smoke, "benchmarks": {}}
    t0 = time.perf_counter()
    for name in names:
        flags = (["--smoke"] if args.smoke else []) + (
            [f"--dtype={args.dtype}"] if args.dtype and name in DTYPE_AWARE else []
        )
        report["benchmarks"][name] = common.run_module(f"bench.{name}", flags, timeout=args.timeout)
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    report["load_average_1_5_15_end"] = common.load_average()
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    print(markdown(report), file=sys.stderr)
    common.emit(report)
    return 1 if _has_error(report["benchmarks"]) else 0


def _has_error(obj) -> bool:
    if isinstance(obj, dict):
        return "error" in obj or any(_has_error(v) for v in obj.values())
    if isinstance(obj, list):
        return any(_has_error(v) for v in obj)
    return False


if __name__ == "__main__":
    common.run_main(main)
