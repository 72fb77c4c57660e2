"""VQ-NSP, the neural tokenizer (ref. §4): encoder -> norm-EMA quantiser -> decoder -> Fourier heads."""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from labram_jax import layout
from labram_jax import logical_axes as ax
from labram_jax.models import initializers as inits
from labram_jax.models.layers import logical_dense
from labram_jax.models.neural_transformer import LaBraMClassifier
from labram_jax.models.quantizer import COLLECTION, NormEMAQuantizer
from labram_jax.models.spec import QuantizerSpec, TransformerSpec
from labram_jax.ops import fourier
from labram_jax.ops.losses import masked_mse, tokenizer_loss
from labram_jax.ops.masked_stats import masked_mean

TARGET_OFFSETS = {"amplitude_offset": "decode_task_layer", "phase_offset": "decode_task_layer_angle"}
"""`mean_target_offset`'s `quantizer`-collection variables, and the Fourier head whose output each is added to
(`export` folds each into that head's output bias)."""

OFFSET_BUFFERS = (*TARGET_OFFSETS, "offset_initted")
"""The offsets' variables, left out of the official parameter count: export folds the offsets into the heads'
biases, so the exported official model has exactly the official count."""


class TaskLayer(nn.Module):
    """`Linear -> Tanh -> Linear` in float32 (the reference disables autocast around the encode head)."""

    hidden: int
    out: int
    out_axis: str = ax.EMBED

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        kernel = inits.trunc_normal(0.02)
        x = logical_dense(self.hidden, (ax.EMBED, ax.MLP), kernel, dtype=jnp.float32, name="dense_in")(
            x.astype(jnp.float32)
        )
        return logical_dense(self.out, (ax.MLP, self.out_axis), kernel, dtype=jnp.float32, name="dense_out")(
            jnp.tanh(x)
        )


