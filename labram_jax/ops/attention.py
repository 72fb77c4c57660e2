"""Softmax attention with a hand-written backward pass that keeps only the probabilities.

`jax.nn.dot_product_attention`'s XLA path is differentiated op by op: the backward re-reads the masked
logits, the exponentials and the normaliser, several passes over each `(B, H, N, N)` score tensor (the
largest tensors of a LaBraM step: 231 tokens give 53k scores per head against 20 features per token).
Here the forward saves `P = softmax(S)` once and the backward is the closed form

    dV = Pᵀ dO,   dP = dO Vᵀ,   dS = P ⊙ (dP − rowsum(dO ⊙ O)),   dQ = s·dS K,   dK = s·dSᵀ Q

(one elementwise pass over the scores instead of several), with the row sums taken on `O` (`N x hd`), not on
the scores. Keys and values are held as `(hd x N)` per head, so the backward computes `dVᵀ = dOᵀ P` and
`dKᵀ = s·Qᵀ dS`: XLA:CPU runs those through its fast batched-matmul path, while the `Pᵀ dO` form (a
contraction over the rows of the `N x N` operand) fell back to a generic dot at twice the time; on the
2-core development CPU this took the Base fine-tuning step from 2.13 s to 1.79 s (same values and
gradients; not measured on GPU).

Masked keys get probability exactly 0, as the reference's `-inf` fill; a query row whose keys are all
masked (never produced by our layouts: the cls token is always a valid key) would give NaN there too.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def _scores(q: jax.Array, kt: jax.Array, key_mask: jax.Array, scale: float) -> jax.Array:
    """`(B, H, Nq, Nk)` float32 logits, masked keys at -inf."""
    s = jnp.einsum("bhqd,bhdk->bhqk", q, kt, preferred_element_type=jnp.float32) * scale
    return jnp.where(key_mask[:, None, None, :], s, -jnp.inf)


def _forward(q, kt, vt, key_mask, scale):
    p = jax.nn.softmax(_scores(q, kt, key_mask, scale), axis=-1)
    o = jnp.einsum("bhqk,bhdk->bhqd", p.astype(vt.dtype), vt, preferred_element_type=jnp.float32)
    return o.astype(q.dtype), p


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _attention(q: jax.Array, kt: jax.Array, vt: jax.Array, key_mask: jax.Array, scale: float) -> jax.Array:
    return _forward(q, kt, vt, key_mask, scale)[0]


def _attention_fwd(q, kt, vt, key_mask, scale):
    o, p = _forward(q, kt, vt, key_mask, scale)
    # P in the compute dtype: in bf16 it halves the largest residual, and the backward's matmuls read it
    # in that dtype anyway.
    return o, (q, kt, vt, p.astype(vt.dtype), o)


def _attention_bwd(scale, res, do):
    q, kt, vt, p, o = res
    f32 = jnp.float32
    # dVᵀ = dOᵀ P and dKᵀ = s·Qᵀ dS, results in the (hd x N) layout of the inputs (module docstring).
    dvt = jnp.einsum("bhqd,bhqk->bhdk", do, p, preferred_element_type=f32)
    dp = jnp.einsum("bhqd,bhdk->bhqk", do, vt, preferred_element_type=f32)
    delta = jnp.sum(do.astype(f32) * o.astype(f32), axis=-1, keepdims=True)  # = rowsum(P ⊙ dP)
    ds = (p.astype(f32) * (dp - delta)).astype(q.dtype)
    dq = jnp.einsum("bhqk,bhdk->bhqd", ds, kt, preferred_element_type=f32) * scale
    dkt = jnp.einsum("bhqd,bhqk->bhdk", q, ds, preferred_element_type=f32) * scale
    return dq.astype(q.dtype), dkt.astype(kt.dtype), dvt.astype(vt.dtype), None


_attention.defvjp(_attention_fwd, _attention_bwd)


def softmax_attention(
    q: jax.Array, k: jax.Array, v: jax.Array, key_mask: jax.Array, scale: float | None = None
) -> jax.Array:
    """Multi-head attention over `(B, N, H, hd)` queries/keys/values with a `(B, N)` boolean key mask.

    Same result as `jax.nn.dot_product_attention(q, k, v, mask=key_mask[:, None, None, :], scale=scale)`
    (softmax in float32); only the gradient is computed differently (see the module docstring).
    """
    scale = q.shape[-1] ** -0.5 if scale is None else float(scale)
    # Keys and values go in as (B, H, hd, N): their gradients then come out of the backward's products
    # in that layout, with no transpose for XLA to fold back into the products.
    out = _attention(
        jnp.transpose(q, (0, 2, 1, 3)), jnp.transpose(k, (0, 2, 3, 1)), jnp.transpose(v, (0, 2, 3, 1)), key_mask, scale
    )
    return jnp.transpose(out, (0, 2, 1, 3))
