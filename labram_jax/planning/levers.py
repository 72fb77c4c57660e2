"""The changes that shrink a step's memory, and the search for the smallest one that fits.

In order of how little they change the run: recomputing activations in the backward pass (`remat`: same
numbers, ~1/3 more compute), gradient accumulation (same global batch and optimiser step, smaller
micro-batches), sharding parameters and optimiser state over every device (`fsdp`: same numbers, more
all-gathers), then bf16 activations and matmuls (`dtype`: different rounding). Each candidate is first
sized without compiling (parameters, optimiser state, frozen inputs and batch per device, a lower bound on
the step's memory); only those that may fit are compiled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import ml_collections

from labram_jax.config_errors import ConfigError

LEVERS = (
    "--config.mesh.fsdp / --config.mesh.tensor (shard parameters and optimiser state; "
    "--config.mesh.data=1 --config.mesh.fsdp=-1 puts every device on fsdp)",
    "--config.optim.grad_accum_steps (smaller micro-batches, same global batch) or --config.optim.batch_size",
    "--config.model.remat=True (recompute activations in the backward pass)",
    "--config.model.dtype=bfloat16 (bf16 activations and matmuls)",
)


def _model_section(config: ml_collections.ConfigDict) -> str:
    return "tokenizer" if config.stage == "tokenizer" else "model"


def candidates(config: ml_collections.ConfigDict, num_devices: int, remat_helps: bool = True) -> list[dict[str, Any]]:
    """Overrides (dotted field -> value) to try, smallest change first; those already in place are left out.
    `remat_helps=False` (XLA:CPU targets, whose scheduler makes remat save no memory) leaves remat out."""
    section = _model_section(config)
    remat = {} if config[section].remat or not remat_helps else {f"{section}.remat": True}
    mesh = config.mesh
    all_fsdp = {}
    if not (mesh.data == 1 and mesh.fsdp in (-1, num_devices // max(mesh.tensor, 1))):
        all_fsdp = {"mesh.data": 1, "mesh.fsdp": -1}
    bf16 = {} if config[section].dtype == "bfloat16" else {f"{section}.dtype": "bfloat16"}
    accum = config.optim.grad_accum_steps
    accums = [{"optim.grad_accum_steps": accum * k} for k in (2, 4, 8)]
    out: list[dict[str, Any]] = [remat, *accums, all_fsdp, {**remat, **all_fsdp}]
    out += [{**remat, **all_fsdp, **a} for a in accums]
    out += [{**remat, **all_fsdp, **bf16, **a} for a in ({}, *accums)]
    seen, unique = set(), []
    for overrides in out:
        key = tuple(sorted(overrides.items()))
        if overrides and key not in seen:
            seen.add(key)
            unique.append(overrides)
    return unique


def apply(config: ml_collections.ConfigDict, overrides: dict[str, Any]) -> ml_collections.ConfigDict:
    changed = ml_collections.ConfigDict(config.to_dict())
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = changed
        for p in parents:
            node = node[p]
        node[leaf] = value
    return changed


def as_flags(overrides: dict[str, Any]) -> str:
    return " ".join(f"--config.{k}={v}" for k, v in overrides.items())


@dataclasses.dataclass
class Suggestion:
    overrides: dict[str, Any] | None
    """The smallest change that fits, or None when no candidate did."""
    total_bytes: int | None
    tried: list[dict[str, Any]]
    """Every candidate looked at: overrides, `lower_bound` bytes, and `total` when compiled."""


def search(
    config: ml_collections.ConfigDict,
    num_devices: int,
    capacity: int,
    size: Callable[[ml_collections.ConfigDict], int],
    compile_total: Callable[[ml_collections.ConfigDict], tuple[int, str | None]],
    max_compiles: int = 3,
    remat_helps: bool = True,
) -> Suggestion:
    """The first candidate whose compiled train step fits `capacity`. `size(config)` gives the lower bound
    without compiling; `compile_total(config)` the compiled step's bytes per device and, when the compiler
    refused the step for memory, its message (then the candidate does not fit, whatever the bytes say)."""
    tried: list[dict[str, Any]] = []
    compiles = 0
    for overrides in candidates(config, num_devices, remat_helps):
        changed = apply(config, overrides)
        row: dict[str, Any] = {"overrides": overrides}
        tried.append(row)
        try:
            row["lower_bound"] = bound = size(changed)
        except ConfigError as err:  # e.g. a micro-batch that no longer splits over the devices
            row["skipped"] = str(err)
            continue
        if bound > capacity:
            continue
        if compiles >= max_compiles:
            row["skipped"] = f"not compiled (--max_compiles={max_compiles})"
            continue
        compiles += 1
        total, refused = compile_total(changed)
        row["total"] = total
        if refused:
            row["refused"] = refused
        elif total <= capacity:
            return Suggestion(overrides, total, tried)
    return Suggestion(None, None, tried)
