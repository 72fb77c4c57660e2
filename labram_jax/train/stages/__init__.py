"""The stages `config.stage` names; each supplies its model, loss, evaluation and restores."""

from __future__ import annotations

import ml_collections

from labram_jax.config_errors import ConfigError
from labram_jax.train.stages.base import Stage
from labram_jax.train.stages.finetune import FinetuneStage
from labram_jax.train.stages.pretrain import PretrainStage
from labram_jax.train.stages.tokenizer import TokenizerStage

# The one list of stage names: the entry point and the dry run read it too ("pipeline" is the entry point's).
STAGES: dict[str, type[Stage]] = {
    "tokenizer": TokenizerStage,
    "pretrain": PretrainStage,
    "finetune": FinetuneStage,
    "evaluate": FinetuneStage,
}


def make_stage(config: ml_collections.ConfigDict) -> Stage:
    if config.stage not in STAGES:
        raise ConfigError(f"config.stage={config.stage!r} must be one of {', '.join(STAGES)}")
    stage = STAGES[config.stage]
    stage.validate(config)
    return stage.from_config(config)
