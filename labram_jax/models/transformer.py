"""The transformer block of LaBraM (ref. §1.4-1.5): pre-norm, qk-LayerNorm, q/v bias, layer scale, drop path."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from labram_jax import logical_axes as ax
from labram_jax.models import initializers as inits
from labram_jax.models.layers import GELU, logical_dense
from labram_jax.models.spec import TransformerSpec
from labram_jax.ops import linear
from labram_jax.ops.attention import softmax_attention


def dense_init(spec: TransformerSpec, rescale: float = 1.0) -> inits.Initializer:
    """Linear-weight (and embedding) init of the spec's family, divided by `rescale` (`fix_init_weight`)."""
    if spec.init_style == "pretrain":
        return inits.trunc_normal_one_sigma(0.02, scale=1.0 / rescale)
    return inits.trunc_normal(0.02, scale=1.0 / rescale)


def layer_norm(name: str | None = None, axis_name: str = ax.EMBED, dtype=jnp.float32) -> nn.LayerNorm:
    """LayerNorm(eps 1e-6) with PyTorch's two-pass variance."""
    return nn.LayerNorm(
        epsilon=1e-6,
        use_fast_variance=False,
        dtype=dtype,
        name=name,
        scale_init=nn.with_logical_partitioning(inits.ones, (axis_name,)),
        bias_init=nn.with_logical_partitioning(inits.zeros, (axis_name,)),
    )


class DropPath(nn.Module):
    """Stochastic depth (timm): drop a sample's whole residual branch with probability `rate`."""

    rate: float

    @nn.compact
    def __call__(self, x: jnp.ndarray, deterministic: bool) -> jnp.ndarray:
        if deterministic or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        mask = jax.random.bernoulli(self.make_rng("dropout"), keep, shape)
        return jnp.where(mask, x / keep, 0).astype(x.dtype)


class EinsumDense(nn.Module):
    """A linear layer with a multi-axis kernel (`nn.DenseGeneral` would initialise and box it flattened,
    which breaks sharded initialisation of the per-axis logical names)."""

    equation: str
    kernel_shape: tuple[int, ...]
    kernel_axes: tuple[str, ...]
    kernel_init: inits.Initializer
    bias_axes: tuple[str, ...] | None = None
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        kernel = self.param(
            "kernel", nn.with_logical_partitioning(self.kernel_init, self.kernel_axes), self.kernel_shape
        )
        y = linear.einsum(self.equation, x, kernel, self.dtype)
        if self.bias_axes is not None:
            bias_shape = tuple(self.kernel_shape[len(self.kernel_shape) - len(self.bias_axes) :])
            bias = self.param("bias", nn.with_logical_partitioning(inits.zeros, self.bias_axes), bias_shape)
            y = y + bias.astype(self.dtype)
        return y


