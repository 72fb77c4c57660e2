"""LaBraM-Base masked EEG pre-training (reference §5.5; layer-scale init from the paper's Table 4)."""

from labram_jax.config_defaults import pretrain_config


def get_config():
    return pretrain_config("base")
