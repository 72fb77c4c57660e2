"""The train state and its step function: gradient accumulation, optimiser update, metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from labram_jax.train.sharding import BATCH_AXES

LossFn = Callable[..., tuple[jax.Array, tuple[dict[str, jax.Array], Any]]]
"""`(params, extra, batch, rng, frozen) -> (loss, (metrics, new_extra))`."""


@flax.struct.dataclass
class TrainState:
    """Everything a step changes. `extra` holds the non-gradient collections (the tokenizer's quantiser);
    `rng` is the run's base key: step t uses `fold_in(rng, t)`, so resuming needs no rng bookkeeping."""

    step: jax.Array
    params: Any
    opt_state: Any
    extra: Any
    rng: jax.Array


def _split_micro(batch: dict[str, jax.Array], accum: int) -> dict[str, jax.Array]:
    """`(B, ...) -> (accum, B / accum, ...)` taking every accum-th row, so that each micro-batch keeps the
    batch's data-parallel layout (a plain reshape would put micro-batch i on one device group)."""

    def split(x):
        x = x.reshape((x.shape[0] // accum, accum) + x.shape[1:]).swapaxes(0, 1)
        spec = jax.sharding.PartitionSpec(None, BATCH_AXES)
        return jax.lax.with_sharding_constraint(x, spec) if _under_mesh() else x

    return jax.tree.map(split, batch)


def _under_mesh() -> bool:
    mesh = jax.sharding.get_abstract_mesh()
    return bool(mesh.shape_tuple) and all(a in mesh.axis_names for a in BATCH_AXES)


def make_train_step(
    loss_fn: LossFn, tx: optax.GradientTransformation, schedule: optax.Schedule, accum_steps: int = 1
) -> Callable[[TrainState, dict, Any], tuple[TrainState, dict]]:
    """One optimiser step on a global batch, accumulating gradients over `accum_steps` micro-batches
    (the reference divides each micro-batch loss by the count: the mean of the micro-gradients)."""
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def step(state: TrainState, batch: dict[str, jax.Array], frozen: Any) -> tuple[TrainState, dict]:
        rng = jax.random.fold_in(state.rng, state.step)
        if accum_steps == 1:
            (loss, (metrics, extra)), grads = grad_fn(state.params, state.extra, batch, rng, frozen)
        else:

            def micro(carry, inputs):
                grads_sum, extra = carry
                i, mb = inputs
                (loss, (m, extra)), g = grad_fn(state.params, extra, mb, jax.random.fold_in(rng, i), frozen)
                return (jax.tree.map(jnp.add, grads_sum, g), extra), (loss, m)

            zeros = jax.tree.map(jnp.zeros_like, state.params)
            (grads, extra), (losses, ms) = jax.lax.scan(
                micro, (zeros, state.extra), (jnp.arange(accum_steps), _split_micro(batch, accum_steps))
            )
            grads = jax.tree.map(lambda g: g / accum_steps, grads)
            loss, metrics = losses.mean(), jax.tree.map(lambda m: m.mean(axis=0), ms)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {**metrics, "loss": loss, "grad_norm": optax.tree.norm(grads), "lr": schedule(state.step)}
        new = state.replace(step=state.step + 1, params=params, opt_state=opt_state, extra=extra)
        return new, metrics

    return step
