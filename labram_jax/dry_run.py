"""`--dry_run`: build every model a config needs abstractly (no allocation) and print their sizes."""

from __future__ import annotations

import os

import ml_collections

from labram_jax import checkpoints, config_defaults
from labram_jax.config_errors import ConfigError
from labram_jax.models import factory
from labram_jax.models.official_names import OFFICIAL_PARAM_COUNTS
from labram_jax.models.vqnsp import VQNSP
from labram_jax.train import task_from_data

FINETUNE_SUMMARY_CLASSES = 6
"""Head size of the fine-tuning model summarised for a pre-training config (TUEV's 6 classes, as the
official parameter count of the fine-tuning models)."""


def pretrain_tokenizer(config: ml_collections.ConfigDict, tokenizer: ml_collections.ConfigDict | None = None):
    """`(module, where its architecture comes from)` of the frozen tokenizer of a pre-training config: its
    checkpoint when `config.tokenizer.checkpoint` exists, else `tokenizer` (the architecture a pipeline's
    tokenizer stage trains), else the official VQ-NSP."""
    path = config.tokenizer.checkpoint
    if path and os.path.exists(os.path.expanduser(path)):
        return checkpoints.build_model(checkpoints.read_meta(path)), f"checkpoint {path}"
    if tokenizer is not None:
        return factory.tokenizer_model(
            ml_collections.ConfigDict({"tokenizer": tokenizer})
        ), "the pipeline's tokenizer stage"
    default = ml_collections.ConfigDict({"tokenizer": config_defaults.tokenizer_model_config()})
    return factory.tokenizer_model(default), "the official VQ-NSP; --config.tokenizer.checkpoint=DIR sizes yours"


def models_of(config: ml_collections.ConfigDict, frozen: VQNSP | None = None) -> list[tuple[str, str | None, object]]:
    """(description, official model name or None, module) of every model the config's stage uses; `frozen`:
    a pre-training stage's tokenizer (default: `pretrain_tokenizer(config)`)."""
    stage = config.stage
    if stage == "tokenizer":
        return [("VQ-NSP tokenizer", "vqnsp_encoder_base_decoder_3x200x12", factory.tokenizer_model(config))]
    size = config.model.size
    if stage == "pretrain":
        frozen = frozen if frozen is not None else pretrain_tokenizer(config)[0]
        return [
            (
                "masked EEG model (student + lm_head)",
                f"labram_{size}_patch200_1600_8k_vocab",
                factory.pretrain_model(config, frozen.quantizer_spec.num_codes),
            ),
            ("VQ-NSP tokenizer (frozen targets)", "vqnsp_encoder_base_decoder_3x200x12", frozen),
            (
                f"fine-tuning model, {FINETUNE_SUMMARY_CLASSES}-class head",
                f"labram_{size}_patch200_200",
                factory.classifier_model(config, FINETUNE_SUMMARY_CLASSES),
            ),
        ]
    if stage in ("finetune", "evaluate"):
        outputs = config.task.num_outputs
        if outputs == task_from_data.NUM_OUTPUTS_AUTO:
            try:  # the head size is the dataset's; without the dataset, count a one-output head
                outputs = task_from_data.resolve(config).task.num_outputs
            except ConfigError:
                return [
                    (
                        "fine-tuning model, head sized by the dataset (1 shown)",
                        None,
                        factory.classifier_model(config, 1),
                    )
                ]
        official = f"labram_{size}_patch200_200" if outputs == FINETUNE_SUMMARY_CLASSES else None
        return [(f"fine-tuning model, {outputs}-output head", official, factory.classifier_model(config, outputs))]
    from labram_jax.train.stages import STAGES

    raise ValueError(f"config field stage={stage!r} is not one of {' | '.join(STAGES)}")


TOKENIZER_SHAPE = ("width", "num_heads", "encoder_depth", "decoder_depth", "num_codes", "code_dim")


def _tokenizer_shape(tokenizer: VQNSP) -> tuple[int, ...]:
    e, d, q = tokenizer.encoder_spec, tokenizer.decoder_spec, tokenizer.quantizer_spec
    return (e.width, e.num_heads, e.depth, d.depth, q.num_codes, q.code_dim)


def _resized(config: ml_collections.ConfigDict, models: list[tuple[str, str | None, object]]) -> bool:
    """True when the config shrinks or grows a model away from the official shapes (demos, tests)."""
    official = config_defaults.tokenizer_model_config()
    tokenizers = [m for _, _, m in models if isinstance(m, VQNSP)]
    changed_tok = any(_tokenizer_shape(t) != tuple(official[k] for k in TOKENIZER_SHAPE) for t in tokenizers)
    return ("model" in config and any(config.model[k] for k in ("width", "depth", "num_heads"))) or changed_tok


def summarize(config: ml_collections.ConfigDict, tokenizer: ml_collections.ConfigDict | None = None) -> str:
    """The dry-run report: one line per model with its parameter count in digits. In a pipeline, a
    pre-training stage is sized with the tokenizer its tokenizer stage trains."""
    if config.stage == "pipeline":
        lines, trained = [], None
        for name in config.order:
            stage = config.stages[name]
            lines.append(f"[{name}] " + summarize(stage, trained))
            if stage.stage == "tokenizer":
                trained = stage.tokenizer
        return "\n".join(lines)
    lines = [f"stage: {config.stage}" + (f", model size: {config.model.size}" if "model" in config else "")]
    frozen, source = pretrain_tokenizer(config, tokenizer) if config.stage == "pretrain" else (None, "")
    models = models_of(config, frozen)
    resized = _resized(config, models)
    for description, official, model in models:
        count = factory.param_count(factory.abstract_variables(model))
        line = f"  {description:<44} {count:>14,} parameters"
        if official in OFFICIAL_PARAM_COUNTS and not resized:
            expected = OFFICIAL_PARAM_COUNTS[official]
            verdict = "matches" if count == expected else f"DIFFERS from {expected:,} of"
            line += f"  ({verdict} official {official})"
        lines.append(line)
    if config.stage == "pretrain":
        lines.append(f"  (the tokenizer's architecture: {source})")
    return "\n".join(lines)
