"""Frozen descriptions of the model sizes: what a config unpacks into before any module sees it."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import jax.numpy as jnp

InitStyle = Literal["finetune", "pretrain"]
PatchInput = Literal["eeg", "codes"]


@dataclasses.dataclass(frozen=True)
class TransformerSpec:
    """One neural Transformer (ref. §1, §3.1, §4.1, §4.5).

    `init_style` picks the reference's initialiser family: "finetune" (modeling_finetune.py and the
    tokenizer: timm trunc-normal with absolute +-2 bounds, PyTorch-default convs) or "pretrain"
    (modeling_pretrain.py: normal truncated at +-1 sigma, convs included). `patch_input` is "eeg" for the
    temporal-conv encoder over 200-sample patches and "codes" for the tokenizer decoder's 1x1 projection of
    `code_dim`-wide codewords. `frozen_blocks > 0` stops gradients below block `frozen_blocks` (partial
    fine-tuning: the embeddings and the first blocks are frozen, so their backward is never computed,
    and they run without dropout or drop path, as a fixed feature extractor).
    """

    width: int = 200
    depth: int = 12
    num_heads: int = 10
    mlp_ratio: int = 4
    conv_channels: int = 8
    patch_size: int = 200
    patch_input: PatchInput = "eeg"
    code_dim: int = 64
    qkv_bias: bool = False
    qk_norm: bool = True
    layer_scale_init: float = 0.1
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    max_patches: int = 16
    cls_spatial_from_first_channel: bool = False
    init_style: InitStyle = "finetune"
    dtype: Any = jnp.float32
    remat: bool = False
    frozen_blocks: int = 0

    def __post_init__(self):
        if self.width % self.num_heads:
            raise ValueError(f"width {self.width} is not divisible by num_heads {self.num_heads}")
        if self.patch_input == "eeg" and self.width != 25 * self.conv_channels:
            raise ValueError(
                f"the temporal encoder yields 25 * conv_channels = {25 * self.conv_channels} features per "
                f"patch but width is {self.width}; set conv_channels = width / 25"
            )

    @property
    def head_dim(self) -> int:
        return self.width // self.num_heads

    @property
    def mlp_dim(self) -> int:
        return self.width * self.mlp_ratio


# Neural Transformer sizes (ref. §3.1; layer-scale init from the paper's Table 4).
SIZES: dict[str, dict[str, Any]] = {
    "base": dict(width=200, depth=12, num_heads=10, conv_channels=8, layer_scale_init=0.1),
    "large": dict(width=400, depth=24, num_heads=16, conv_channels=16, layer_scale_init=1e-5),
    "huge": dict(width=800, depth=48, num_heads=16, conv_channels=32, layer_scale_init=1e-6),
    # Ours, no official model: ~1.0B parameters (configs/giant.py). The width is a multiple of 25 (the
    # temporal encoder's 25 x conv_channels features) and of 64 (the head dimension TPU and GPU matmul units
    # tile best); LaBraM-at-Scale trained encoders up to 2B.
    "giant": dict(width=1600, depth=32, num_heads=25, conv_channels=64, layer_scale_init=1e-6),
}

# VQ-NSP encoder and decoder (ref. §4.1, §4.5): q/v bias, no qk-norm, no layer scale.
TOKENIZER_ENCODER = dict(
    width=200,
    depth=12,
    num_heads=10,
    conv_channels=8,
    qkv_bias=True,
    qk_norm=False,
    layer_scale_init=0.0,
    init_style="finetune",
)
TOKENIZER_DECODER = dict(
    width=200,
    depth=3,
    num_heads=10,
    conv_channels=8,
    qkv_bias=True,
    qk_norm=False,
    layer_scale_init=0.0,
    init_style="finetune",
    patch_input="codes",
)


@dataclasses.dataclass(frozen=True)
class QuantizerSpec:
    """The norm-EMA quantiser (ref. §4.3).

    Our additions, all off by default (the reference behaviour), measured in `docs/codebook.md`:
    `restart_threshold > 0` adds dead-code restart: a code whose usage EMA (decay `restart_decay`, in shares
    of the tokens) falls below `restart_threshold / num_codes` is re-seeded from a real token of the batch.
    `entropy_weight > 0` adds the entropy penalty on soft assignments (temperature `entropy_temperature`).
    `continuous_steps > 0` passes the continuous encoder output to the decoder for that many training steps
    before k-means initialises the codebook and quantisation starts; -1 stands for "the optimiser's
    warm-up", which the trainer turns into a number of steps (`stages.tokenizer.resolve_continuous_steps`).
    """

    num_codes: int = 8192
    code_dim: int = 64
    decay: float = 0.99
    beta: float = 1.0
    kmeans_init: bool = True
    kmeans_iters: int = 10
    restart_threshold: float = 0.0
    restart_decay: float = 0.99
    entropy_weight: float = 0.0
    entropy_temperature: float = 0.1
    continuous_steps: int = 0

    def __post_init__(self):
        if not 0.0 <= self.restart_threshold < 1.0:
            raise ValueError(
                f"restart_threshold {self.restart_threshold} must be in [0, 1): a code is restarted "
                "when its usage share falls below that fraction of uniform use (0 = never)"
            )
        if not 0.0 <= self.restart_decay < 1.0:
            raise ValueError(f"restart_decay {self.restart_decay} must be in [0, 1)")
        if self.entropy_weight < 0 or self.entropy_temperature <= 0:
            raise ValueError(
                f"entropy_weight {self.entropy_weight} must be >= 0 and entropy_temperature "
                f"{self.entropy_temperature} > 0"
            )
        if self.continuous_steps < -1:
            raise ValueError(
                f"continuous_steps {self.continuous_steps} must be a number of steps, 0 (off) or -1 "
                "(the optimiser's warm-up)"
            )


def size_spec(size: str, **overrides: Any) -> TransformerSpec:
    """The TransformerSpec of a named size ('base' | 'large' | 'huge') with overrides."""
    if size not in SIZES:
        raise ValueError(f"unknown model size {size!r}; choose one of {sorted(SIZES)}")
    return TransformerSpec(**{**SIZES[size], **overrides})
