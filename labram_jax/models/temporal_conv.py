"""Patch embeddings: the temporal-conv encoder of raw EEG patches (ref. §1.2) and the 1x1 code projection."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from labram_jax import layout
from labram_jax import logical_axes as ax
from labram_jax.models import initializers as inits
from labram_jax.models.layers import GELU, logical_dense
from labram_jax.models.spec import TransformerSpec
from labram_jax.ops.masked_stats import masked_mean_var


class MaskedGroupNorm(nn.Module):
    """GroupNorm whose statistics pool over all real tokens of a sample (ref. §9.1) and skip padded ones.

    Input `(B, N, W, K)` with a `(B, N)` token mask: per sample and group, the mean and biased variance run
    over (real tokens x W x K/groups), eps 1e-5, then a per-channel affine, as PyTorch's GroupNorm on the
    official `(B, K, N, W)` image. With no padding this is exactly the reference.
    """

    num_groups: int = 4
    epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x: jnp.ndarray, token_mask: jnp.ndarray) -> jnp.ndarray:
        b, n, w, k = x.shape
        scale = self.param("scale", nn.with_logical_partitioning(inits.ones, (ax.NORM,)), (k,))
        bias = self.param("bias", nn.with_logical_partitioning(inits.zeros, (ax.NORM,)), (k,))
        grouped = x.astype(jnp.float32).reshape(b, n, w, self.num_groups, k // self.num_groups)
        mask = token_mask[:, :, None, None, None]
        mean, var = masked_mean_var(grouped, mask, axis=(1, 2, 4))
        normed = ((grouped - mean) * jax.lax.rsqrt(var + self.epsilon)).reshape(b, n, w, k)
        return (normed * scale + bias).astype(x.dtype)


class TemporalConv(nn.Module):
    """Raw patches `(B, C, A, 200)` in microvolts -> token features `(B, C*A, 25*k)`.

    Three conv -> GroupNorm(4) -> GELU blocks with kernels 15/3/3, strides 8/1/1, paddings 7/1/1, applied to
    each 200-sample patch on its own (kernel height 1 in the reference), GroupNorm statistics shared across
    the sample; the output is flattened time-major, channel-minor (feature `t*k + ch`).
    """

    spec: TransformerSpec

    def _conv(self, features: int, kernel: int, stride: int, padding: int, fan_in: int, name: str) -> nn.Conv:
        if self.spec.init_style == "pretrain":
            kernel_init, bias_init = inits.trunc_normal_one_sigma(0.02), inits.zeros
        else:  # PyTorch's Conv2d default: modeling_finetune's _init_weights leaves convs alone.
            kernel_init = bias_init = inits.torch_default_uniform(fan_in)
        return nn.Conv(
            features,
            (kernel,),
            strides=(stride,),
            padding=[(padding, padding)],
            dtype=self.spec.dtype,
            name=name,
            kernel_init=nn.with_logical_partitioning(kernel_init, (ax.CONV_WIDTH, ax.CONV_IN, ax.CONV_OUT)),
            bias_init=nn.with_logical_partitioning(bias_init, (ax.CONV_OUT,)),
        )

    @nn.compact
    def __call__(self, eeg_uv: jnp.ndarray, token_mask: jnp.ndarray) -> jnp.ndarray:
        b, c, a, p = eeg_uv.shape
        k = self.spec.conv_channels
        x = (eeg_uv / layout.INPUT_SCALE).astype(self.spec.dtype).reshape(b * c * a, p, 1)
        layers = ((15, 8, 7, 15), (3, 1, 1, 3 * k), (3, 1, 1, 3 * k))
        for i, (kernel, stride, padding, fan_in) in enumerate(layers, start=1):
            x = self._conv(k, kernel, stride, padding, fan_in, f"conv{i}")(x)
            x = x.reshape(b, c * a, x.shape[1], k)
            x = GELU(MaskedGroupNorm(name=f"norm{i}")(x, token_mask))
            x = x.reshape(b * c * a, x.shape[2], k)
        x = x.reshape(b, c * a, -1)
        return jnp.where(token_mask[..., None], x, 0).astype(self.spec.dtype)


class CodePatchEmbed(nn.Module):
    """The tokenizer decoder's input layer: a 1x1 conv (a Dense) from codewords to the width (ref. §1.3)."""

    spec: TransformerSpec

    @nn.compact
    def __call__(self, codes: jnp.ndarray, token_mask: jnp.ndarray) -> jnp.ndarray:
        b, c, a, f = codes.shape
        init = inits.torch_default_uniform(f)  # Conv2d default init, untouched by _init_weights
        x = logical_dense(self.spec.width, (ax.CODE_IN, ax.EMBED), init, init, dtype=self.spec.dtype, name="proj")(
            codes.reshape(b, c * a, f)
        )
        return jnp.where(token_mask[..., None], x, 0)
