"""Tiny model specs and helpers shared by the model tests (fast on 2 CPU cores)."""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import numpy as np

from labram_jax import layout
from labram_jax.models.spec import QuantizerSpec, TransformerSpec

# width = 25 * conv_channels; 4 GroupNorm groups of one channel each.
BACKBONE = TransformerSpec(
    width=100, depth=2, num_heads=4, conv_channels=4, layer_scale_init=0.1, qkv_bias=False, qk_norm=True, max_patches=6
)
TOKENIZER_BODY = dataclasses.replace(BACKBONE, qkv_bias=True, qk_norm=False, layer_scale_init=0.0)
QUANTIZER = QuantizerSpec(num_codes=16, code_dim=8)


def batch(rng: np.random.Generator, b: int = 2, c: int = 3, a: int = 4, amplitude: float = 50.0):
    """An unpadded random batch in microvolts."""
    channel_mask, patch_mask = layout.full_masks(b, c, a)
    ids = np.stack([rng.choice(np.arange(1, 129), size=c, replace=False) for _ in range(b)]).astype(np.int32)
    return {
        layout.EEG: (amplitude * rng.standard_normal((b, c, a, 200))).astype(np.float32),
        layout.CHANNEL_IDS: ids,
        layout.CHANNEL_MASK: channel_mask,
        layout.PATCH_MASK: patch_mask,
    }


def pad(batch_: dict, extra_channels: int, extra_patches: int, fill: float = 0.0) -> dict:
    """The same batch padded with `extra_channels` channels and `extra_patches` patches (masked out)."""
    eeg = batch_[layout.EEG]
    b, c, a, p = eeg.shape
    rng = np.random.default_rng(123)
    padded = fill + 30.0 * rng.standard_normal((b, c + extra_channels, a + extra_patches, p)).astype(np.float32)
    padded[:, :c, :a] = eeg
    ids = np.concatenate(
        [batch_[layout.CHANNEL_IDS], rng.integers(1, 129, (b, extra_channels)).astype(np.int32)], axis=1
    )
    cm = np.concatenate([batch_[layout.CHANNEL_MASK], np.zeros((b, extra_channels), bool)], axis=1)
    pm = np.concatenate([batch_[layout.PATCH_MASK], np.zeros((b, extra_patches), bool)], axis=1)
    return {layout.EEG: padded, layout.CHANNEL_IDS: ids, layout.CHANNEL_MASK: cm, layout.PATCH_MASK: pm}


def args(batch_: dict):
    return (batch_[layout.EEG], batch_[layout.CHANNEL_IDS], batch_[layout.CHANNEL_MASK], batch_[layout.PATCH_MASK])


def perturb(variables, seed: int = 0, scale: float = 0.2):
    """Adds noise to every float parameter so that unit scales, zero biases and equal gammas are tested too."""
    variables = nn.meta.unbox(variables)
    leaves, treedef = jax.tree_util.tree_flatten(variables["params"])
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    noisy = [x + scale * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)]
    return {**variables, "params": jax.tree_util.tree_unflatten(treedef, noisy)}


def token_mask_of(batch_: dict) -> np.ndarray:
    return np.asarray(layout.token_mask(batch_[layout.CHANNEL_MASK], batch_[layout.PATCH_MASK]))
