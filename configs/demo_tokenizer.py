"""One stage of the demo (`configs/demo.py` runs them all): tokenizer on the synthetic demo datasets.

`configs/demo_tokenizer.py:reference` trains it with the official quantiser (no collapse remedies).
"""

from labram_jax.config_defaults import demo_config


def get_config(quantizer: str = "remedies"):
    return demo_config("tokenizer", quantizer)
