"""The paper's protocol: one fine-tuning run per seed, then mean ± std of every test metric (ref. §6.8).

`--config.seeds=0,1,2,3,4` runs the stage once per seed in `<workdir>/seed_<s>` (each a complete workdir:
resumable, with its own checkpoints and `results.json`) and writes `<workdir>/seeds.json` and
`<workdir>/seeds.md`. The standard deviation is the sample one (ddof=1, n - 1 in the denominator), the
usual choice for a spread over independent runs; with one seed it is 0.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import ml_collections
import numpy as np

from labram_jax.config_errors import ConfigError

SEEDS_JSON = "seeds.json"
SEEDS_MD = "seeds.md"


def parse_seeds(value: str | int | Sequence[int]) -> list[int]:
    """`"0,1,2"` (or an int, or a list) -> `[0, 1, 2]`; a ConfigError names the field when malformed."""
    if isinstance(value, int):
        return [value]
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v) for v in value]
    try:
        seeds = [int(v) for v in items if v]
    except ValueError:
        raise ConfigError(f"config.seeds={value!r} must be comma-separated integers, e.g. 0,1,2,3,4") from None
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"config.seeds={value!r} repeats a seed")
    return seeds


def aggregate(per_seed: dict[int, dict[str, dict[str, float]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """`{seed: {dataset: {metric: value}}}` -> `{dataset: {metric: {mean, std, n, values}}}`.

    A metric missing from some seed's results is aggregated over the seeds that have it (`n` says how many).
    """
    out: dict[str, dict[str, dict[str, Any]]] = {}
    datasets = sorted({d for r in per_seed.values() for d in r})
    for d in datasets:
        metrics = sorted({m for r in per_seed.values() for m in r.get(d, {})})
        out[d] = {}
        for m in metrics:
            values = [float(r[d][m]) for _, r in sorted(per_seed.items()) if m in r.get(d, {})]
            arr = np.asarray(values, np.float64)
            out[d][m] = {
                "mean": float(arr.mean()),
                "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
                "n": len(values),
                "values": values,
            }
    return out


def markdown(table: dict[str, dict[str, dict[str, Any]]], seeds: Sequence[int]) -> str:
    """One section per test dataset: `metric | mean ± std | per-seed values`."""
    lines = [f"# Test metrics over seeds {', '.join(map(str, seeds))} (mean ± sample std)", ""]
    for dataset, metrics in table.items():
        lines += [
            f"## {dataset}",
            "",
            "| metric | mean ± std | " + " | ".join(f"seed {s}" for s in seeds) + " |",
            "|---|---|" + "---|" * len(seeds),
        ]
        for metric, r in metrics.items():
            cells = [f"{v:.4f}" for v in r["values"]] + [""] * (len(seeds) - r["n"])
            lines.append(f"| {metric} | {r['mean']:.4f} ± {r['std']:.4f} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def run_seeds(
    config: ml_collections.ConfigDict, workdir: str, run_one: Callable[[ml_collections.ConfigDict, str], dict[str, Any]]
) -> dict[str, Any]:
    """Runs `run_one(config with seed s, <workdir>/seed_<s>)` per seed and writes the table."""
    seeds = parse_seeds(config.seeds)
    if not seeds:
        raise ConfigError("config.seeds is empty")
    workdir = os.path.abspath(os.path.expanduser(workdir))
    per_seed: dict[int, dict[str, dict[str, float]]] = {}
    for s in seeds:
        sub = config.copy_and_resolve_references()
        sub.seed = s
        sub.seeds = ""
        results = run_one(sub, os.path.join(workdir, f"seed_{s}"))
        per_seed[s] = results.get("test", {})
    table = aggregate(per_seed)
    result = {"seeds": seeds, "test": table, "workdirs": {s: os.path.join(workdir, f"seed_{s}") for s in seeds}}
    if jax.process_index() == 0:
        os.makedirs(workdir, exist_ok=True)
        with open(os.path.join(workdir, SEEDS_JSON), "w") as f:
            json.dump(result, f, indent=2)
        text = markdown(table, seeds)
        with open(os.path.join(workdir, SEEDS_MD), "w") as f:
            f.write(text)
        print(text)
    return result
