"""The demo main job: builds the synthetic demo datasets (two small labelled sets and an unlabelled corpus),
trains the tokenizer, pre-trains, fine-tunes each task from the pre-trained backbone and from random
initialisation, and prints one table of every stage (under 15 minutes on 2 CPU cores from an empty
data directory: 14 min 26 s in the slowest hour measured, docs/getting-started.md).

    python -m labram_jax.main --config=configs/demo.py --workdir=/tmp/labram-demo
    python -m labram_jax.main --config=configs/demo.py --workdir=/tmp/labram-demo --config.seeds=0,1,2

Each stage is one of the `configs/demo_*.py` files; the pipeline gives the pre-training stage the
tokenizer it trained and each fine-tuning the pre-trained backbone.
"""

import ml_collections

from configs import common, demo_finetune_tuab, demo_finetune_tuev, demo_pretrain, demo_tokenizer

STAGES = {
    "tokenizer": demo_tokenizer.get_config,
    "pretrain": demo_pretrain.get_config,
    "finetune_tuab": demo_finetune_tuab.get_config,
    "finetune_tuev": demo_finetune_tuev.get_config,
}


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.stage = "pipeline"
    config.data_dir = common.DEMO_DATA_DIR
    config.build_demo_data = True
    config.order = tuple(STAGES)
    # Each fine-tuning also runs from random initialisation (same budget and seeds): what pre-training buys.
    config.scratch_baselines = True
    # "0,1,2": every fine-tuning once per seed, reported as mean ± std ('' = each stage's own seed).
    config.seeds = ""
    config.stages = ml_collections.ConfigDict({name: make() for name, make in STAGES.items()})
    return config
