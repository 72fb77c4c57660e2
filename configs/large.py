"""LaBraM-Large masked EEG pre-training: the recipe of `configs/base.py` (data, schedule, tokenizer checkpoint)
with the Large model (reference §5.5; layer-scale init from the paper's Table 4).

    python -m labram_jax.main --config=configs/large.py --workdir=runs/large \
        --config.tokenizer.checkpoint=runs/tokenizer
    python -m labram_jax.main --config=configs/large.py --dry_run   # parameter counts, nothing allocated
"""

from configs import base


def get_config():
    return base.get_config("large")
