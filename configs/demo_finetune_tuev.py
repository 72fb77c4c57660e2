"""One stage of the demo (`configs/demo.py` runs them all): finetune tuev on the synthetic demo datasets."""

from labram_jax.config_defaults import demo_config


def get_config():
    return demo_config("finetune_tuev")
