"""Restoring trained models onto a mesh: the pre-training tokenizer, the fine-tuning backbone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax

from labram_jax import checkpoints
from labram_jax.models import factory
from labram_jax.train.sharding import abstract_with_shardings, shardings_of, unbox


def restore_on_mesh(
    path: str, mesh: jax.sharding.Mesh, rules: Sequence[tuple[str, Any]]
) -> tuple[Any, dict[str, Any], nn.Module]:
    """`(variables, meta, module)` of the checkpoint at `path`, each array placed by the sharding rules."""
    meta = checkpoints.read_meta(path)
    module = checkpoints.build_model(meta)
    abstract = factory.abstract_variables(module)
    shardings = shardings_of(abstract, mesh, rules)
    target = abstract_with_shardings(unbox(abstract), shardings)
    variables, meta = checkpoints.restore_model(path, target)
    return variables, meta, module


def shape_mismatches(expected: Any, found: Any) -> list[str]:
    """Paths whose shapes differ between two trees of the same structure (or structural differences)."""
    e = {jax.tree_util.keystr(p): x.shape for p, x in jax.tree_util.tree_flatten_with_path(expected)[0]}
    f = {jax.tree_util.keystr(p): x.shape for p, x in jax.tree_util.tree_flatten_with_path(found)[0]}
    out = [f"{k}: missing in checkpoint" for k in e if k not in f]
    out += [f"{k}: not in the model" for k in f if k not in e]
    out += [f"{k}: model {e[k]} vs checkpoint {f[k]}" for k in e if k in f and e[k] != f[k]]
    return out
