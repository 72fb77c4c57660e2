"""Builds modules from an ml_collections config and initialises them abstractly or for real.

The config is unpacked here once; modules only ever see frozen specs (`models.spec`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from labram_jax import layout
from labram_jax.config_errors import ConfigError
from labram_jax.models.neural_transformer import LaBraMClassifier, LaBraMPretrain
from labram_jax.models.quantizer import BUFFERS, COLLECTION
from labram_jax.models.spec import TOKENIZER_DECODER, TOKENIZER_ENCODER, QuantizerSpec, TransformerSpec, size_spec
from labram_jax.models.vqnsp import OFFSET_BUFFERS, VQNSP

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def _dtype(name: str) -> Any:
    if name not in _DTYPES:
        raise ValueError(f"config field model.dtype={name!r} is not one of {sorted(_DTYPES)}")
    return _DTYPES[name]


def transformer_spec(model: ml_collections.ConfigDict, init_style: str, **overrides: Any) -> TransformerSpec:
    """The neural Transformer described by `config.model` (size name plus overrides).

    Non-zero `model.width` / `depth` / `num_heads` shrink or grow the named size (demos and tests); the
    temporal conv then gets `width / 25` channels, as every official size has.
    """
    shape = {k: int(model[k]) for k in ("width", "depth", "num_heads") if model[k]}
    if "width" in shape:
        shape["conv_channels"] = shape["width"] // 25
    return size_spec(
        model.size,
        layer_scale_init=model.layer_scale_init,
        drop_rate=model.drop_rate,
        attn_drop_rate=model.attn_drop_rate,
        drop_path_rate=model.drop_path_rate,
        max_patches=model.max_patches,
        dtype=_dtype(model.dtype),
        remat=model.remat,
        init_style=init_style,
        **shape,
        **overrides,
    )


def pretrain_model(config: ml_collections.ConfigDict, vocab_size: int) -> LaBraMPretrain:
    """The masked-EEG-modeling model (official `labram_<size>_patch200_1600_8k_vocab`) predicting one of
    `vocab_size` codes: the size of its tokenizer's codebook."""
    spec = transformer_spec(config.model, "pretrain", cls_spatial_from_first_channel=True)
    return LaBraMPretrain(spec, vocab_size=vocab_size)


def classifier_model(config: ml_collections.ConfigDict, num_outputs: int) -> LaBraMClassifier:
    """The fine-tuning model (official `labram_<size>_patch200_200`) with a `num_outputs` head."""
    spec = transformer_spec(config.model, "finetune")
    return LaBraMClassifier(spec, num_outputs=num_outputs, init_scale=config.model.head_init_scale)


def tokenizer_model(config: ml_collections.ConfigDict) -> VQNSP:
    """VQ-NSP (official `vqnsp_encoder_base_decoder_3x200x12`) from `config.tokenizer`."""
    tok = config.tokenizer
    common = dict(
        max_patches=tok.max_patches,
        dtype=_dtype(tok.dtype),
        remat=tok.remat,
        width=int(tok.width),
        conv_channels=int(tok.width) // 25,
        num_heads=int(tok.num_heads),
    )
    encoder = TransformerSpec(**{**TOKENIZER_ENCODER, "depth": tok.encoder_depth, **common})
    decoder = TransformerSpec(**{**TOKENIZER_DECODER, "depth": tok.decoder_depth, **common})
    remedies = dict(
        restart_threshold=float(tok.restart_threshold),
        restart_decay=float(tok.restart_decay),
        entropy_weight=float(tok.entropy_weight),
        entropy_temperature=float(tok.entropy_temperature),
        continuous_steps=int(tok.continuous_steps),
    )
    try:
        quantizer = QuantizerSpec(
            num_codes=tok.num_codes,
            code_dim=tok.code_dim,
            decay=tok.ema_decay,
            beta=tok.beta,
            kmeans_init=tok.kmeans_init,
            **remedies,
        )
    except ValueError as err:
        raise ConfigError(f"config.tokenizer: {err}") from None
    return VQNSP(encoder, decoder, quantizer, mean_target_offset=bool(tok.mean_target_offset))


def example_batch(
    batch_size: int = 1, num_channels: int = 2, num_patches: int = 2, patch_size: int = layout.PATCH_SIZE
) -> dict[str, np.ndarray]:
    """A zero batch in the layout of `labram_jax.layout`, for initialisation and shape inference."""
    channel_mask, patch_mask = layout.full_masks(batch_size, num_channels, num_patches)
    return {
        layout.EEG: np.zeros((batch_size, num_channels, num_patches, patch_size), np.float32),
        layout.CHANNEL_IDS: np.tile(np.arange(1, num_channels + 1, dtype=np.int32), (batch_size, 1)),
        layout.CHANNEL_MASK: channel_mask,
        layout.PATCH_MASK: patch_mask,
    }


def init_fn(model: nn.Module, batch: dict[str, np.ndarray]) -> Callable[[jax.Array], Any]:
    """`rng -> variables` for any of the three models, using `batch` only for its shapes."""
    args = (batch[layout.EEG], batch[layout.CHANNEL_IDS], batch[layout.CHANNEL_MASK], batch[layout.PATCH_MASK])

    def init(rng: jax.Array):
        if isinstance(model, LaBraMPretrain):
            masked = np.zeros(batch[layout.CHANNEL_MASK].shape[:1] + (args[0].shape[1] * args[0].shape[2],), bool)
            return model.init(rng, *args, masked)
        return model.init(rng, *args)

    return init


def abstract_variables(model: nn.Module, batch: dict[str, np.ndarray] | None = None) -> Any:
    """Shapes and dtypes of every variable, with logical-axis boxes, without allocating anything."""
    return jax.eval_shape(init_fn(model, batch or example_batch()), jax.random.PRNGKey(0))


def param_count(variables: Any) -> int:
    """Parameters under the official counting convention (ref. §4.7).

    Everything in `params`, plus the quantiser's frozen tensors (codebook and the two unused EMA tensors),
    which are `nn.Parameter`s in the reference; the quantiser's buffers (`initted`, `usage`, ...) and the
    mean-target offsets (folded into the heads' biases on export) are excluded.
    """
    variables = nn.meta.unbox(variables)
    total = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(variables.get("params", {})))
    for path, value in jax.tree_util.tree_flatten_with_path(variables.get(COLLECTION, {}))[0]:
        if path[-1].key not in BUFFERS + OFFSET_BUFFERS:
            total += int(np.prod(value.shape))
    return total
