"""`stage = "pipeline"`: several stages in sequence, each in its own sub-directory of the workdir, wired
together (a pre-training stage gets the tokenizer trained before it, a fine-tuning stage the pre-trained
backbone), then one results table. `configs/demo.py` is such a pipeline on the synthetic demo datasets."""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import ml_collections

from labram_jax.train.loop import run

HEADLINE = {"binary": ("balanced_accuracy", "roc_auc", "pr_auc"),
            "multiclass": ("balanced_accuracy", "cohen_kappa", "f1_weighted"),
            "regression": ("pearson_r", "r2", "rmse")}


def ensure_demo_data(data_dir: str) -> None:
    """Builds `demo/tuab` and `demo/tuev` into `data_dir` unless they are there already."""
    root = os.path.expanduser(data_dir)
    missing = [c for c in ("tuab", "tuev") if not os.path.isdir(os.path.join(root, "demo", c))]
    if not missing:
        return
    from tfds_builders.build import build

    print(f"[pipeline] building the demo datasets ({', '.join(missing)}) in {root}")
    for config_name in missing:
        build("demo", root, config=config_name)


def wire(sub: ml_collections.ConfigDict, done: dict[str, str], data_dir: str) -> ml_collections.ConfigDict:
    """The sub-stage's config with the shared data_dir and the checkpoints of the stages before it."""
    sub = ml_collections.ConfigDict(sub.to_dict())
    sub.data.data_dir = data_dir
    if sub.stage == "pretrain" and not sub.tokenizer.checkpoint:
        tokenizers = [d for n, d in done.items() if n.startswith("tokenizer")]
        if tokenizers:
            sub.tokenizer.checkpoint = tokenizers[-1]
    if sub.stage in ("finetune", "evaluate") and not sub.get("init_checkpoint", ""):
        pretrained = [d for n, d in done.items() if n.startswith("pretrain")]
        if pretrained:
            sub.init_checkpoint = pretrained[-1]
    return sub


def results_table(results: dict[str, dict[str, Any]], configs: dict[str, ml_collections.ConfigDict]) -> str:
    """A markdown table of the test metrics of every fine-tuning stage."""
    lines = ["| task | test metrics (selected on validation) |", "|---|---|"]
    for name, res in results.items():
        if configs[name].stage != "finetune":
            continue
        kind = configs[name].task.kind
        for label, metrics in res.get("test", {}).items():
            cells = ", ".join(f"{k} {metrics[k]:.3f}" for k in HEADLINE[kind] if k in metrics)
            lines.append(f"| {name} ({label}) | {cells} |")
    return "\n".join(lines)


def run_pipeline(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    workdir = os.path.abspath(os.path.expanduser(workdir))
    if config.get("build_demo_data", False) and jax.process_index() == 0:
        ensure_demo_data(config.data_dir)
    done: dict[str, str] = {}
    results: dict[str, Any] = {}
    configs: dict[str, ml_collections.ConfigDict] = {}
    for name in config.order:
        if name not in config.stages:
            raise ValueError(f"config.order names {name!r}, which is not in config.stages ({sorted(config.stages)})")
        sub = wire(config.stages[name], done, config.data_dir)
        print(f"\n=== {name}: stage {sub.stage} in {os.path.join(workdir, name)}")
        results[name] = run(sub, os.path.join(workdir, name))
        configs[name] = sub
        done[name] = os.path.join(workdir, name)
    table = results_table(results, configs)
    if jax.process_index() == 0:
        with open(os.path.join(workdir, "results.json"), "w") as f:
            json.dump({"stages": results, "table": table}, f, indent=2, default=str)
        with open(os.path.join(workdir, "results.md"), "w") as f:
            f.write(table + "\n")
    print("\n" + table)
    return results
