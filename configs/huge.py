"""LaBraM-Huge masked EEG pre-training: the recipe of `configs/base.py` (data, schedule, tokenizer checkpoint)
with the Huge model (reference §5.5; layer-scale init from the paper's Table 4).

    python -m labram_jax.main --config=configs/huge.py --workdir=runs/huge \
        --config.tokenizer.checkpoint=runs/tokenizer
    python -m labram_jax.main --config=configs/huge.py --dry_run   # parameter counts, nothing allocated
"""

from configs import base


def get_config():
    return base.get_config("huge")
