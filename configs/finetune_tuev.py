"""Fine-tuning on TUEV event classification with the reference recipe (§6.3, §6.8, §7.5): 6 classes, label
smoothing 0.1, 23 channels x 5 s, model selected on validation Cohen's kappa.

    python -m labram_jax.main --config=configs/finetune_tuev.py --workdir=runs/tuev \
        --config.init_checkpoint=runs/base --config.data.data_dir=~/tensorflow_datasets

Data: `tuev/default` (`python -m tfds_builders.build tuev --manual_dir=<TUEV edf/>`). Base by default; the
Large / Huge recipe (30 epochs, layer decay 0.8, drop path 0.1 / 0.2) with `configs/finetune_tuev.py:large`
(or `:huge`). Run time: the reference's 50 epochs over TUEV's training events, hours on one GPU (step
times per model size in docs/performance.md).
"""

import ml_collections

from configs import common

TUEV_CLASSES = ("spsw", "gped", "pled", "eyem", "artf", "bckg")


def get_config(size: str = "base") -> ml_collections.ConfigDict:
    return common.finetune(
        size,
        dataset="tuev/default",
        kind="multiclass",
        num_outputs=6,
        class_names=TUEV_CLASSES,
        max_channels=23,
        max_patches=5,
    )
