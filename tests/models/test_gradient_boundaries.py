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
