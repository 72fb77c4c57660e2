"""One stage of the demo (`configs/demo.py` runs them all): fine-tuning on the small labelled synthetic set
`demo/tuab`, the TUAB recipe (binary, 10-s windows) with the demo backbone. About a minute on
2 CPU cores.

    python -m labram_jax.main --config=configs/demo_finetune_tuab.py --workdir=/tmp/demo-tuab \
        --config.init_checkpoint=/tmp/demo-pretrain
"""

import ml_collections

from configs import common, finetune_tuab


def get_config() -> ml_collections.ConfigDict:
    return common.demo_finetune(finetune_tuab.get_config("base"), "tuab")
