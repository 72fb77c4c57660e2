"""VQ-NSP neural tokenizer training (reference §4.8).

    python -m labram_jax.main --config=configs/tokenizer.py --workdir=runs/tokenizer
    python -m labram_jax.main --config=configs/tokenizer.py:reference ...   # the official quantiser

The default adds our remedies for codebook collapse (a continuous warm-up, dead-code restart; a deviation
measured in docs/codebook.md); `:reference` is the official quantiser, nothing added.
"""

from labram_jax.config_defaults import tokenizer_config


def get_config(quantizer: str = "remedies"):
    return tokenizer_config(quantizer)
