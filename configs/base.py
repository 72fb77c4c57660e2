"""LaBraM-Base masked EEG pre-training (reference §5.5; layer-scale init from the paper's Table 4).

    python -m labram_jax.main --config=configs/base.py --workdir=runs/base \
        --config.tokenizer.checkpoint=runs/tokenizer

Data: `eeg_corpus/w4` (4-s windows of any EEG folder), 64 channels x 4 patches (the paper's 256-token
cap). The targets are the codes of the tokenizer checkpoint `config.tokenizer.checkpoint` (trained with
`configs/tokenizer.py` or converted from the official vqnsp.pth), whose architecture comes from that
checkpoint. Run time: the reference trains 50 epochs at batch 512 over its ~2,500 h corpus, a multi-GPU
job (step times and memory per size in docs/performance.md).
`configs/large.py` and `configs/huge.py` are this recipe with the larger models.
"""

import ml_collections

from configs import common
from labram_jax import config_defaults


def get_config(size: str = "base") -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.stage = "pretrain"
    common.runtime(config)
    config.model = config_defaults.model_config(size)
    config.tokenizer = ml_collections.ConfigDict(dict(checkpoint=""))
    config.optim = common.adamw(
        batch_size=512,
        lr=5e-4,
        min_lr=1e-5,
        epochs=50,
        warmup_epochs=5,
        b2=0.98,
        weight_decay=0.05,
        clip_grad_norm=3.0,
    )
    # The paper caps sequences at 256 tokens (4 s x 64 channels); every example is padded to this budget.
    config.data = common.data("eeg_corpus/w4", max_channels=64, max_patches=4, mask_ratio=0.5)
    return config
