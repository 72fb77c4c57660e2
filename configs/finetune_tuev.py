"""Fine-tuning on TUEV with the reference recipe (§6.8). Base by default; the Large / Huge recipe (30 epochs,
layer decay 0.8, drop path 0.1 / 0.2) with `--config=configs/finetune_tuev.py:large` (or `:huge`)."""

from labram_jax.config_defaults import finetune_tuev_config


def get_config(size: str = "base"):
    return finetune_tuev_config(size)
