"""`--dry_run`: build every model a config needs abstractly (no allocation) and print their sizes."""

from __future__ import annotations

import ml_collections

from labram_jax import config_defaults
from labram_jax.config_errors import ConfigError
from labram_jax.models import factory
from labram_jax.models.official_names import OFFICIAL_PARAM_COUNTS
from labram_jax.train import task_from_data

FINETUNE_SUMMARY_CLASSES = 6
"""Head size of the fine-tuning model summarised for a pre-training config (TUEV's 6 classes, as the
official parameter count of the fine-tuning models)."""


def models_of(config: ml_collections.ConfigDict) -> list[tuple[str, str | None, object]]:
    """(description, official model name or None, module) of every model the config's stage uses."""
    stage = config.stage
    if stage == "tokenizer":
        return [("VQ-NSP tokenizer", "vqnsp_encoder_base_decoder_3x200x12", factory.tokenizer_model(config))]
    size = config.model.size
    if stage == "pretrain":
        return [
            (
                "masked EEG model (student + lm_head)",
                f"labram_{size}_patch200_1600_8k_vocab",
                factory.pretrain_model(config),
            ),
            (
                "VQ-NSP tokenizer (frozen targets)",
                "vqnsp_encoder_base_decoder_3x200x12",
                factory.tokenizer_model(config),
            ),
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
    raise ValueError(f"config field stage={stage!r} is not one of tokenizer | pretrain | finetune | evaluate")


def _resized(config: ml_collections.ConfigDict) -> bool:
    """True when the config shrinks or grows a model away from the official shapes (demos, tests)."""
    model = config.get("model", {})
    tok = config.get("tokenizer", {})
    defaults = config_defaults.tokenizer_model_config()
    changed_tok = any(
        tok.get(k, defaults[k]) != defaults[k]
        for k in ("width", "num_heads", "encoder_depth", "decoder_depth", "num_codes", "code_dim")
    )
    return any(model.get(k, 0) for k in ("width", "depth", "num_heads")) or changed_tok


def summarize(config: ml_collections.ConfigDict) -> str:
    """The dry-run report: one line per model with its parameter count in digits."""
    if config.stage == "pipeline":
        return "\n".join(f"[{name}] " + summarize(config.stages[name]) for name in config.order)
    lines = [f"stage: {config.stage}" + (f", model size: {config.model.size}" if "model" in config else "")]
    for description, official, model in models_of(config):
        count = factory.param_count(factory.abstract_variables(model))
        line = f"  {description:<44} {count:>14,} parameters"
        if official is not None and not _resized(config):
            expected = OFFICIAL_PARAM_COUNTS[official]
            verdict = "matches" if count == expected else f"DIFFERS from {expected:,} of"
            line += f"  ({verdict} official {official})"
        lines.append(line)
    return "\n".join(lines)
