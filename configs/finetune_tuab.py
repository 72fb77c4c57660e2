"""Fine-tuning on TUAB with the reference recipe (§6.8). Base by default; the Large / Huge recipe (30 epochs,
layer decay 0.8, drop path 0.1 / 0.2) with `--config=configs/finetune_tuab.py:large` (or `:huge`)."""

from labram_jax.config_defaults import finetune_tuab_config


def get_config(size: str = "base"):
    return finetune_tuab_config(size)
