"""The sharded train state and the jitted step functions of a stage: one construction for the training loop
and the benchmarks (`bench/`), so that what is measured is what trains."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from labram_jax.train import sharding as shd
from labram_jax.train.optimizer import make_optimizer
from labram_jax.train.stages.base import Stage
from labram_jax.train.state import TrainState, make_train_step


def split_params(variables: Any) -> tuple[Any, Any]:
    """`(params, the other collections)` of a Flax variables dict."""
    variables = dict(variables)
    params = variables.pop("params")
    return params, variables


@dataclasses.dataclass
class StateSetup:
    """How to make a fresh train state on the mesh: `init_state(init_rng)` is jitted with `state_shardings`
    as its output shardings; `tx` / `schedule` are the stage's optimiser and lr schedule; `boxed_variables` the
    model's abstract variables with their logical-axis metadata (what the shardings were derived from)."""

    init_state: Callable[[jax.Array], TrainState]
    init_rng: jax.Array
    abstract_state: TrainState
    state_shardings: TrainState
    tx: optax.GradientTransformation
    schedule: Callable[[Any], Any]
    boxed_variables: Any


def variable_shardings(config: ml_collections.ConfigDict, stage: Stage, mesh: Any, rules: Any) -> tuple[Any, Any]:
    """`(params, other collections)` shardings of the stage's model on `mesh`: all that evaluating a trained
    model needs (no optimiser is built)."""
    boxed = jax.eval_shape(stage.init_variables, jax.random.PRNGKey(config.seed))
    return split_params(shd.shardings_of(boxed, mesh, rules))


def build_state(
    config: ml_collections.ConfigDict, stage: Stage, mesh: Any, rules: Any, steps_per_epoch: int
) -> StateSetup:
    """The stage's optimiser and the sharded init function of its train state (traced under `mesh`)."""
    rng = jax.random.PRNGKey(config.seed)
    boxed = jax.eval_shape(stage.init_variables, rng)
    var_shardings = shd.shardings_of(boxed, mesh, rules)
    abstract_params, _ = split_params(shd.unbox(boxed))
    tx, schedule = make_optimizer(
        config.optim, abstract_params, max(steps_per_epoch, 1), stage.layer_decay_depth(), frozen=stage.is_frozen
    )
    init_rng, base_rng = jax.random.split(rng)

    def init_state(key: jax.Array) -> TrainState:
        params, extra = split_params(nn.meta.unbox(stage.init_variables(key)))
        return TrainState(
            step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), extra=extra, rng=base_rng
        )

    abstract_state = jax.eval_shape(init_state, init_rng)
    rep = shd.replicated(mesh)
    param_sh, extra_sh = split_params(var_shardings)
    opt_sh = optax.tree_map_params(
        tx, lambda _, s: s, abstract_state.opt_state, param_sh, transform_non_params=lambda _: rep
    )
    state_shardings = TrainState(step=rep, params=param_sh, opt_state=opt_sh, extra=extra_sh, rng=rep)
    return StateSetup(
        init_state=jax.jit(init_state, out_shardings=state_shardings),
        init_rng=init_rng,
        abstract_state=abstract_state,
        state_shardings=state_shardings,
        tx=tx,
        schedule=schedule,
        boxed_variables=boxed,
    )


def jit_train_step(
    config: ml_collections.ConfigDict, stage: Stage, setup: StateSetup, mesh: Any, frozen: Any
) -> Callable[..., tuple[TrainState, dict]]:
    """`step(state, batch, frozen) -> (state, metrics)`, jitted once, the state donated."""
    frozen_sh = jax.tree.map(lambda x: x.sharding, frozen)
    step = make_train_step(stage.loss_fn, setup.tx, setup.schedule, config.optim.grad_accum_steps)
    return jax.jit(
        step,
        in_shardings=(setup.state_shardings, shd.batch_sharding(mesh), frozen_sh),
        out_shardings=(setup.state_shardings, shd.replicated(mesh)),
        donate_argnums=0,
    )


def jit_eval_step(
    stage: Stage, param_shardings: Any, extra_shardings: Any, mesh: Any, frozen: Any
) -> Callable[..., Any]:
    """`eval(params, extra, batch, frozen) -> (per-example outputs, sums)`, jitted once."""
    frozen_sh = jax.tree.map(lambda x: x.sharding, frozen)
    batch_sh = shd.batch_sharding(mesh)
    return jax.jit(
        stage.eval_fn,
        in_shardings=(param_shardings, extra_shardings, batch_sh, frozen_sh),
        out_shardings=(batch_sh, shd.replicated(mesh)),
    )
