"""The norm-EMA vector quantiser of VQ-NSP (ref. §4.3) with its state in an explicit collection.

Collection `quantizer` (not `params`: it receives no gradients):

| variable           | shape     | official tensor                      | role                                   |
|--------------------|-----------|--------------------------------------|----------------------------------------|
| `codebook`         | (K, D)    | `quantize.embedding.weight`          | l2-normalised codewords, EMA-updated   |
| `ema_cluster_size` | (K,)      | `quantize.embedding.cluster_size`    | k-means member counts (otherwise unused)|
| `ema_embed_avg`    | (K, D)    | `quantize.embedding.embed_avg`       | unused by the executed path; kept 1:1  |
| `initted`          | ()        | `quantize.embedding.initted`         | k-means initialisation done            |
| `usage`            | (K,)      | `quantize.cluster_size`              | EMA of code usage (logging only)       |
| `restart_usage`    | (K,)      | none (dead-code restart only)        | EMA of each code's share of the tokens |
| `restarts`         | ()        | none (dead-code restart only)        | codes re-seeded so far                 |
| `train_steps`      | ()        | none (continuous warm-up only)       | training calls so far                  |

The official parameter count includes the first three (frozen `nn.Parameter`s) and excludes the last two
(buffers); `labram_jax.param_count` follows that convention.

State updates happen only when the caller makes `quantizer` mutable and never during `init`: k-means on the
first real batch (when `kmeans_init`), the usage EMA on every mutable call, the codebook EMA when also
`train=True`.

Three additions of ours, each off in the reference configuration (see `QuantizerSpec` and
`docs/codebook.md`); the last three variables exist only when theirs is on, so checkpoints of the reference
layout (official conversions, earlier runs) load unchanged:
* dead-code restart: after each training EMA step, codes whose share EMA fell below
  `restart_threshold / K` are re-seeded from real tokens of the batch (`ops.quantize.restart_dead_codes`),
  drawn with the `restart` rng stream;
* the entropy penalty on soft code assignments (`ops.quantize.code_entropies`), returned as a loss;
* a continuous warm-up: for the first `continuous_steps` training calls the output is the unit-norm `z`
  itself and no codebook statistic moves; k-means then runs on the next batch.
The unit-norm encoder outputs are sown as `intermediates/.../unit_z` for the health metrics.
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
BUFFERS = ("initted", "usage", "restart_usage", "restarts", "train_steps")
"""Variables of the collection that the official parameter count leaves out."""


class NormEMAQuantizer(nn.Module):
    """`(B, N, D)` encoder outputs -> (straight-through codewords `(B, N, D)`, codes `(B, N)`, losses).

    `losses["quant_loss"]` is the commitment loss; `losses["entropy_loss"]` the entropy penalty, present only
    when `spec.entropy_weight > 0`.
    """

    spec: QuantizerSpec

    def codewords(self, codes: jnp.ndarray) -> jnp.ndarray:
        """The codewords of integer `codes` (any shape) -> `codes.shape + (D,)`; needs a bound codebook."""
        return jnp.asarray(self.get_variable(COLLECTION, "codebook"))[codes]

    @nn.compact
    def __call__(
        self, z: jnp.ndarray, token_mask: jnp.ndarray, train: bool = False
    ) -> tuple[jnp.ndarray, jnp.ndarray, dict[str, jnp.ndarray]]:
        spec = self.spec
        k, d = spec.num_codes, spec.code_dim

        def codebook_init():
            if spec.kmeans_init:  # zeros until k-means fills it, as the reference
                return jnp.zeros((k, d), jnp.float32)
            return l2_normalize(jax.random.normal(self.make_rng("params"), (k, d), jnp.float32))

        boxed = lambda names, fn: nn.with_logical_partitioning(lambda: fn(), names)  # noqa: E731
        codebook = self.variable(COLLECTION, "codebook", boxed((ax.CODEBOOK, ax.CODE_DIM), codebook_init))
        ema_embed_avg = self.variable(
            COLLECTION, "ema_embed_avg", boxed((ax.CODEBOOK, ax.CODE_DIM), lambda: codebook.value)
        )
        ema_cluster_size = self.variable(
            COLLECTION, "ema_cluster_size", boxed((ax.CODEBOOK,), lambda: jnp.zeros((k,), jnp.float32))
        )
        initted = self.variable(COLLECTION, "initted", lambda: jnp.asarray(not spec.kmeans_init))
        usage = self.variable(COLLECTION, "usage", boxed((ax.CODEBOOK,), lambda: jnp.zeros((k,), jnp.float32)))
        del ema_embed_avg  # never read or written after init, exactly as the reference
        restart = spec.restart_threshold > 0
        if restart:
            restart_usage = self.variable(
                COLLECTION, "restart_usage", boxed((ax.CODEBOOK,), lambda: jnp.full((k,), 1.0 / k, jnp.float32))
            )
            restarts = self.variable(COLLECTION, "restarts", lambda: jnp.zeros((), jnp.int32))
        warm = jnp.asarray(False)
        if spec.continuous_steps != 0:  # -1 (not yet resolved by the trainer) warms up for no step
            train_steps = self.variable(COLLECTION, "train_steps", lambda: jnp.zeros((), jnp.int32))
            warm = train_steps.value < spec.continuous_steps

        b, n, _ = z.shape
        z = l2_normalize(z.astype(jnp.float32))
        flat = z.reshape(b * n, d)
        weights = token_mask.reshape(b * n).astype(jnp.float32)
        self.sow("intermediates", "unit_z", z)
        update = self.is_mutable_collection(COLLECTION) and not self.is_initializing()

        if update and spec.kmeans_init:
            rng = self.make_rng("kmeans") if self.has_rng("kmeans") else jax.random.PRNGKey(0)

            def run_kmeans(_):
                return vq.kmeans_cosine(rng, flat, weights, k, spec.kmeans_iters)

            # During a continuous warm-up the codebook waits: k-means runs on the first batch after it.
            new_codebook, new_counts = jax.lax.cond(
                initted.value | warm, lambda _: (codebook.value, ema_cluster_size.value), run_kmeans, None
            )
            codebook.value, ema_cluster_size.value = new_codebook, new_counts
            initted.value = initted.value | ~warm
        if spec.continuous_steps != 0:
            # An evaluation between the last warm step and the k-means batch still has no codebook.
            warm = warm | ~initted.value

        table = codebook.value
        codes = vq.nearest_codes(flat, table)
        z_q = table[codes]  # looked up before the EMA update, as the reference
        if update:
            keep = lambda old, new: jnp.where(warm, old, new)  # noqa: E731 - no codebook statistics while warm
            counts = vq.code_counts(codes, weights, k)
            usage.value = keep(usage.value, spec.decay * usage.value + (1.0 - spec.decay) * counts)
            if train:
                new_table, _ = vq.ema_codebook_update(table, flat, codes, weights, spec.decay)
                if restart:
                    shares = vq.usage_shares(codes, weights, k)
                    ema = spec.restart_decay * restart_usage.value + (1.0 - spec.restart_decay) * shares
                    rng = self.make_rng("restart") if self.has_rng("restart") else jax.random.PRNGKey(0)
                    new_table, ema, count = vq.restart_dead_codes(
                        rng, new_table, ema, flat, weights, spec.restart_threshold
                    )
                    restart_usage.value = keep(restart_usage.value, ema)
                    restarts.value = restarts.value + jnp.where(warm, 0, count)
                codebook.value = keep(table, new_table)
                if spec.continuous_steps != 0:
                    train_steps.value = train_steps.value + 1

        z_q = z_q.reshape(b, n, d)
        # While warm the decoder gets the continuous unit-norm `z` itself: no code, no quantiser loss.
        losses = {"quant_loss": commitment_loss(z, z_q, token_mask, spec.beta)}
        if spec.entropy_weight > 0:
            per_vector, average = vq.code_entropies(flat, table, weights, spec.entropy_temperature)
            losses["entropy_loss"] = spec.entropy_weight * (per_vector - average) / jnp.log(float(k))
        losses = {name: jnp.where(warm, 0.0, value) for name, value in losses.items()}
        quantized = jnp.where(warm, z, vq.straight_through(z, z_q))
        return quantized, codes.reshape(b, n), losses
