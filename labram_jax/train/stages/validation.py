"""`validate(config)` of each stage: every field the stage reads exists and holds a usable value, checked
before any data is opened or anything compiles. Config files are user code: a missing or mistyped field
gets a message naming it and the fix instead of an error deep inside a jitted step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ml_collections

from labram_jax.checkpoints.model_spec import TOKENIZER_FIELDS, TRANSFORMER_FIELDS
from labram_jax.config_errors import ConfigError

_MISSING = object()

RUNTIME_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": (lambda v: isinstance(v, int), "an integer"),
    "max_steps": (lambda v: isinstance(v, int) and v >= 0, "a step count >= 0 (0 = the full optim.epochs)"),
    "mesh.data": (lambda v: isinstance(v, int) and (v == -1 or v >= 1), "-1 (the remaining devices) or >= 1"),
    "mesh.fsdp": (lambda v: isinstance(v, int) and (v == -1 or v >= 1), "-1 (the remaining devices) or >= 1"),
    "mesh.tensor": (lambda v: isinstance(v, int) and (v == -1 or v >= 1), "-1 (the remaining devices) or >= 1"),
    "checkpoint.every_steps": (lambda v: isinstance(v, int) and v >= 0, "a step count >= 0 (0 = once per epoch)"),
    "checkpoint.keep": (lambda v: isinstance(v, int) and v >= 1, "at least 1"),
    "checkpoint.keep_best": (lambda v: isinstance(v, int) and v >= 0, ">= 0"),
    "checkpoint.async_save": (lambda v: isinstance(v, bool), "true or false"),
    "log.every_steps": (lambda v: isinstance(v, int) and v >= 0, "a step count >= 0"),
    "log.progress": (lambda v: isinstance(v, bool), "true or false"),
    "eval.every_epochs": (lambda v: isinstance(v, (int, float)) and v >= 0, ">= 0 (0 = only at the end)"),
    "optim.batch_size": (lambda v: isinstance(v, int) and v >= 1, "a positive integer"),
    "optim.lr": (lambda v: isinstance(v, (int, float)) and v > 0, "a positive number"),
    "optim.min_lr": (lambda v: isinstance(v, (int, float)) and v >= 0, ">= 0"),
    "optim.epochs": (lambda v: isinstance(v, int) and v >= 1, "a positive integer"),
    "optim.warmup_epochs": (lambda v: isinstance(v, (int, float)) and v >= 0, ">= 0"),
    "optim.warmup_steps": (lambda v: isinstance(v, int), "an integer (> 0 overrides warmup_epochs)"),
    "optim.b1": (lambda v: isinstance(v, float) and 0 <= v < 1, "in [0, 1)"),
    "optim.b2": (lambda v: isinstance(v, float) and 0 <= v < 1, "in [0, 1)"),
    "optim.eps": (lambda v: isinstance(v, float) and v > 0, "a positive number"),
    "optim.weight_decay": (lambda v: isinstance(v, (int, float)) and v >= 0, ">= 0"),
    "optim.clip_grad_norm": (lambda v: isinstance(v, (int, float)) and v >= 0, ">= 0 (0 = no clipping)"),
    "optim.grad_accum_steps": (lambda v: isinstance(v, int) and v >= 1, "a positive integer"),
    "data.data_dir": (lambda v: isinstance(v, str), "a directory"),
    "data.train": (lambda v: isinstance(v, str), "a comma-separated list of name/config[:split]"),
    "data.validation": (lambda v: isinstance(v, str), "a comma-separated list of name/config[:split]"),
    "data.test": (lambda v: isinstance(v, str), "a comma-separated list of name/config[:split]"),
    "data.max_channels": (lambda v: isinstance(v, int) and (v >= 1 or v == -1), ">= 1 (-1: from the dataset)"),
    "data.max_patches": (lambda v: isinstance(v, int) and (v >= 1 or v == -1), ">= 1 (-1: from the dataset)"),
    "data.weights": (lambda v: isinstance(v, (tuple, list)), "a list of mixture weights (empty = equal)"),
    "data.shuffle": (lambda v: isinstance(v, bool), "true or false"),
    "data.num_workers": (lambda v: isinstance(v, int) and v >= 0, ">= 0"),
    "data.eval_batch_size": (lambda v: isinstance(v, int) and v >= 0, ">= 0 (0 = 1.5 x optim.batch_size)"),
}


def field(config: ml_collections.ConfigDict, path: str) -> Any:
    node: Any = config
    for part in path.split("."):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def check(config: ml_collections.ConfigDict, fields: dict[str, tuple[Callable[[Any], bool], str]]) -> None:
    """Raises a ConfigError naming the first field that is missing or fails its check."""
    for path, (ok, expected) in fields.items():
        value = field(config, path)
        if value is _MISSING:
            raise ConfigError(
                f"config.{path} is missing; the {config.get('stage', '?')} stage reads it ({expected}). Build "
                "configs with the helpers of configs/common.py, which set every field"
            )
        if not ok(value):
            raise ConfigError(f"config.{path}={value!r} must be {expected}")


def require_section(config: ml_collections.ConfigDict, section: str, fields: tuple[str, ...], what: str) -> None:
    present = field(config, section)
    missing = [f for f in fields if present is _MISSING or f not in present]
    if missing:
        raise ConfigError(
            f"config.{section} lacks {', '.join(missing)}: the {what} is built from these fields (defaults in "
            "labram_jax/config_defaults.py)"
        )


def validate_runtime(config: ml_collections.ConfigDict) -> None:
    check(config, RUNTIME_FIELDS)


def validate_transformer(config: ml_collections.ConfigDict) -> None:
    require_section(config, "model", TRANSFORMER_FIELDS, "neural Transformer")


def validate_tokenizer_architecture(config: ml_collections.ConfigDict) -> None:
    require_section(config, "tokenizer", TOKENIZER_FIELDS, "VQ-NSP tokenizer")


def validate_frozen_tokenizer(config: ml_collections.ConfigDict) -> None:
    """Pre-training reads only `config.tokenizer.checkpoint`: the architecture is the checkpoint's."""
    tokenizer = field(config, "tokenizer")
    if tokenizer is _MISSING or "checkpoint" not in tokenizer:
        raise ConfigError("config.tokenizer.checkpoint is missing: pre-training predicts a trained tokenizer's codes")
    ignored = sorted(k for k in tokenizer if k != "checkpoint")
    if ignored:
        raise ConfigError(
            f"config.tokenizer.{ignored[0]} would be ignored: pre-training takes the tokenizer's architecture "
            f"from its checkpoint (config.tokenizer.checkpoint); remove config.tokenizer.{', '.join(ignored)}"
        )
    mask_ratio = field(config, "data.mask_ratio")
    if mask_ratio is _MISSING or not (isinstance(mask_ratio, float) and 0 < mask_ratio < 1):
        raise ConfigError(f"config.data.mask_ratio must be in (0, 1) (the reference masks 0.5), got {mask_ratio!r}")
