"""The "Meshes that fit" table of docs/scale-out.md: `python -m labram_jax.plan` for each model, stage and
TPU slice, at the reference's global batch sizes, with parameters and optimiser state sharded over every
device, bf16 and remat (the settings of `configs/giant.py`).

    python -m bench.mesh_table [--only=huge-finetune-v5e-16,...] [--whole] [--search=N] [--out=/tmp/mesh_table]
        [--markdown]

Each entry is a fresh `python -m labram_jax.plan ... --json --noeval --nosearch --depth_probes=2,4` process
(`--whole`: the whole model compiled, which takes Huge and Giant many minutes each on 2 CPU cores); its
JSON goes to `<out>/<entry>.json` (`<entry>.whole.json`), and an entry already there is not planned again.
`--search=N`: an entry that does not fit is planned with `--max_compiles=N` instead of `--nosearch`, so that
the table names the smallest change that fits.
`--markdown` prints the table from what is in `<out>`, and the probes-vs-whole comparison of the entries
planned both ways.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLICES = ("v5e-16", "v5p-8", "v4-32")
SETTINGS = (
    "--config.mesh.data=1",
    "--config.mesh.fsdp=-1",
    "--config.model.dtype=bfloat16",
    "--config.model.remat=True",
)


def config_of(size: str, stage: str) -> str:
    if stage == "pretrain":
        return f"configs/{size}.py"
    return f"configs/finetune_tuab.py:{size}"


def entries() -> list[tuple[str, str, str, str]]:
    """`(name, size, stage, slice)`, the sizes people ask about first."""
    out = [("giant-pretrain-v5p-8", "giant", "pretrain", "v5p-8")]
    for slice_name in SLICES:
        for size in ("huge", "large", "base"):
            for stage in ("finetune", "pretrain"):
                out.append((f"{size}-{stage}-{slice_name}", size, stage, slice_name))
    out += [(f"giant-pretrain-{s}", "giant", "pretrain", s) for s in SLICES if s != "v5p-8"]
    return out


PROBES = "--depth_probes=2,4"


def plan_one(size: str, stage: str, slice_name: str, whole: bool = False, search: int = 0) -> dict:
    args = [
        sys.executable,
        "-m",
        "labram_jax.plan",
        f"--config={config_of(size, stage)}",
        f"--topology={slice_name}",
        *SETTINGS,
        "--noeval",
        *([f"--max_compiles={search}"] if search else ["--nosearch"]),
        "--json",
        *([] if whole else [PROBES]),
    ]
    start = time.time()
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode not in (0, 3):
        return {"error": proc.stderr[-2000:], "command": " ".join(args[1:])}
    result = json.loads(proc.stdout)
    result["wall_seconds"] = time.time() - start
    result["command"] = "python " + " ".join(args[1:])
    return result


def _load(out: str, name: str, whole: bool = False) -> dict | None:
    path = os.path.join(out, f"{name}{'.whole' if whole else ''}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def comparison(out: str) -> str:
    """Depth probes against the whole model, for the entries planned both ways."""
    gib = 2**30
    rows = [
        "| entry | total, depth probes | total, whole | temporaries, probes / whole | FLOPs, probes / whole "
        "| compile, probes / whole |",
        "|---|---|---|---|---|---|",
    ]
    for name, *_ in entries():
        probed, whole = _load(out, name), _load(out, name, whole=True)
        if not probed or not whole or "error" in probed or "error" in whole:
            continue
        p, w = probed["per_device_bytes"], whole["per_device_bytes"]
        rows.append(
            f"| {name} | {p['total'] / gib:.2f} GiB | {w['total'] / gib:.2f} GiB | "
            f"{p['temporaries'] / max(w['temporaries'], 1):.3f} | "
            f"{probed['flops_per_step_per_device'] / whole['flops_per_step_per_device']:.4f} | "
            f"{probed['compile_seconds']['train']:,.0f} s / {whole['compile_seconds']['train']:,.0f} s |"
        )
    return "\n".join(rows)


def _verdict(r: dict) -> str:
    if r["fits"]:
        return "yes"
    verdict = "NO (the compiler refuses it)" if r.get("refused_by_compiler") else "NO"
    suggestion = r.get("suggestion")
    if suggestion:
        verdict += f"; fits with `{suggestion['flags']}` ({suggestion['total_bytes'] / 2**30:.2f} GiB)"
    return verdict


def _roofline(r: dict) -> str:
    seconds = r["roofline_step_seconds"]
    return "-" if seconds is None else f"{seconds * 1e3:,.0f} ms"


def markdown(out: str) -> str:
    gib = 2**30
    rows = [
        "| model | stage | slice | mesh (data x fsdp) | batch | params + optimiser | temporaries | total / capacity "
        "| fits | roofline step | planned | compile |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, size, stage, slice_name in entries():
        r = _load(out, name, whole=True) or _load(out, name)  # the whole compile decides where there is one
        if r is None:
            continue
        if "error" in r:
            rows.append(f"| {size} | {stage} | {slice_name} | error: {r['error'].splitlines()[-1][:80]} |")
            continue
        b = r["per_device_bytes"]
        probes = r.get("depth_probes")
        planned = f"probes {probes[0]},{probes[1]}" if probes else "whole"
        rows.append(
            f"| {size} ({r['param_count'] / 1e6:,.0f}M) | {stage} | {slice_name} | {r['mesh']['data']} x "
            f"{r['mesh']['fsdp']} | {r['global_batch']} | {(b['params'] + b['optimizer']) / gib:.2f} GiB | "
            f"{b['temporaries'] / gib:.2f} GiB | {b['total'] / gib:.2f} / {r['capacity_bytes'] / gib:.0f} GiB | "
            f"{_verdict(r)} | {_roofline(r)} | {planned} | "
            f"{r['compile_seconds']['train']:,.0f} s |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated entry names (default: all)")
    parser.add_argument("--out", default="/tmp/mesh_table")
    parser.add_argument("--whole", action="store_true", help="compile the whole model (no depth probes)")
    parser.add_argument("--markdown", action="store_true", help="print the table of what --out holds")
    parser.add_argument(
        "--search", type=int, default=0, help="where an entry does not fit, compile up to this many candidate changes"
    )
    args = parser.parse_args()
    if args.markdown:
        print(markdown(args.out))
        print()
        print(comparison(args.out))
        return 0
    os.makedirs(args.out, exist_ok=True)
    known = {entry[0]: entry for entry in entries()}
    wanted = list(filter(None, args.only.split(",")))
    unknown = [name for name in wanted if name not in known]
    if unknown:
        parser.error(f"unknown entries {unknown}; known: {', '.join(known)}")
    # --only plans in the order given, so that the entries wanted first are done first.
    for name, size, stage, slice_name in [known[name] for name in wanted] or list(known.values()):
        path = os.path.join(args.out, f"{name}{'.whole' if args.whole else ''}.json")
        if os.path.exists(path):
            continue
        print(f"planning {name} ...", flush=True)
        result = plan_one(size, stage, slice_name, args.whole, args.search)
        with open(path, "w") as f:
            json.dump(result, f, indent=2)
        print(f"  {name}: fits={result.get('fits')} total={result.get('per_device_bytes', {}).get('total')} "
              f"compile={result.get('compile_seconds')}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
