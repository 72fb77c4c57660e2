"""VQ-NSP neural tokenizer training (reference §4.8, paper Table 3).

    python -m labram_jax.main --config=configs/tokenizer.py --workdir=runs/tokenizer
    python -m labram_jax.main --config=configs/tokenizer.py:reference ...   # the official quantiser

Data: `eeg_corpus/w4s1` (4-s windows every 1 s of any EEG folder, `python -m tfds_builders.build
eeg_corpus --config=w4s1 --manual_dir=DIR`), 64 channels x 4 patches per example. Run time: the reference
trains 100 epochs at batch 1024 over its ~2,500 h corpus, a multi-GPU job; at batch 32 one step takes ~5 s
on a 2-core CPU (docs/codebook.md).

The default adds our remedies for codebook collapse (a continuous warm-up, dead-code restart and an entropy
penalty; a deviation measured in docs/codebook.md); `:reference` is the official quantiser, nothing added.
"""

import ml_collections

from configs import common


def get_config(quantizer: str = "remedies") -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.stage = "tokenizer"
    common.runtime(config)
    config.tokenizer = common.tokenizer_architecture(quantizer)
    # `lr` is the reference's base lr; as `run_vqnsp_training.py` it is rescaled by batch_size / 128
    # (`lr_batch_rescale`: 4e-4 at the reference's 1024).
    config.optim = common.adamw(
        batch_size=1024,
        lr=5e-5,
        lr_batch_rescale=True,
        min_lr=1e-5,
        epochs=100,
        warmup_epochs=10,
        b2=0.99,
        weight_decay=1e-4,
    )
    # The reference slides its 4-s tokenizer windows by 1 s (`eeg_corpus` config `w4s1`).
    config.data = common.data("eeg_corpus/w4s1", max_channels=64, max_patches=4)
    return config
