"""The per-block gradient boundary: an exact identity, and one conditional per block in the compiled step."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from labram_jax.models.neural_transformer import LaBraMClassifier, materialized_cotangent
from tests import tiny


def test_identity_in_value_and_gradient():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 5, 3)), jnp.float32)
    w = jnp.asarray(np.random.default_rng(1).standard_normal((2, 5, 3)), jnp.float32)
    np.testing.assert_array_equal(materialized_cotangent(x), x)
    g = jax.grad(lambda x: jnp.sum(jnp.sin(materialized_cotangent(x)) * w))(x)
    np.testing.assert_array_equal(g, jnp.cos(x) * w)
    # A non-finite gradient takes the other branch and still passes through unchanged.
    g_nan = jax.grad(lambda x: jnp.sum(materialized_cotangent(x) * jnp.where(w > 0, jnp.nan, w)))(x)
    np.testing.assert_array_equal(np.isnan(g_nan), np.asarray(w > 0))


def test_one_boundary_per_block_in_the_compiled_backward():
    model = LaBraMClassifier(dataclasses.replace(tiny.BACKBONE, depth=3), num_outputs=2)
    inputs = tiny.args(tiny.batch(np.random.default_rng(0)))
    params = nn.meta.unbox(model.init(jax.random.key(0), *inputs))["params"]

    def loss(params):
        return jnp.sum(model.apply({"params": params}, *inputs) ** 2)

    hlo = jax.jit(jax.grad(loss)).lower(params).compile().as_text()
    assert hlo.count(" conditional(") == 3


def test_frozen_part_is_a_fixed_feature_extractor():
    """Partial fine-tuning: frozen blocks run without drop path and pass no gradient below them."""
    spec = dataclasses.replace(tiny.BACKBONE, depth=2, drop_path_rate=0.5)
    inputs = tiny.args(tiny.batch(np.random.default_rng(1)))
    outs = {}
    for frozen in (0, 1, 2):
        model = LaBraMClassifier(dataclasses.replace(spec, frozen_blocks=frozen), num_outputs=2)
        params = nn.meta.unbox(model.init(jax.random.key(0), *inputs))["params"]
        run = lambda p, seed: model.apply(
            {"params": p},
            *inputs,
            deterministic=False,  # noqa: E731
            rngs={"dropout": jax.random.key(seed)},
        )
        outs[frozen] = [np.asarray(run(params, s)) for s in range(4)]
        grads = jax.grad(lambda p: jnp.sum(model.apply({"params": p}, *inputs) ** 2))(params)["backbone"]
        for name, g in grads.items():
            frozen_param = not name.startswith("blocks_") or int(name.split("_")[1]) < frozen
            if frozen:
                assert all(not np.any(np.asarray(x)) for x in jax.tree.leaves(g)) == frozen_param, name
    # Linear probe (both blocks frozen): the same output whatever the dropout key.
    assert all(np.array_equal(outs[2][0], o) for o in outs[2][1:])
    # Fully trainable: drop path makes the outputs differ between keys.
    assert not all(np.array_equal(outs[0][0], o) for o in outs[0][1:])
