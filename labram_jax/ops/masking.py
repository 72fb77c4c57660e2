"""Symmetric random masking for masked EEG modeling (ref. §5.2)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def num_masked(num_valid: jnp.ndarray, mask_ratio: float = 0.5) -> jnp.ndarray:
    """Tokens masked in a sample of `num_valid` real tokens: `N - int(N * (1 - ratio))`, as the reference."""
    len_keep = jnp.floor(num_valid * (1.0 - mask_ratio)).astype(jnp.int32)
    return num_valid - len_keep


def random_masking(rng: jax.Array, token_mask: jnp.ndarray, mask_ratio: float = 0.5) -> jnp.ndarray:
    """Per-sample uniform random mask over the real tokens; True = masked.

    Follows `random_masking` of engine_for_pretraining.py: rank tokens by uniform noise and keep the
    `int(N * (1 - ratio))` lowest-ranked ones. Padded tokens are never masked (they rank last, and are
    excluded again explicitly). The symmetric pass uses `symmetric_complement`.
    """
    noise = jax.random.uniform(rng, token_mask.shape)
    noise = jnp.where(token_mask, noise, 2.0)
    rank = jnp.argsort(jnp.argsort(noise, axis=-1), axis=-1)
    len_keep = token_mask.sum(-1, keepdims=True) - num_masked(token_mask.sum(-1, keepdims=True), mask_ratio)
    return token_mask & (rank >= len_keep)


def symmetric_complement(mask: jnp.ndarray, token_mask: jnp.ndarray) -> jnp.ndarray:
    """The second pass of symmetric masking: every real token not masked in the first pass."""
    return token_mask & ~mask
