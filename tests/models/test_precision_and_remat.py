"""Compute-dtype and rematerialisation options keep the model's function."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from labram_jax.models.neural_transformer import LaBraMClassifier
from labram_jax.models.vqnsp import VQNSP
from tests import tiny


def test_remat_changes_nothing_but_memory():
    batch = tiny.batch(np.random.default_rng(0), b=2, c=2, a=3)
    plain = LaBraMClassifier(tiny.BACKBONE, num_outputs=2)
    remat = LaBraMClassifier(dataclasses.replace(tiny.BACKBONE, remat=True), num_outputs=2)
    variables = tiny.perturb(plain.init(jax.random.PRNGKey(0), *tiny.args(batch)))

    def loss(model, params):
        return jnp.sum(model.apply({"params": params}, *tiny.args(batch)) ** 2)

    g_plain = jax.grad(lambda p: loss(plain, p))(variables["params"])
    g_remat = jax.grad(lambda p: loss(remat, p))(variables["params"])
    for a, b in zip(jax.tree_util.tree_leaves(g_plain), jax.tree_util.tree_leaves(g_remat)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)


def test_bfloat16_compute_tracks_float32_and_keeps_params_float32():
    batch = tiny.batch(np.random.default_rng(1), b=2, c=2, a=3)
    f32 = LaBraMClassifier(tiny.BACKBONE, num_outputs=2)
    bf16 = LaBraMClassifier(dataclasses.replace(tiny.BACKBONE, dtype=jnp.bfloat16), num_outputs=2)
    variables = tiny.perturb(f32.init(jax.random.PRNGKey(1), *tiny.args(batch)))
    init16 = bf16.init(jax.random.PRNGKey(1), *tiny.args(batch))
    assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(nn.meta.unbox(init16)["params"]))
    out32 = np.asarray(f32.apply(variables, *tiny.args(batch), method=LaBraMClassifier.features))
    out16 = bf16.apply(variables, *tiny.args(batch), method=LaBraMClassifier.features)
    assert out16.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(out16, np.float32), out32, atol=0.1, rtol=0.05)


def test_bfloat16_tokenizer_keeps_quantiser_and_targets_float32():
    spec = dataclasses.replace(tiny.TOKENIZER_BODY, dtype=jnp.bfloat16)
    model = VQNSP(spec, dataclasses.replace(spec, depth=1), tiny.QUANTIZER)
    batch = tiny.batch(np.random.default_rng(2), b=2, c=2, a=2)
    variables = model.init(jax.random.PRNGKey(0), *tiny.args(batch))
    (z_st, codes, losses), _ = model.apply(
        variables,
        *tiny.args(batch),
        train=True,
        mutable=["quantizer"],
        method=VQNSP.encode,
        rngs={"kmeans": jax.random.PRNGKey(1)},
    )
    assert z_st.dtype == jnp.float32 and codes.dtype == jnp.int32 and losses["quant_loss"].dtype == jnp.float32
    (loss, metrics), _ = model.apply(
        variables, *tiny.args(batch), train=True, mutable=["quantizer"], rngs={"kmeans": jax.random.PRNGKey(1)}
    )
    assert loss.dtype == jnp.float32 and np.isfinite(float(loss))
