"""Fine-tuning on your own labelled EEG (an `eeg_labelled` dataset): the task kind (binary / multi-class /
regression), the classes, the channel budget and the window length come from the dataset's metadata.

    python -m labram_jax.main --config=configs/finetune_custom.py --workdir=runs/mi \
        --config.dataset=eeg_labelled/events --config.init_checkpoint=checkpoints/labram-base \
        --config.data.data_dir=~/tensorflow_datasets [--config.seeds=0,1,2,3,4]

Argument `:<size>[,<mode>]`: size base / large / huge (the reference recipe of that size, batch 64: user
datasets are often a few thousand records, where the paper's 512 would leave a handful of steps per epoch);
mode `full` (default), `linear_probe` (fc_norm + head only) or `last<k>` (the last k blocks, fc_norm and
head), e.g. `--config=configs/finetune_custom.py:base,linear_probe`. Run time: minutes to an hour on one
GPU for a few thousand windows.
"""

import ml_collections

from configs import common

PARTIAL_MODES = {"full": -1, "linear_probe": 0}
"""Modes besides `last<k>` (the last k blocks and the head): the value of `trainable_blocks`."""


def get_config(arg: str = "base", dataset: str = "eeg_labelled/events") -> ml_collections.ConfigDict:
    size, _, mode = arg.partition(",")
    mode = mode or "full"
    if mode in PARTIAL_MODES:
        trainable = PARTIAL_MODES[mode]
    elif mode.startswith("last") and mode[4:].isdigit():
        trainable = int(mode[4:])
    else:
        raise ValueError(f"fine-tuning mode {mode!r} is not one of full, linear_probe, last<k> (e.g. last2)")
    # kind "auto", num_outputs / max_channels / max_patches -1: read from the dataset at run time
    # (`labram_jax.train.task_from_data`).
    config = common.finetune(
        size or "base", dataset=dataset, kind="auto", num_outputs=-1, max_channels=-1, max_patches=-1
    )
    config.task.label_smoothing = -1.0  # 0.1 if the dataset is multi-class, else 0
    # One name for the three splits (`--config.dataset=eeg_labelled/NAME`); data.train/validation/test
    # stay empty and are filled from it at run time, unless set explicitly.
    config.dataset = dataset
    config.data.train = config.data.validation = config.data.test = ""
    config.optim.batch_size = 64
    config.trainable_blocks = trainable
    return config
