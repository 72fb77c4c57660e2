"""One stage of the demo (`configs/demo.py` runs them all): fine-tuning on the small labelled synthetic set
`demo/tuab`, the TUAB recipe (binary, 10-s windows) with the demo backbone. About a minute on
2 CPU cores.

    python -m labram_jax.main --config=configs/demo_finetune_tuab.py --workdir=/tmp/demo-tuab \
        --config.init_checkpoint=/tmp/demo-pretrain
"""

import ml_collections

from configs import common, finetune_tuab


def get_config() -> ml_collections.ConfigDict:
    config = finetune_tuab.get_config("base")
    config.data.train = "demo/tuab:train"
    config.data.validation = "demo/tuab:validation"
    config.data.test = "demo/tuab:test"
    config.model.update(common.DEMO_BACKBONE)
    config.model.drop_path_rate = 0.0
    # The labelled sets are small (a few steps per epoch): many short epochs, validated every other one.
    common.demo_runtime(config, batch_size=32, epochs=20, lr=1e-3)
    config.eval.every_epochs = 2
    config.data.max_patches = 10
    config.optim.layer_decay = 0.9
    return config