class Attention(nn.Module):
    """Multi-head self-attention with a fused bias-free qkv projection and optional q/v bias and qk-norm.

    The qkv kernel `(d, 3, H, hd)` is the official `qkv.weight [3d, d]` transposed and split (q, k, v; then
    heads); `q_bias`/`v_bias` exist when `qkv_bias` (k never has a bias). Padded keys are masked out. The
    kernel is `labram_jax.ops.attention.softmax_attention`: the values of `jax.nn.dot_product_attention`,
    with a closed-form backward that makes fewer passes over the scores (13 % faster Base step on CPU).
    """

    spec: TransformerSpec
    layer_id: int

    @nn.compact
    def __call__(self, x: jnp.ndarray, key_mask: jnp.ndarray, deterministic: bool) -> jnp.ndarray:
        spec = self.spec
        heads, hd = spec.num_heads, spec.head_dim
        qkv = EinsumDense(
            "bnd,dthk->bnthk",
            (spec.width, 3, heads, hd),
            (ax.EMBED, ax.QKV, ax.HEADS, ax.HEAD_DIM),
            dense_init(spec),
            dtype=spec.dtype,
            name="qkv",
        )(x)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        if spec.qkv_bias:
            bias_init = nn.with_logical_partitioning(inits.zeros, (ax.HEADS, ax.HEAD_DIM))
            q = q + self.param("q_bias", bias_init, (heads, hd)).astype(q.dtype)
            v = v + self.param("v_bias", bias_init, (heads, hd)).astype(v.dtype)
        if spec.qk_norm:
            # One affine of size hd shared by all heads, as LayerNorm(head_dim) in the reference.
            q = layer_norm("q_norm", ax.HEAD_DIM, spec.dtype)(q)
            k = layer_norm("k_norm", ax.HEAD_DIM, spec.dtype)(k)
        mask = key_mask[:, None, None, :]
        if spec.attn_drop_rate > 0.0 and not deterministic:
            # The fused kernel has no dropout; fall back to explicit softmax (every recipe uses rate 0).
            logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) * hd**-0.5
            probs = jax.nn.softmax(jnp.where(mask, logits.astype(jnp.float32), -jnp.inf), axis=-1)
            probs = nn.Dropout(spec.attn_drop_rate)(probs, deterministic=False).astype(v.dtype)
            out = jnp.einsum("bhqk,bkhd->bqhd", probs, v)
        else:
            out = softmax_attention(q, k, v, key_mask, scale=hd**-0.5)
        out = EinsumDense(
            "bnhk,hkd->bnd",
            (heads, hd, spec.width),
            (ax.HEADS, ax.HEAD_DIM, ax.EMBED),
            dense_init(spec, (2.0 * (self.layer_id + 1)) ** 0.5),
            bias_axes=(ax.EMBED,),
            dtype=spec.dtype,
            name="proj",
        )(out)
        return nn.Dropout(spec.drop_rate)(out, deterministic=deterministic)


class Mlp(nn.Module):
    """fc1 -> exact GELU -> fc2 -> dropout."""

    spec: TransformerSpec
    layer_id: int

    @nn.compact
    def __call__(self, x: jnp.ndarray, deterministic: bool) -> jnp.ndarray:
        spec = self.spec
        x = logical_dense(spec.mlp_dim, (ax.EMBED, ax.MLP), dense_init(spec), dtype=spec.dtype, name="fc1")(x)
        x = nn.with_logical_constraint(GELU(x), (ax.BATCH, ax.TOKENS, ax.MLP))
        x = logical_dense(
            spec.width,
            (ax.MLP, ax.EMBED),
            dense_init(spec, (2.0 * (self.layer_id + 1)) ** 0.5),
            dtype=spec.dtype,
            name="fc2",
        )(x)
        return nn.Dropout(spec.drop_rate)(x, deterministic=deterministic)


class Block(nn.Module):
    """`x + DropPath(g1 * Attn(LN1 x))`, then `x + DropPath(g2 * MLP(LN2 x))`; g exists when layer scale > 0."""

    spec: TransformerSpec
    layer_id: int
    drop_path: float = 0.0

    @nn.compact
    def __call__(self, x: jnp.ndarray, key_mask: jnp.ndarray, deterministic: bool = True) -> jnp.ndarray:
        spec = self.spec
        y = Attention(spec, self.layer_id, name="attn")(
            layer_norm("norm1", dtype=spec.dtype)(x), key_mask, deterministic
        )
        z_scale = None
        if spec.layer_scale_init > 0:
            gamma_init = nn.with_logical_partitioning(
                lambda k, s, d=jnp.float32: jnp.full(s, spec.layer_scale_init, d), (ax.EMBED,)
            )
            y = y * self.param("gamma_1", gamma_init, (spec.width,)).astype(y.dtype)
            z_scale = self.param("gamma_2", gamma_init, (spec.width,))
        x = x + DropPath(self.drop_path, name="drop_path_attn")(y, deterministic)
        z = Mlp(spec, self.layer_id, name="mlp")(layer_norm("norm2", dtype=spec.dtype)(x), deterministic)
        if z_scale is not None:
            z = z * z_scale.astype(z.dtype)
        x = x + DropPath(self.drop_path, name="drop_path_mlp")(z, deterministic)
        return nn.with_logical_constraint(x, (ax.BATCH, ax.TOKENS, ax.EMBED))
