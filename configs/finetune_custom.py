"""Fine-tuning on your own labelled EEG (an `eeg_labelled` dataset): the task kind (binary / multi-class /
regression), the classes, the channel budget and the window length come from the dataset's metadata.

    python -m labram_jax.main --config=configs/finetune_custom.py --workdir=runs/mi \
        --config.dataset=eeg_labelled/events --config.init_checkpoint=checkpoints/labram-base \
        --config.data.data_dir=~/tensorflow_datasets [--config.seeds=0,1,2,3,4]

Argument `:<size>[,<mode>]`: size base / large / huge (the reference recipe of that size, batch 64);
mode `full` (default), `linear_probe` (fc_norm + head only) or `last<k>` (the last k blocks, fc_norm and
head), e.g. `--config=configs/finetune_custom.py:base,linear_probe`.
"""

from labram_jax.config_defaults import finetune_custom_config


def get_config(arg: str = "base"):
    size, _, mode = arg.partition(",")
    return finetune_custom_config(size or "base", mode or "full")
