"""Norm-EMA vector quantisation (ref. §4.3): code lookup, straight-through estimator, EMA update, k-means.

Every function takes a per-vector `weights` array (1 for real tokens, 0 for padding) so padded tokens never
enter the codebook statistics. Under `jax.jit` with a sharded batch the sums below are global, so every
device computes the same codebook (the official code ran k-means per GPU; see §4.3).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from labram_jax.ops import argext
from labram_jax.ops.masked_stats import l2_normalize


def squared_distances(z: jnp.ndarray, codebook: jnp.ndarray) -> jnp.ndarray:
    """`||z||^2 + ||e||^2 - 2 z.e` for `(M, D)` vectors against a `(K, D)` codebook -> `(M, K)`."""
    return (jnp.sum(z * z, axis=-1, keepdims=True) + jnp.sum(codebook * codebook, axis=-1)[None, :]
            - 2.0 * z @ codebook.T)


def nearest_codes(z: jnp.ndarray, codebook: jnp.ndarray) -> jnp.ndarray:
    """Index of the nearest codeword of each vector (first index on ties, like `torch.argmin`)."""
    return argext.argmin(squared_distances(z, codebook))


def straight_through(z: jnp.ndarray, z_q: jnp.ndarray) -> jnp.ndarray:
    """Forward value `z_q`, gradient the identity with respect to `z`."""
    return z + jax.lax.stop_gradient(z_q - z)


def code_counts(codes: jnp.ndarray, weights: jnp.ndarray, num_codes: int) -> jnp.ndarray:
    """Weighted histogram of code indices `(M,) -> (K,)`."""
    return jnp.zeros((num_codes,), jnp.float32).at[codes].add(weights.astype(jnp.float32))


def ema_codebook_update(codebook: jnp.ndarray, z: jnp.ndarray, codes: jnp.ndarray, weights: jnp.ndarray,
                        decay: float) -> tuple[jnp.ndarray, jnp.ndarray]:
    """One norm-EMA step of `NormEMAVectorQuantizer` (training only); returns `(new_codebook, bins)`.

    `m_j = l2norm(sum of z assigned to j / max(bins_j, 1))`, `m_j = e_j` for unused codes, then
    `e_j <- l2norm(decay * e_j + (1 - decay) * m_j)` for every code (unused ones are only renormalised).
    """
    num_codes = codebook.shape[0]
    bins = code_counts(codes, weights, num_codes)
    sums = jnp.zeros_like(codebook).at[codes].add(z * weights[:, None].astype(z.dtype))
    means = l2_normalize(sums / jnp.maximum(bins, 1.0)[:, None])
    means = jnp.where((bins == 0)[:, None], codebook, means)
    return l2_normalize(decay * codebook + (1.0 - decay) * means), bins


def _initial_means(rng: jax.Array, weights: jnp.ndarray, num_clusters: int) -> jnp.ndarray:
    """Indices of the starting means among the real vectors.

    As `sample_vectors` of the reference: a random subset without replacement when there are at least
    `num_clusters` real vectors, otherwise draws with replacement. The randomness is keyed by each vector's
    rank among the *real* vectors, so padding a batch does not change which vectors are drawn.
    """
    perm_key, choice_key = jax.random.split(rng)
    valid = weights > 0
    running = jnp.cumsum(valid.astype(jnp.int32))
    ranks = running - 1
    noise = jax.vmap(lambda r: jax.random.uniform(jax.random.fold_in(perm_key, r)))(ranks)
    priority = jnp.where(valid, noise, 2.0)
    num_valid = running[-1]
    drawn_ranks = jnp.floor(jax.random.uniform(choice_key, (num_clusters,)) * num_valid).astype(jnp.int32)
    with_replacement = jnp.searchsorted(running, drawn_ranks + 1, side="left").astype(jnp.int32)
    if weights.shape[0] < num_clusters:
        return with_replacement
    without_replacement = jnp.argsort(priority)[:num_clusters].astype(jnp.int32)
    return jnp.where(num_valid >= num_clusters, without_replacement, with_replacement)


def kmeans_cosine(rng: jax.Array, samples: jnp.ndarray, weights: jnp.ndarray, num_clusters: int,
                  num_iters: int = 10) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Spherical k-means of the reference (`kmeans(..., use_cosine_sim=True)`); returns `(means, bins)`.

    Each iteration assigns by the largest dot product, averages the members, l2-normalises, and keeps the
    previous mean of an empty cluster. `bins` are the member counts of the last assignment.
    """
    means = samples[_initial_means(rng, weights, num_clusters)]

    def step(carry, _):
        means, _ = carry
        buckets = argext.argmax(samples @ means.T)
        bins = code_counts(buckets, weights, num_clusters)
        sums = jnp.zeros_like(means).at[buckets].add(samples * weights[:, None].astype(samples.dtype))
        new_means = l2_normalize(sums / jnp.maximum(bins, 1.0)[:, None])
        return (jnp.where((bins == 0)[:, None], means, new_means), bins), None

    (means, bins), _ = jax.lax.scan(step, (means, jnp.zeros((num_clusters,), jnp.float32)), None,
                                    length=num_iters)
    return means, bins
