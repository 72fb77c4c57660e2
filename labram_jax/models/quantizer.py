"""The norm-EMA vector quantiser of VQ-NSP (ref. §4.3) with its state in an explicit collection.

Collection `quantizer` (not `params`: it receives no gradients):

| variable           | shape     | official tensor                      | role                                   |
|--------------------|-----------|--------------------------------------|----------------------------------------|
| `codebook`         | (K, D)    | `quantize.embedding.weight`          | l2-normalised codewords, EMA-updated   |
| `ema_cluster_size` | (K,)      | `quantize.embedding.cluster_size`    | k-means member counts (otherwise unused)|
| `ema_embed_avg`    | (K, D)    | `quantize.embedding.embed_avg`       | unused by the executed path; kept 1:1  |
| `initted`          | ()        | `quantize.embedding.initted`         | k-means initialisation done            |
| `usage`            | (K,)      | `quantize.cluster_size`              | EMA of code usage (logging only)       |

The official parameter count includes the first three (frozen `nn.Parameter`s) and excludes the last two
(buffers); `labram_jax.param_count` follows that convention.

State updates happen only when the caller makes `quantizer` mutable and never during `init`: k-means on the
first real batch (when `kmeans_init`), the usage EMA on every mutable call, the codebook EMA when also
`train=True`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from labram_jax import logical_axes as ax
from labram_jax.models.spec import QuantizerSpec
from labram_jax.ops import quantize as vq
from labram_jax.ops.losses import commitment_loss
from labram_jax.ops.masked_stats import l2_normalize

COLLECTION = "quantizer"
BUFFERS = ("initted", "usage")
"""Variables of the collection that the official parameter count leaves out."""


class NormEMAQuantizer(nn.Module):
    """`(B, N, D)` encoder outputs -> (straight-through codewords `(B, N, D)`, codes `(B, N)`, commit loss)."""
    spec: QuantizerSpec

    @nn.compact
    def __call__(self, z: jnp.ndarray, token_mask: jnp.ndarray, train: bool = False
                 ) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
        spec = self.spec
        k, d = spec.num_codes, spec.code_dim

        def codebook_init():
            if spec.kmeans_init:  # zeros until k-means fills it, as the reference
                return jnp.zeros((k, d), jnp.float32)
            return l2_normalize(jax.random.normal(self.make_rng("params"), (k, d), jnp.float32))

        boxed = lambda names, fn: nn.with_logical_partitioning(lambda: fn(), names)  # noqa: E731
        codebook = self.variable(COLLECTION, "codebook", boxed((ax.CODEBOOK, ax.CODE_DIM), codebook_init))
        ema_embed_avg = self.variable(COLLECTION, "ema_embed_avg",
                                      boxed((ax.CODEBOOK, ax.CODE_DIM), lambda: codebook.value))
        ema_cluster_size = self.variable(COLLECTION, "ema_cluster_size",
                                         boxed((ax.CODEBOOK,), lambda: jnp.zeros((k,), jnp.float32)))
        initted = self.variable(COLLECTION, "initted", lambda: jnp.asarray(not spec.kmeans_init))
        usage = self.variable(COLLECTION, "usage", boxed((ax.CODEBOOK,), lambda: jnp.zeros((k,), jnp.float32)))
        del ema_embed_avg  # never read or written after init, exactly as the reference

        b, n, _ = z.shape
        z = l2_normalize(z.astype(jnp.float32))
        flat = z.reshape(b * n, d)
        weights = token_mask.reshape(b * n).astype(jnp.float32)
        update = self.is_mutable_collection(COLLECTION) and not self.is_initializing()

        if update and spec.kmeans_init:
            rng = self.make_rng("kmeans") if self.has_rng("kmeans") else jax.random.PRNGKey(0)

            def run_kmeans(_):
                return vq.kmeans_cosine(rng, flat, weights, k, spec.kmeans_iters)

            new_codebook, new_counts = jax.lax.cond(
                initted.value, lambda _: (codebook.value, ema_cluster_size.value), run_kmeans, None)
            codebook.value, ema_cluster_size.value = new_codebook, new_counts
            initted.value = jnp.asarray(True)

        table = codebook.value
        codes = vq.nearest_codes(flat, table)
        z_q = table[codes]  # looked up before the EMA update, as the reference
        if update:
            counts = vq.code_counts(codes, weights, k)
            usage.value = spec.decay * usage.value + (1.0 - spec.decay) * counts
            if train:
                codebook.value, _ = vq.ema_codebook_update(table, flat, codes, weights, spec.decay)

        z_q = z_q.reshape(b, n, d)
        loss = commitment_loss(z, z_q, token_mask, spec.beta)
        return vq.straight_through(z, z_q), codes.reshape(b, n), loss
