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
    return (
        jnp.sum(z * z, axis=-1, keepdims=True) + jnp.sum(codebook * codebook, axis=-1)[None, :] - 2.0 * z @ codebook.T
    )


def nearest_codes(z: jnp.ndarray, codebook: jnp.ndarray) -> jnp.ndarray:
    """Index of the nearest codeword of each vector (first index on ties, like `torch.argmin`)."""
    return argext.argmin(squared_distances(z, codebook))


def straight_through(z: jnp.ndarray, z_q: jnp.ndarray) -> jnp.ndarray:
    """Forward value `z_q`, gradient the identity with respect to `z`."""
    return z + jax.lax.stop_gradient(z_q - z)


def code_counts(codes: jnp.ndarray, weights: jnp.ndarray, num_codes: int) -> jnp.ndarray:
    """Weighted histogram of code indices `(M,) -> (K,)`."""
    return jnp.zeros((num_codes,), jnp.float32).at[codes].add(weights.astype(jnp.float32))


def ema_codebook_update(
    codebook: jnp.ndarray, z: jnp.ndarray, codes: jnp.ndarray, weights: jnp.ndarray, decay: float
) -> tuple[jnp.ndarray, jnp.ndarray]:
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


def sample_real(rng: jax.Array, weights: jnp.ndarray, num_clusters: int) -> jnp.ndarray:
    """Indices of `num_clusters` vectors drawn among the real ones (`weights > 0`), never a padded one.

    As `sample_vectors` of the reference: a random subset without replacement when there are at least
    `num_clusters` real vectors, otherwise draws with replacement. The randomness is keyed by each vector's
    rank among the *real* vectors, so padding a batch does not change which vectors are drawn. With no real
    vector at all the indices are meaningless; callers check for that.
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
    with_replacement = jnp.minimum(with_replacement, weights.shape[0] - 1)  # in range even with no real vector
    if weights.shape[0] < num_clusters:
        return with_replacement
    without_replacement = jnp.argsort(priority)[:num_clusters].astype(jnp.int32)
    return jnp.where(num_valid >= num_clusters, without_replacement, with_replacement)


def kmeans_cosine(
    rng: jax.Array, samples: jnp.ndarray, weights: jnp.ndarray, num_clusters: int, num_iters: int = 10
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Spherical k-means of the reference (`kmeans(..., use_cosine_sim=True)`); returns `(means, bins)`.

    Each iteration assigns by the largest dot product, averages the members, l2-normalises, and keeps the
    previous mean of an empty cluster. `bins` are the member counts of the last assignment.
    """
    means = samples[sample_real(rng, weights, num_clusters)]

    def step(carry, _):
        means, _ = carry
        buckets = argext.argmax(samples @ means.T)
        bins = code_counts(buckets, weights, num_clusters)
        sums = jnp.zeros_like(means).at[buckets].add(samples * weights[:, None].astype(samples.dtype))
        new_means = l2_normalize(sums / jnp.maximum(bins, 1.0)[:, None])
        return (jnp.where((bins == 0)[:, None], means, new_means), bins), None

    (means, bins), _ = jax.lax.scan(step, (means, jnp.zeros((num_clusters,), jnp.float32)), None, length=num_iters)
    return means, bins


def usage_shares(codes: jnp.ndarray, weights: jnp.ndarray, num_codes: int) -> jnp.ndarray:
    """Each code's share of the real vectors `(K,)` (sums to 1; all zeros when no vector is real)."""
    counts = code_counts(codes, weights, num_codes)
    return counts / jnp.maximum(jnp.sum(counts), 1.0)


def restart_dead_codes(
    rng: jax.Array,
    codebook: jnp.ndarray,
    usage_ema: jnp.ndarray,
    z: jnp.ndarray,
    weights: jnp.ndarray,
    threshold: float,
) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """Dead-code restart (not in the reference; Jukebox, ESM3): `(codebook, usage_ema, restarted)`.

    A code is dead when its usage EMA (its share of the real vectors, `1 / K` under uniform use) is below
    `threshold / K`. Each dead code is replaced by a distinct real vector of `z (M, D)` (unit-norm, drawn by
    `sample_real`, so never a padded one) and its EMA is reset to `1 / K`, which gives it time to attract
    vectors before it can be judged again. `restarted` is the number of codes replaced. Nothing changes when
    no vector is real. Under `jax.jit` with a sharded `z` the draw is over the global batch, so every device
    computes the same codebook.
    """
    num_codes = codebook.shape[0]
    has_real = jnp.sum(weights) > 0
    dead = (usage_ema < threshold / num_codes) & has_real
    seeds = jnp.asarray(z)[sample_real(rng, weights, num_codes)]
    new_codebook = jnp.where(dead[:, None], seeds.astype(codebook.dtype), codebook)
    new_usage = jnp.where(dead, 1.0 / num_codes, usage_ema)
    return new_codebook, new_usage, jnp.sum(dead).astype(jnp.int32)


def code_entropies(
    z: jnp.ndarray, codebook: jnp.ndarray, weights: jnp.ndarray, temperature: float
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """`(mean per-vector entropy, entropy of the mean)` of soft code assignments, in nats.

    Each vector's assignment is `softmax(-||z - e_k||^2 / temperature)` over the codes; the first entropy
    is its mean over the real vectors (low when each vector clearly belongs to one code), the second is the
    entropy of the batch's average assignment (high when the batch spreads over many codes). Their
    difference is the entropy penalty of MAGVIT-v2 / LFQ; the gradient flows to `z` only.
    """
    logits = -squared_distances(z, jax.lax.stop_gradient(codebook)) / temperature
    logp = jax.nn.log_softmax(logits, axis=-1)
    p = jnp.exp(logp)
    w = weights.astype(p.dtype) / jnp.maximum(jnp.sum(weights), 1.0)
    per_vector = jnp.sum(w * -jnp.sum(p * logp, axis=-1))
    average = jnp.sum(w[:, None] * p, axis=0)
    return per_vector, -jnp.sum(average * jnp.log(jnp.maximum(average, 1e-30)))


def perplexity(counts: jnp.ndarray) -> jnp.ndarray:
    """`exp` of the entropy of the code distribution given by `counts (K,)`: the effective number of codes
    (`k` for uniform use of `k` codes, 1 for a collapse; 0 log 0 = 0; 1 when there are no counts)."""
    p = counts / jnp.maximum(jnp.sum(counts), 1e-30)
    safe = jnp.where(p > 0, p, 1.0)
    return jnp.exp(-jnp.sum(p * jnp.log(safe)))


def mean_pairwise_cosine(z_sum: jnp.ndarray, count: jnp.ndarray) -> jnp.ndarray:
    """Mean cosine over all pairs of `count` distinct unit vectors whose sum is `z_sum (..., D)`.

    `sum_{i != j} z_i . z_j = ||sum z||^2 - n` for unit vectors, so the mean over the `n (n - 1)` ordered pairs
    needs only the sum: 1 when the vectors all coincide, about 0 for directions spread over the sphere
    (`-1 / (n - 1)` at the least). It accumulates exactly over batches and devices. `nan` for fewer than
    two vectors.
    """
    n = jnp.asarray(count, jnp.float32)
    total = jnp.sum(jnp.square(z_sum.astype(jnp.float32)), axis=-1)
    return jnp.where(n > 1, (total - n) / jnp.maximum(n * (n - 1), 1.0), jnp.nan)
