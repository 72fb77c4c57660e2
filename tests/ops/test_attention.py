"""The closed-form attention backward against autodiff of the textbook softmax attention."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from labram_jax.ops.attention import softmax_attention


def _reference(q, k, v, key_mask, scale):
    s = jnp.einsum("bqhd,bkhd->bhqk", q.astype(jnp.float32), k.astype(jnp.float32)) * scale
    s = jnp.where(key_mask[:, None, None, :], s, -jnp.inf)
    p = jnp.exp(s - s.max(-1, keepdims=True))
    p = p / p.sum(-1, keepdims=True)
    return jnp.einsum("bhqk,bkhd->bqhd", p, v.astype(jnp.float32))


def _inputs(dtype, seed=0, b=3, n=11, h=4, d=5):
    r = np.random.default_rng(seed)
    q, k, v = (jnp.asarray(r.standard_normal((b, n, h, d)), dtype) for _ in range(3))
    key_mask = np.ones((b, n), bool)
    key_mask[1, 7:] = False  # padded keys
    key_mask[2, 2:4] = False  # a hole in the middle
    return q, k, v, jnp.asarray(key_mask)


def test_values_and_gradients_match_autodiff_float32():
    q, k, v, key_mask = _inputs(jnp.float32)
    scale = 0.37
    cot = jnp.asarray(np.random.default_rng(1).standard_normal(q.shape), jnp.float32)
    ours = lambda q, k, v: jnp.sum(softmax_attention(q, k, v, key_mask, scale) * cot)  # noqa: E731
    ref = lambda q, k, v: jnp.sum(_reference(q, k, v, key_mask, scale) * cot)  # noqa: E731
    np.testing.assert_allclose(
        softmax_attention(q, k, v, key_mask, scale), _reference(q, k, v, key_mask, scale), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        softmax_attention(q, k, v, key_mask, scale),
        jax.nn.dot_product_attention(q, k, v, mask=key_mask[:, None, None, :], scale=scale),
        rtol=1e-5,
        atol=1e-6,
    )
    for g_ours, g_ref in zip(jax.grad(ours, argnums=(0, 1, 2))(q, k, v), jax.grad(ref, argnums=(0, 1, 2))(q, k, v)):
        np.testing.assert_allclose(g_ours, g_ref, rtol=1e-4, atol=1e-5)
    # Masked keys receive no gradient at all.
    dk = jax.grad(ours, argnums=1)(q, k, v)
    assert not np.any(np.asarray(dk)[1, 7:]) and not np.any(np.asarray(dk)[2, 2:4])


@pytest.mark.parametrize("dtype", [jnp.bfloat16])
def test_low_precision_stays_close(dtype):
    q, k, v, key_mask = _inputs(dtype, seed=3)
    out = softmax_attention(q, k, v, key_mask)
    assert out.dtype == dtype
    ref = _reference(q, k, v, key_mask, q.shape[-1] ** -0.5)
    np.testing.assert_allclose(np.asarray(out, np.float32), ref, atol=3e-2)
    g = jax.grad(lambda q: jnp.sum(softmax_attention(q, k, v, key_mask).astype(jnp.float32)))(q)
    g_ref = jax.grad(lambda q: jnp.sum(_reference(q, k, v, key_mask, q.shape[-1] ** -0.5)))(q.astype(jnp.float32))
    assert g.dtype == dtype
    np.testing.assert_allclose(np.asarray(g, np.float32), g_ref, atol=5e-2)
