"""AdamW as the reference builds it (ref. §4.8, §5.4, §6.4): parameter groups, schedules, clipping.

* Weight decay is decoupled and multiplied by the group's lr (torch `AdamW`), constant over the run. No
  decay for 1-D tensors, biases, and `cls_token` / `pos_embed` / `time_embed`. In our layout the decayed
  leaves are exactly the `kernel`s and the pre-training `mask_token` (a 3-D tensor in the reference, hence
  decayed there; a vector here).
* Fine-tuning scales each parameter's lr (and with it its decay) by `layer_decay ** (L + 1 - layer_id)`
  with the reference's layer ids: embeddings (`cls_token`, `pos_embed`, `patch_embed`) 0, block j j + 1,
  everything else (`time_embed` included, a quirk of the reference) L + 1, i.e. scale 1.
* Parameters the official forward never uses (the pre-training student's own `lm_head` and the
  `projection_head`) get no update at all, as torch skips parameters without gradients.
* Gradient clipping by global L2 norm where the reference clips (pre-training: 3.0). optax scales by
  `max_norm / norm`; torch by `max_norm / (norm + 1e-6)`: a relative difference below 1e-6 / norm.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import numpy as np
import optax

from labram_jax.train.schedules import as_optax, cosine_scheduler

DECAYED_LEAVES = ("kernel", "mask_token")
FROZEN_PREFIXES = (("student", "lm_head"), ("projection_head",))
"""Pre-training parameters outside the official forward (kept for one-to-one checkpoints, never trained)."""

FROZEN = "frozen"


def _keys(path: tuple) -> tuple[str, ...]:
    return tuple(getattr(p, "key", str(p)) for p in path)


def decay_mask(params: Any) -> Any:
    """True where AdamW applies weight decay."""
    return jax.tree_util.tree_map_with_path(lambda path, _: _keys(path)[-1] in DECAYED_LEAVES, params)


def is_frozen(path: tuple[str, ...]) -> bool:
    return any(path[: len(prefix)] == prefix for prefix in FROZEN_PREFIXES)


def layer_id(path: tuple[str, ...], depth: int) -> int:
    """`get_num_layer_for_vit` on our names: 0 for the embeddings, j + 1 for block j, else depth + 1."""
    keys = path[1:] if path and path[0] == "backbone" else None
    if keys is None:  # fc_norm, head
        return depth + 1
    if keys[0] in ("cls_token", "mask_token", "pos_embed", "patch_embed"):
        return 0
    if keys[0].startswith("blocks_"):
        return int(keys[0].split("_")[1]) + 1
    return depth + 1


def layer_scale(lid: int, depth: int, layer_decay: float) -> float:
    """`LayerDecayValueAssigner`: `layer_decay ** (depth + 1 - layer_id)`."""
    return float(layer_decay ** (depth + 1 - lid))


def group_labels(
    params: Any, depth: int | None, layer_decay: float, frozen: Callable[[tuple[str, ...]], bool] = is_frozen
) -> tuple[Any, dict[str, float]]:
    """One label per leaf (`frozen`, or an lr group) and each group's lr scale (ref. §6.4: all one group
    when `layer_decay == 1`)."""
    groups: dict[str, float] = {}

    def label(path, _):
        keys = _keys(path)
        if frozen(keys):
            return FROZEN
        if depth is None or layer_decay == 1.0:
            groups["all"] = 1.0
            return "all"
        lid = layer_id(keys, depth)
        name = f"layer_{lid}"
        groups[name] = layer_scale(lid, depth, layer_decay)
        return name

    return jax.tree_util.tree_map_with_path(label, params), groups


def peak_lr(optim: ml_collections.ConfigDict) -> float:
    """The schedule's peak: `optim.lr`, times `batch_size / 128` for the tokenizer (`lr_batch_rescale`)."""
    lr = float(optim.lr)
    if optim.get("lr_batch_rescale", False):
        lr *= optim.batch_size / 128
    return lr


def lr_schedule(optim: ml_collections.ConfigDict, steps_per_epoch: int) -> np.ndarray:
    """The per-step lr table of the run (warm-up from 0, then cosine to `min_lr`)."""
    return cosine_scheduler(
        peak_lr(optim),
        optim.min_lr,
        optim.epochs,
        steps_per_epoch,
        optim.warmup_epochs,
        start_warmup_value=0.0,
        warmup_steps=optim.warmup_steps,
    )


def make_optimizer(
    optim: ml_collections.ConfigDict,
    params: Any,
    steps_per_epoch: int,
    depth: int | None = None,
    frozen: Callable[[tuple[str, ...]], bool] = is_frozen,
) -> tuple[optax.GradientTransformation, Callable[[Any], Any]]:
    """`(transformation, schedule)`: clip -> Adam moments -> decoupled decay -> -lr(step) -> group scale.

    `depth` enables layer-wise lr decay (`optim.layer_decay`) with the backbone's layer ids. `frozen(path)`
    names the parameters that never change (no update, no weight decay): by default those outside the
    official forward; partial fine-tuning adds the frozen part of the backbone.
    """
    layer_decay = float(optim.get("layer_decay", 1.0))
    labels, groups = group_labels(params, depth, layer_decay, frozen)
    schedule = as_optax(lr_schedule(optim, steps_per_epoch))
    parts = []
    if optim.get("clip_grad_norm", 0.0):
        parts.append(optax.clip_by_global_norm(float(optim.clip_grad_norm)))
    parts += [
        optax.scale_by_adam(b1=optim.b1, b2=optim.b2, eps=optim.eps),
        optax.add_decayed_weights(optim.weight_decay, mask=decay_mask(params)),
        optax.scale_by_learning_rate(schedule),
    ]
    per_group = {name: (optax.identity() if math.isclose(s, 1.0) else optax.scale(s)) for name, s in groups.items()}
    per_group[FROZEN] = optax.set_to_zero()
    parts.append(optax.multi_transform(per_group, labels))
    return optax.chain(*parts), schedule
