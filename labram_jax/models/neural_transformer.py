"""The neural Transformer and its heads (ref. §1.6-1.8, §5.1, §6).

Module tree (the name map in `official_names.py` relates it to the official state dicts):

* `NeuralTransformer`: patch embedding, cls token, spatial/temporal embeddings and the blocks; shared by
  every model below so a pre-trained backbone drops into a classifier unchanged.
* `LaBraMClassifier` (official `NeuralTransformer` with mean pooling): `backbone`, `fc_norm`, `head`.
  With `num_outputs=0` it is the tokenizer's encoder/decoder body (patch tokens after `fc_norm`).
* `MaskedEEGStudent` (official `NeuralTransformerForMaskedEEGModeling`): `backbone`, `mask_token`, final
  `norm`, and its own `lm_head`, unused in the official forward but present in its weights.
* `LaBraMPretrain` (official `NeuralTransformerForMEM`): `student`, the outer `lm_head` and the unused
  `projection_head`; runs the symmetric two-pass masked prediction.

Every public forward takes EEG in microvolts; the reference's division by 100 happens in the temporal
encoder. Padded channels/patches (see `labram_jax.layout`) never change the real tokens' outputs.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from labram_jax import channels as channel_vocab
from labram_jax import layout
from labram_jax import logical_axes as ax
from labram_jax.models import initializers as inits
from labram_jax.models.layers import logical_dense
from labram_jax.models.spec import TransformerSpec
from labram_jax.models.temporal_conv import CodePatchEmbed, TemporalConv
from labram_jax.models.transformer import Block, dense_init, layer_norm
from labram_jax.ops.masked_stats import masked_mean


def check_inputs(spec: TransformerSpec, x: jnp.ndarray, channel_ids: jnp.ndarray, channel_mask: jnp.ndarray) -> None:
    """Rejects inputs the embeddings cannot represent, naming the offending length or channel row."""
    if x.ndim != 4:
        raise ValueError(f"expected (batch, channels, patches, {spec.patch_size}) input, got shape {x.shape}")
    num_patches = x.shape[2]
    if num_patches > spec.max_patches:
        raise ValueError(
            f"{num_patches} patches per channel ({num_patches} s) exceed the temporal embedding's "
            f"{spec.max_patches} rows (model.max_patches); cut the recording into windows of at most "
            f"{spec.max_patches} s."
        )
    if spec.patch_input == "eeg" and x.shape[3] != spec.patch_size:
        raise ValueError(f"patches must hold {spec.patch_size} samples (1 s at 200 Hz), got {x.shape[3]}")
    if not isinstance(channel_ids, jax.core.Tracer) and not isinstance(channel_mask, jax.core.Tracer):
        ids, real = np.asarray(channel_ids), np.asarray(channel_mask, bool)
        bad = real & ((ids < 1) | (ids > channel_vocab.NUM_USABLE))
        if bad.any():
            raise ValueError(
                f"channel id {int(ids[bad][0])} is outside the spatial embedding rows 1..{channel_vocab.NUM_USABLE}; "
                "build ids with labram_jax.channels.channel_ids(names)."
            )


def drop_path_rates(rate: float, depth: int) -> list[float]:
    """Per-block stochastic-depth rates: `linspace(0, rate, depth)`, block 0 never dropped."""
    return [float(r) for r in np.linspace(0.0, rate, depth)]


class NeuralTransformer(nn.Module):
    """Embeds patches and runs the blocks: `(B, C, A, F) -> (B, 1 + C*A, d)`, cls token first.

    Spatial embedding rows come from `channel_ids` (cls: row 0, or the first channel's row when
    `spec.cls_spatial_from_first_channel`, as the official pre-training model does); temporal rows 0..A-1
    are tiled over channels and added to the patch tokens only. Tokens flagged in `masked` are replaced by
    `mask_token` after the patch embedding (their raw signal still enters the temporal encoder's
    statistics, as in the reference).
    """

    spec: TransformerSpec

    @nn.compact
    def __call__(
        self,
        x: jnp.ndarray,
        channel_ids: jnp.ndarray,
        channel_mask: jnp.ndarray,
        patch_mask: jnp.ndarray,
        masked: jnp.ndarray | None = None,
        mask_token: jnp.ndarray | None = None,
        deterministic: bool = True,
    ) -> jnp.ndarray:
        spec = self.spec
        check_inputs(spec, x, channel_ids, channel_mask)
        b, c, a, _ = x.shape
        tokens_valid = layout.token_mask(channel_mask, patch_mask)
        if spec.patch_input == "eeg":
            h = TemporalConv(spec, name="patch_embed")(x, tokens_valid)
        else:
            h = CodePatchEmbed(spec, name="patch_embed")(x, tokens_valid)
        if masked is not None:
            h = jnp.where(masked[..., None], mask_token.astype(h.dtype), h)

        embed_init = dense_init(spec)  # the embeddings share the Linear weights' truncated normal
        cls_token = self.param("cls_token", nn.with_logical_partitioning(embed_init, (ax.EMBED,)), (spec.width,))
        pos_embed = self.param(
            "pos_embed",
            nn.with_logical_partitioning(embed_init, (ax.SPATIAL, ax.EMBED)),
            (channel_vocab.NUM_SPATIAL_ROWS, spec.width),
        )
        time_embed = self.param(
            "time_embed",
            nn.with_logical_partitioning(embed_init, (ax.TEMPORAL, ax.EMBED)),
            (spec.max_patches, spec.width),
        )

        spatial = jnp.take(pos_embed, channel_ids, axis=0)  # (B, C, d)
        if spec.cls_spatial_from_first_channel:
            cls_spatial = spatial[:, 0]
        else:
            cls_spatial = jnp.broadcast_to(pos_embed[channel_vocab.CLS_ROW], (b, spec.width))
        patch_pos = (spatial[:, :, None, :] + time_embed[None, None, :a, :]).reshape(b, c * a, spec.width)
        cls = (cls_token + cls_spatial)[:, None, :]
        h = jnp.concatenate([cls.astype(h.dtype), h + patch_pos.astype(h.dtype)], axis=1)
        # A frozen part (partial fine-tuning) is a fixed feature extractor: no dropout or drop path in it.
        h = nn.Dropout(spec.drop_rate)(h, deterministic=deterministic or spec.frozen_blocks > 0)
        h = nn.with_logical_constraint(h, (ax.BATCH, ax.TOKENS, ax.EMBED))

        key_mask = jnp.concatenate([jnp.ones((b, 1), bool), tokens_valid], axis=1)
        block_cls = nn.remat(Block, static_argnums=(3,)) if spec.remat else Block
        rates = drop_path_rates(spec.drop_path_rate, spec.depth)
        for i in range(spec.depth):
            if i == spec.frozen_blocks > 0:
                h = jax.lax.stop_gradient(h)  # partial fine-tuning: no backward through the frozen part
            frozen = i < spec.frozen_blocks
            h = block_cls(spec, i, rates[i], name=f"blocks_{i}")(h, key_mask, deterministic or frozen)
            h = materialized_cotangent(h)
        if spec.frozen_blocks >= spec.depth > 0:
            h = jax.lax.stop_gradient(h)  # linear probe
        return h


@jax.custom_vjp
def materialized_cotangent(x: jnp.ndarray) -> jnp.ndarray:
    """Identity whose gradient is computed once and stored.

    The residual stream's gradient is a chain of adds and LayerNorm-backward terms from the last block
    down to the first. XLA:CPU fuses such elementwise chains into their consumers and duplicates them into
    every one, so each weight gradient recomputed the chain of all later blocks (measured: 0.7 s of a
    2.5 s Base fine-tune step on 2 cores). A boundary at each block output keeps one materialised gradient
    per block: 2.5 s -> 2.0 s. `lax.optimization_barrier` does not do it (XLA:CPU removes barriers
    before fusion); a conditional does, and costs one scalar test per block.
    """
    return x


def _materialized_fwd(x):
    return x, None


def _materialized_bwd(_, g):
    # XLA:CPU drops optimization barriers before fusion; a conditional boundary it cannot see through.
    keep = jnp.isfinite(g.reshape(-1)[-1])  # not [0]: the cls token's gradient can be a constant 0
    return (jax.lax.cond(keep, lambda t: t, lambda t: t * 1.0, g),)


materialized_cotangent.defvjp(_materialized_fwd, _materialized_bwd)


def _head(num_outputs: int, init_scale: float) -> nn.Dense:
    return logical_dense(num_outputs, (ax.EMBED, ax.CLASSES), inits.trunc_normal(0.02, scale=init_scale))


class LaBraMClassifier(nn.Module):
    """Fine-tuning model: mean of the real patch tokens (cls excluded) -> `fc_norm` -> `head` (ref. §1.7).

    `num_outputs` is the head size (1 for binary BCE, K classes, or regression targets); 0 drops the head
    (tokenizer encoder/decoder). The head is initialised as the reference: trunc-normal(0.02) x `init_scale`.
    """

    spec: TransformerSpec
    num_outputs: int = 0
    init_scale: float = 0.001

    def setup(self):
        self.backbone = NeuralTransformer(self.spec)
        self.fc_norm = layer_norm(dtype=self.spec.dtype)
        if self.num_outputs:
            self.head = _head(self.num_outputs, self.init_scale)

    def _encode(self, x, channel_ids, channel_mask, patch_mask, deterministic):
        """`(backbone tokens (B, 1 + N, d), real-token mask (B, N))`."""
        h = self.backbone(x, channel_ids, channel_mask, patch_mask, deterministic=deterministic)
        return h, layout.token_mask(channel_mask, patch_mask)

    def _pool(self, h: jnp.ndarray, valid: jnp.ndarray) -> jnp.ndarray:
        return self.fc_norm(masked_mean(h[:, 1:], valid[..., None], axis=1))

    def _tokens(self, h: jnp.ndarray, valid: jnp.ndarray) -> jnp.ndarray:
        return jnp.where(valid[..., None], self.fc_norm(h[:, 1:]), 0)

    def features(
        self,
        x: jnp.ndarray,
        channel_ids: jnp.ndarray,
        channel_mask: jnp.ndarray,
        patch_mask: jnp.ndarray,
        deterministic: bool = True,
    ) -> jnp.ndarray:
        """Patch tokens after `fc_norm`, `(B, C*A, d)` channel-major (padded tokens are zero)."""
        return self._tokens(*self._encode(x, channel_ids, channel_mask, patch_mask, deterministic))

    def pooled(
        self,
        x: jnp.ndarray,
        channel_ids: jnp.ndarray,
        channel_mask: jnp.ndarray,
        patch_mask: jnp.ndarray,
        deterministic: bool = True,
    ) -> jnp.ndarray:
        """`fc_norm` of the mean over the real patch tokens, `(B, d)`."""
        return self._pool(*self._encode(x, channel_ids, channel_mask, patch_mask, deterministic))

    def outputs(
        self,
        x: jnp.ndarray,
        channel_ids: jnp.ndarray,
        channel_mask: jnp.ndarray,
        patch_mask: jnp.ndarray,
        deterministic: bool = True,
    ) -> dict[str, jnp.ndarray]:
        """`features`, `pooled` and (with a head) `logits` from one backbone pass, as the three methods
        compute them; for callers that want several (embedding whole recordings) at the cost of one."""
        h, valid = self._encode(x, channel_ids, channel_mask, patch_mask, deterministic)
        pooled = self._pool(h, valid)
        out = {"features": self._tokens(h, valid), "pooled": pooled}
        if self.num_outputs:
            out["logits"] = self.head(pooled)
        return out

    def __call__(
        self,
        x: jnp.ndarray,
        channel_ids: jnp.ndarray,
        channel_mask: jnp.ndarray,
        patch_mask: jnp.ndarray,
        deterministic: bool = True,
    ) -> jnp.ndarray:
        """Head outputs `(B, num_outputs)` (or the pooled features when there is no head)."""
        pooled = self.pooled(x, channel_ids, channel_mask, patch_mask, deterministic)
        return self.head(pooled) if self.num_outputs else pooled


class MaskedEEGStudent(nn.Module):
    """The pre-training backbone: mask token, blocks, final LayerNorm over all tokens `(B, 1 + N, d)`."""

    spec: TransformerSpec
    vocab_size: int = 8192

    @nn.compact
    def __call__(
        self,
        x: jnp.ndarray,
        channel_ids: jnp.ndarray,
        channel_mask: jnp.ndarray,
        patch_mask: jnp.ndarray,
        masked: jnp.ndarray,
        deterministic: bool = True,
    ) -> jnp.ndarray:
        spec = self.spec
        mask_token = self.param(
            "mask_token", nn.with_logical_partitioning(inits.trunc_normal_one_sigma(0.02), (ax.EMBED,)), (spec.width,)
        )
        h = NeuralTransformer(spec, name="backbone")(
            x, channel_ids, channel_mask, patch_mask, masked, mask_token, deterministic
        )
        h = layer_norm("norm", dtype=spec.dtype)(h)
        if self.is_initializing():
            # The student's own lm_head is never used by the official forward, but it is in the official
            # weights and parameter count; create it so checkpoints map one-to-one.
            logical_dense(self.vocab_size, (ax.EMBED, ax.VOCAB), dense_init(spec), name="lm_head")(h[:, :1])
        return h


class LaBraMPretrain(nn.Module):
    """Masked EEG modeling with symmetric masking (ref. §5.1-5.3).

    `__call__` runs the student on the batch twice, once with `masked` and once with its complement among
    the real tokens (batched together), and returns for every token the logits of the pass in which it was
    hidden: `(B, C*A, vocab)`. `ops.losses.mem_loss` turns these into the two cross-entropy terms.
    """

    spec: TransformerSpec
    vocab_size: int = 8192

    @nn.compact
    def __call__(
        self,
        x: jnp.ndarray,
        channel_ids: jnp.ndarray,
        channel_mask: jnp.ndarray,
        patch_mask: jnp.ndarray,
        masked: jnp.ndarray,
        deterministic: bool = True,
    ) -> jnp.ndarray:
        spec = self.spec
        valid = layout.token_mask(channel_mask, patch_mask)
        visible = valid & ~masked
        both = lambda t: jnp.concatenate([t, t], axis=0)  # noqa: E731
        h = MaskedEEGStudent(spec, self.vocab_size, name="student")(
            both(x),
            both(channel_ids),
            both(channel_mask),
            both(patch_mask),
            jnp.concatenate([masked, visible], axis=0),
            deterministic,
        )
        b = x.shape[0]
        hidden = jnp.where(masked[..., None], h[:b, 1:], h[b:, 1:])
        width = spec.width
        # Outer lm_head: PyTorch default init, then the weight re-drawn +-1 sigma; the bias keeps U(+-1/sqrt d).
        logits = logical_dense(
            self.vocab_size,
            (ax.EMBED, ax.VOCAB),
            inits.trunc_normal_one_sigma(0.02),
            inits.torch_default_uniform(width),
            dtype=spec.dtype,
            name="lm_head",
        )(hidden)
        if self.is_initializing():
            # Unused in the official forward; kept for one-to-one weights and the official count.
            default = inits.torch_default_uniform(width)
            logical_dense(width, (ax.EMBED, ax.MLP), default, default, name="projection_head")(hidden[:, :1])
        return nn.with_logical_constraint(logits, (ax.BATCH, ax.TOKENS, ax.VOCAB))
