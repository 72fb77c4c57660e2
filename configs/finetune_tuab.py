"""Fine-tuning on TUAB abnormal detection with the reference recipe (§6.3, §6.8, §7.4): binary (BCE on one
logit), 23 channels x 10 s, model selected on validation AUROC.

    python -m labram_jax.main --config=configs/finetune_tuab.py --workdir=runs/tuab \
        --config.init_checkpoint=runs/base --config.data.data_dir=~/tensorflow_datasets

Data: `tuab/default` (`python -m tfds_builders.build tuab --manual_dir=<TUAB edf/>`). Base by default; the
Large / Huge recipe (30 epochs, layer decay 0.8, drop path 0.1 / 0.2) with `configs/finetune_tuab.py:large`
(or `:huge`). Run time: the reference's 50 epochs over TUAB's training set, hours on one GPU (step
times per model size in docs/performance.md).
"""

import ml_collections

from configs import common


def get_config(size: str = "base") -> ml_collections.ConfigDict:
    return common.finetune(
        size,
        dataset="tuab/default",
        kind="binary",
        num_outputs=1,
        class_names=("normal", "abnormal"),
        max_channels=23,
        max_patches=10,
    )
