"""One stage of the demo (`configs/demo.py` runs them all): fine-tuning on the small labelled synthetic set
`demo/tuev`, the TUEV recipe (6 classes, 5-s events) with the demo backbone. About a minute on
2 CPU cores.

    python -m labram_jax.main --config=configs/demo_finetune_tuev.py --workdir=/tmp/demo-tuev \
        --config.init_checkpoint=/tmp/demo-pretrain
"""

import ml_collections

from configs import common, finetune_tuev


def get_config() -> ml_collections.ConfigDict:
    return common.demo_finetune(finetune_tuev.get_config("base"), "tuev")
