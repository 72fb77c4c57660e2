"""The versioned model spec a checkpoint stores: what the module is, not how it was trained.

`meta["model_spec"]` holds the kind and the architecture fields that `labram_jax.models.factory` reads,
nothing else, so renaming or adding a training field never breaks a checkpoint:

    {"version": 1, "kind": "finetune", "transformer": {size, width, depth, ...}, "num_outputs": 6}
    {"version": 1, "kind": "pretrain", "transformer": {...}, "vocab_size": 8192}
    {"version": 1, "kind": "tokenizer", "tokenizer": {encoder_depth, num_codes, code_dim, ...}}

Checkpoints of the first format (`labram_jax.checkpoint/1`, which stored the whole training config) are
upgraded when read (`upgrade_meta`): their spec is taken from that config with the same field lists, and
fields they predate get the defaults that reproduce the model they were trained as.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import ml_collections

FORMAT = "labram_jax.checkpoint/2"
FORMAT_V1 = "labram_jax.checkpoint/1"
SPEC_VERSION = 1
KINDS = ("tokenizer", "pretrain", "finetune")

TRANSFORMER_FIELDS = (
    "size", "width", "depth", "num_heads", "layer_scale_init", "drop_rate", "attn_drop_rate",
    "drop_path_rate", "max_patches", "head_init_scale", "dtype", "remat",
)  # fmt: skip
"""`config.model` fields that shape the neural Transformer (`factory.transformer_spec`, the head init)."""

TOKENIZER_FIELDS = (
    "width", "num_heads", "encoder_depth", "decoder_depth", "num_codes", "code_dim", "ema_decay", "beta",
    "kmeans_init", "restart_threshold", "restart_decay", "entropy_weight", "entropy_temperature",
    "continuous_steps", "mean_target_offset", "max_patches", "dtype", "remat",
)  # fmt: skip
"""`config.tokenizer` fields that shape VQ-NSP and its quantiser (`factory.tokenizer_model`)."""


class CheckpointError(ValueError):
    """A path that is not a checkpoint, or a checkpoint of the wrong kind for the request."""


def _section(config: Mapping[str, Any], name: str, fields: tuple[str, ...], defaults: Mapping[str, Any]) -> dict:
    section = dict(config.get(name) or {})
    return {f: section.get(f, defaults[f]) for f in fields}


def _transformer(config: Mapping[str, Any]) -> dict[str, Any]:
    from labram_jax import config_defaults

    size = (config.get("model") or {}).get("size", "base")
    return _section(config, "model", TRANSFORMER_FIELDS, config_defaults.model_config(size))


def _tokenizer(config: Mapping[str, Any]) -> dict[str, Any]:
    from labram_jax import config_defaults

    # Fields a config lacks take the defaults of `tokenizer_model_config`: the reference quantiser.
    return _section(config, "tokenizer", TOKENIZER_FIELDS, config_defaults.tokenizer_model_config())


def spec_from_config(
    kind: str,
    config: ml_collections.ConfigDict | Mapping[str, Any],
    num_outputs: int | None = None,
    vocab_size: int | None = None,
) -> dict[str, Any]:
    """The model spec of a `kind` model built from a (training or conversion) config; a pre-training model's
    `vocab_size` is its tokenizer's codebook (first-format configs held it as `tokenizer.num_codes`)."""
    if kind not in KINDS:
        raise ValueError(f"checkpoint kind {kind!r} is not one of {KINDS}")
    cfg = config.to_dict() if isinstance(config, ml_collections.ConfigDict) else dict(config)
    spec: dict[str, Any] = {"version": SPEC_VERSION, "kind": kind}
    if kind == "tokenizer":
        spec["tokenizer"] = _tokenizer(cfg)
    else:
        spec["transformer"] = _transformer(cfg)
    if kind == "pretrain":
        if vocab_size is None:
            vocab_size = (cfg.get("tokenizer") or {}).get("num_codes")
        if vocab_size is None:
            raise ValueError("a pretrain model spec needs vocab_size (the tokenizer's number of codes)")
        spec["vocab_size"] = int(vocab_size)
    if kind == "finetune":
        if num_outputs is None:
            num_outputs = (cfg.get("task") or {}).get("num_outputs")
        if num_outputs is None:
            raise ValueError("a finetune model spec needs num_outputs")
        spec["num_outputs"] = int(num_outputs)
    return _plain(spec)