class VQNSP(nn.Module):
    """The tokenizer. `__call__` returns the loss and metrics of one batch; `encode` gives the codes.

    Inputs follow `labram_jax.layout`: `eeg (B, C, A, 200)` in microvolts plus channel ids and masks.

    `mean_target_offset` (ours, off in the reference; `docs/codebook.md`): each Fourier head adds a fixed
    per-frequency offset to its output, set once, on the first training batch, to the mean amplitude / phase
    target of that batch's real tokens (like the codebook's k-means, a data-dependent initialisation, and
    kept in the `quantizer` collection with `offset_initted`). The heads, initialised near zero (std 0.02),
    would otherwise spend the first hundreds of steps learning the mean spectrum, a plateau on which the
    encoder's straight-through gradient removes whatever varies between tokens and the codebook collapses;
    with the mean given, from the first step the heads learn what differs from token to token, which only
    the codes can tell them. `export` folds the offsets into the heads' output biases, where the official
    model has them.
    """

    encoder_spec: TransformerSpec
    decoder_spec: TransformerSpec
    quantizer_spec: QuantizerSpec = QuantizerSpec()
    mean_target_offset: bool = False

    def setup(self):
        width = self.encoder_spec.width
        self.encoder = LaBraMClassifier(self.encoder_spec, num_outputs=0)
        self.decoder = LaBraMClassifier(
            dataclasses.replace(self.decoder_spec, patch_input="codes", code_dim=self.quantizer_spec.code_dim),
            num_outputs=0,
        )
        self.encode_task_layer = TaskLayer(width, self.quantizer_spec.code_dim, ax.CODE_DIM)
        self.decode_task_layer = TaskLayer(width, self.encoder_spec.patch_size)
        self.decode_task_layer_angle = TaskLayer(width, self.encoder_spec.patch_size)
        self.quantize = NormEMAQuantizer(self.quantizer_spec)
        if self.mean_target_offset:
            zeros = lambda: jnp.zeros((self.encoder_spec.patch_size,), jnp.float32)  # noqa: E731
            amplitude_name, phase_name = TARGET_OFFSETS
            self.amplitude_offset = self.variable(COLLECTION, amplitude_name, zeros)
            self.phase_offset = self.variable(COLLECTION, phase_name, zeros)
            self.offset_initted = self.variable(COLLECTION, OFFSET_BUFFERS[-1], lambda: jnp.asarray(False))

    def encode(
        self,
        eeg: jnp.ndarray,
        channel_ids: jnp.ndarray,
        channel_mask: jnp.ndarray,
        patch_mask: jnp.ndarray,
        train: bool = False,
    ):
        """-> (straight-through codewords `(B, N, D)`, codes `(B, N)` channel-major, quantiser losses)."""
        valid = layout.token_mask(channel_mask, patch_mask)
        h = self.encoder.features(eeg, channel_ids, channel_mask, patch_mask, deterministic=not train)
        return self.quantize(self.encode_task_layer(h), valid, train)

    def get_codebook_indices(
        self, eeg: jnp.ndarray, channel_ids: jnp.ndarray, channel_mask: jnp.ndarray, patch_mask: jnp.ndarray
    ) -> jnp.ndarray:
        """The pre-training targets: `(B, C*A)` code indices (meaningless at padded tokens)."""
        return self.encode(eeg, channel_ids, channel_mask, patch_mask)[1]

    def decode(
        self,
        quantized: jnp.ndarray,
        channel_ids: jnp.ndarray,
        channel_mask: jnp.ndarray,
        patch_mask: jnp.ndarray,
        train: bool = False,
    ) -> tuple[jnp.ndarray, jnp.ndarray]:
        """Codewords `(B, N, D)` -> predicted z-scored amplitude and phase `(B, N, 200)`."""
        b, c = channel_ids.shape
        grid = quantized.reshape(b, c, -1, quantized.shape[-1])
        h = self.decoder.features(grid, channel_ids, channel_mask, patch_mask, deterministic=not train)
        amplitude, phase = self.decode_task_layer(h), self.decode_task_layer_angle(h)
        if self.mean_target_offset:
            amplitude, phase = amplitude + self.amplitude_offset.value, phase + self.phase_offset.value
        return amplitude, phase

    def _init_target_offsets(self, amp_target: jnp.ndarray, phase_target: jnp.ndarray, valid: jnp.ndarray) -> None:
        """On the first training call, the offsets become the batch's mean targets; later calls keep them."""
        first = ~self.offset_initted.value
        for var, target in ((self.amplitude_offset, amp_target), (self.phase_offset, phase_target)):
            var.value = jnp.where(first, masked_mean(target, valid[..., None], axis=(0, 1)), var.value)
        self.offset_initted.value = jnp.asarray(True)

    def one_code_losses(
        self,
        eeg: jnp.ndarray,
        channel_ids: jnp.ndarray,
        channel_mask: jnp.ndarray,
        patch_mask: jnp.ndarray,
        code: jnp.ndarray,
    ) -> tuple[jnp.ndarray, jnp.ndarray]:
        """Amplitude and phase losses when every token is given codeword `code` (a scalar index).

        The decoder then sees nothing but its channel and time embeddings: the losses say how much of the
        Fourier targets needs no code at all, the baseline against which the codes' information is measured.
        """
        valid = layout.token_mask(channel_mask, patch_mask)
        word = self.quantize.codewords(code)
        quantized = jnp.broadcast_to(word, valid.shape + word.shape[-1:])
        amplitude, phase = self.decode(quantized, channel_ids, channel_mask, patch_mask)
        amp_target, phase_target = fourier.fourier_targets(eeg / layout.INPUT_SCALE, valid)
        return masked_mse(amplitude, amp_target, valid), masked_mse(phase, phase_target, valid)

    def __call__(
        self,
        eeg: jnp.ndarray,
        channel_ids: jnp.ndarray,
        channel_mask: jnp.ndarray,
        patch_mask: jnp.ndarray,
        train: bool = False,
    ) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
        valid = layout.token_mask(channel_mask, patch_mask)
        quantized, codes, quantizer_losses = self.encode(eeg, channel_ids, channel_mask, patch_mask, train)
        amp_target, phase_target = fourier.fourier_targets(eeg / layout.INPUT_SCALE, valid)
        if self.mean_target_offset and train and self.is_mutable_collection(COLLECTION) and not self.is_initializing():
            self._init_target_offsets(amp_target, phase_target, valid)
        amplitude, phase = self.decode(quantized, channel_ids, channel_mask, patch_mask, train)
        loss, metrics = tokenizer_loss(quantizer_losses, amplitude, amp_target, phase, phase_target, valid)
        return loss, {**metrics, "codes": codes}
