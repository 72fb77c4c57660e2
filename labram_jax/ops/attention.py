"""Softmax attention with a hand-written backward pass that keeps only the probabilities.

`jax.nn.dot_product_attention`'s XLA path is differentiated op by op: the backward re-reads the masked
logits, the exponentials and the normaliser, several passes over each `(B, H, N, N)` score tensor (the
largest tensors of a LaBraM step: 231 tokens give 53k scores per head against 20 features per token).
Here the forward saves `P = softmax(S)` once and the backward is the closed form

    dV = Pᵀ dO,   dP = dO Vᵀ,   dS = P ⊙ (dP − rowsum(dO ⊙ O)),   dQ = s·dS K,   dK = s·dSᵀ Q

(one elementwise pass over the scores instead of several), with the row sums taken on `O` (`N x hd`), not on
the scores. Masked keys get probability exactly 0, as the reference's `-inf` fill; a query row whose keys
are all masked (never produced by our layouts: the cls token is always a valid key) would give NaN there
too.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def _scores(q: jax.Array, k: jax.Array, key_mask: jax.Array, scale: float) -> jax.Array:
    """`(B, H, Nq, Nk)` float32 logits, masked keys at -inf."""
    s = jnp.einsum("bhqd,bhkd->bhqk", q, k, preferred_element_type=jnp.float32) * scale
    return jnp.where(key_mask[:, None, None, :], s, -jnp.inf)


def _forward(q, k, v, key_mask, scale):
    p = jax.nn.softmax(_scores(q, k, key_mask, scale), axis=-1)
    o = jnp.einsum("bhqk,bhkd->bhqd", p.astype(v.dtype), v, preferred_element_type=jnp.float32)
    return o.astype(q.dtype), p


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _attention(q: jax.Array, k: jax.Array, v: jax.Array, key_mask: jax.Array, scale: float) -> jax.Array:
    return _forward(q, k, v, key_mask, scale)[0]


def _attention_fwd(q, k, v, key_mask, scale):
    o, p = _forward(q, k, v, key_mask, scale)
    # P in the compute dtype: in bf16 it halves the largest residual, and the backward's matmuls read it
    # in that dtype anyway.
    return o, (q, k, v, p.astype(v.dtype), o)


def _attention_bwd(scale, res, do):
    q, k, v, p, o = res
    f32 = jnp.float32
    dv = jnp.einsum("bhqk,bhqd->bhkd", p, do, preferred_element_type=f32)
    dp = jnp.einsum("bhqd,bhkd->bhqk", do, v, preferred_element_type=f32)
    delta = jnp.sum(do.astype(f32) * o.astype(f32), axis=-1, keepdims=True)   # = rowsum(P ⊙ dP)
    ds = (p.astype(f32) * (dp - delta)).astype(q.dtype)
    dq = jnp.einsum("bhqk,bhkd->bhqd", ds, k, preferred_element_type=f32) * scale
    dk = jnp.einsum("bhqk,bhqd->bhkd", ds, q, preferred_element_type=f32) * scale
    return dq.astype(q.dtype), dk.astype(k.dtype), dv.astype(v.dtype), None


_attention.defvjp(_attention_fwd, _attention_bwd)


def softmax_attention(q: jax.Array, k: jax.Array, v: jax.Array, key_mask: jax.Array,
                      scale: float | None = None) -> jax.Array:
    """Multi-head attention over `(B, N, H, hd)` queries/keys/values with a `(B, N)` boolean key mask.

    Same result as `jax.nn.dot_product_attention(q, k, v, mask=key_mask[:, None, None, :], scale=scale)`
    (softmax in float32); only the gradient is computed differently (see the module docstring).
    """
    scale = q.shape[-1] ** -0.5 if scale is None else float(scale)
    heads_first = lambda x: jnp.swapaxes(x, 1, 2)  # (B, N, H, hd) <-> (B, H, N, hd)
    out = _attention(heads_first(q), heads_first(k), heads_first(v), key_mask, scale)
    return heads_first(out)