def _plain(tree: Any) -> Any:
    """JSON types only (tuples as lists), so a spec compares equal before and after a save."""
    return json.loads(json.dumps(tree, default=lambda x: x.item() if hasattr(x, "item") else str(x)))


def factory_config(spec: Mapping[str, Any]) -> ml_collections.ConfigDict:
    """The config sections `models.factory` reads, filled from a spec."""
    _check_spec(spec)
    sections: dict[str, Any] = {}
    if spec["kind"] == "tokenizer":
        sections["tokenizer"] = dict(spec["tokenizer"])
    else:
        sections["model"] = dict(spec["transformer"])
    return ml_collections.ConfigDict(sections)


def build_module(spec: Mapping[str, Any]):
    """The Flax module a model spec describes."""
    from labram_jax.models import factory  # jax-heavy; keep checkpoint metadata reading light

    config = factory_config(spec)
    if spec["kind"] == "tokenizer":
        return factory.tokenizer_model(config)
    if spec["kind"] == "pretrain":
        return factory.pretrain_model(config, int(spec["vocab_size"]))
    return factory.classifier_model(config, int(spec["num_outputs"]))


def _check_spec(spec: Mapping[str, Any]) -> None:
    version = spec.get("version")
    if version != SPEC_VERSION:
        raise CheckpointError(
            f"model spec version {version!r}: this version of labram_jax reads version {SPEC_VERSION}; "
            "upgrade labram_jax to read this checkpoint"
        )
    if spec.get("kind") not in KINDS:
        raise CheckpointError(f"unknown checkpoint kind {spec.get('kind')!r}; expected one of {KINDS}")


def make_meta(
    kind: str,
    config: ml_collections.ConfigDict | Mapping[str, Any],
    step: int,
    num_outputs: int | None = None,
    vocab_size: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The `meta` item: the format, the model spec built from `config`, the step and `extra` fields."""
    return meta_for_spec(spec_from_config(kind, config, num_outputs, vocab_size), step, **extra)


def meta_for_spec(spec: Mapping[str, Any], step: int, **extra: Any) -> dict[str, Any]:
    """The `meta` item of a model spec (conversions build the spec without a training config)."""
    _check_spec(spec)
    return _plain({"format": FORMAT, "kind": spec["kind"], "model_spec": dict(spec), "step": int(step), **extra})


def upgrade_meta(meta: Mapping[str, Any], where: str = "checkpoint") -> dict[str, Any]:
    """`meta` in the current format; a first-format meta gets its spec from the training config it stored
    (which is dropped) and keeps the fine-tuning task and seed as plain fields."""
    fmt = meta.get("format")
    if fmt == FORMAT:
        _check_spec(meta.get("model_spec", {}))
        return dict(meta)
    if fmt != FORMAT_V1:
        raise CheckpointError(f"{where}: unknown checkpoint format {fmt!r}; this version reads {FORMAT!r}")
    old = dict(meta)
    config = old.pop("config")
    kind = old["kind"]
    upgraded = {**old, "format": FORMAT, "model_spec": spec_from_config(kind, config, old.pop("num_outputs", None))}
    if kind == "finetune" and "task" in config:
        upgraded.setdefault("task", task_summary(config["task"]))
    if "seed" in config:
        upgraded.setdefault("seed", config["seed"])
    return upgraded


def task_summary(task: Mapping[str, Any]) -> dict[str, Any]:
    """What a fine-tuned checkpoint tells its users about its outputs (kind, count, class names)."""
    return _plain({k: task[k] for k in ("kind", "num_outputs", "class_names") if k in task})


def backbone_params(params: Any, kind: str) -> Any:
    """The neural Transformer inside a checkpoint's params: `student.backbone` of a pre-training model
    (ref. §6.2: only `student.` weights are kept), `backbone` of a fine-tuned one."""
    if kind == "pretrain":
        return params["student"]["backbone"]
    if kind == "finetune":
        return params["backbone"]
    raise CheckpointError(f"a {kind!r} checkpoint holds no neural Transformer backbone")


def require_kind(meta: Mapping[str, Any], path: Any, *kinds: str, purpose: str = "") -> None:
    """Raises a `CheckpointError` naming the path and the kinds accepted when `meta["kind"]` is not one."""
    if meta.get("kind") not in kinds:
        raise CheckpointError(
            f"{path} is a {meta.get('kind')!r} checkpoint; {purpose or 'this'} needs "
            f"{' or '.join(repr(k) for k in kinds)}"
        )
