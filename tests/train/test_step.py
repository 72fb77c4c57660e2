"""The train step: gradient accumulation over micro-batches equals one step on the whole batch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from labram_jax.train.optimizer import make_optimizer
from labram_jax.train.state import TrainState, make_train_step


def _loss(params, extra, batch, rng, frozen):
    pred = batch["x"] @ params["w"]["kernel"]
    loss = jnp.mean((pred - batch["y"]) ** 2)
    return loss, ({"mean_pred": jnp.mean(pred)}, {"seen": extra["seen"] + batch["x"].shape[0]})


def test_accumulation_matches_the_full_batch():
    rng = np.random.default_rng(0)
    batch = {
        "x": jnp.asarray(rng.normal(size=(8, 3)), jnp.float32),
        "y": jnp.asarray(rng.normal(size=(8,)), jnp.float32),
    }
    params = {"w": {"kernel": jnp.asarray(rng.normal(size=(3,)), jnp.float32)}}
    optim = ml_collections.ConfigDict(
        dict(
            lr=1e-2,
            min_lr=1e-3,
            epochs=1,
            warmup_epochs=0,
            b1=0.9,
            b2=0.999,
            eps=1e-8,
            weight_decay=0.05,
            clip_grad_norm=1.0,
            batch_size=8,
            warmup_steps=-1,
        )
    )
    tx, schedule = make_optimizer(optim, params, steps_per_epoch=4)
    states = {}
    for accum in (1, 2, 4):
        state = TrainState(
            step=jnp.int32(0),
            params=params,
            opt_state=tx.init(params),
            extra={"seen": jnp.int32(0)},
            rng=jax.random.PRNGKey(0),
        )
        step = jax.jit(make_train_step(_loss, tx, schedule, accum))
        for _ in range(3):
            state, metrics = step(state, batch, None)
        states[accum] = (state, metrics)
    for accum in (2, 4):
        np.testing.assert_allclose(
            np.asarray(states[accum][0].params["w"]["kernel"]),
            np.asarray(states[1][0].params["w"]["kernel"]),
            rtol=1e-5,
            atol=1e-6,
        )
        np.testing.assert_allclose(float(states[accum][1]["loss"]), float(states[1][1]["loss"]), rtol=1e-5)
        # Non-gradient state is threaded through every micro-batch.
        assert int(states[accum][0].extra["seen"]) == 3 * 8
    assert int(states[1][0].step) == 3
