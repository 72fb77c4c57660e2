"""VQ-NSP neural tokenizer training (reference §4.8)."""

from labram_jax.config_defaults import tokenizer_config


def get_config():
    return tokenizer_config()
