"""Statistics that ignore padded entries: the building block of every padding-invariant computation."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp


def masked_mean(
    x: jnp.ndarray, mask: jnp.ndarray, axis: int | Sequence[int] | None = None, keepdims: bool = False
) -> jnp.ndarray:
    """Mean of `x` over `axis` counting only entries where `mask` (broadcast to `x`) is True.

    An all-masked reduction returns 0 rather than NaN, so fully padded rows stay finite.
    """
    mask = jnp.broadcast_to(mask, x.shape).astype(x.dtype)
    total = jnp.sum(x * mask, axis=axis, keepdims=keepdims)
    count = jnp.sum(mask, axis=axis, keepdims=keepdims)
    return total / jnp.maximum(count, 1)


def masked_mean_var(
    x: jnp.ndarray, mask: jnp.ndarray, axis: int | Sequence[int], ddof: int = 0
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Mean and variance over `axis` of the unmasked entries, keeping dims (two-pass, like PyTorch).

    `ddof=0` is the biased variance of GroupNorm/LayerNorm; `ddof=1` the unbiased one of `torch.std`.
    """
    mask = jnp.broadcast_to(mask, x.shape).astype(x.dtype)
    count = jnp.sum(mask, axis=axis, keepdims=True)
    mean = jnp.sum(x * mask, axis=axis, keepdims=True) / jnp.maximum(count, 1)
    centred = (x - mean) * mask
    var = jnp.sum(centred * centred, axis=axis, keepdims=True) / jnp.maximum(count - ddof, 1)
    return mean, var


def l2_normalize(x: jnp.ndarray, axis: int = -1, eps: float = 1e-12) -> jnp.ndarray:
    """`torch.nn.functional.normalize`: `x / max(||x||, eps)`.

    The clamp is applied to the squared norm so that the gradient at `x = 0` (padded tokens) is 0, not the
    NaN of `sqrt'(0) * 0`; the values are identical.
    """
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=axis, keepdims=True), eps * eps))
