"""One stage of the demo (`configs/demo.py` runs them all): masked EEG modeling with a demo-sized backbone
on the synthetic corpus, against the codes of a demo tokenizer. 3 to 5 minutes on 2 CPU cores.

    python -m labram_jax.main --config=configs/demo_pretrain.py --workdir=/tmp/demo-pretrain \
        --config.tokenizer.checkpoint=/tmp/demo-tokenizer
"""

import ml_collections

from configs import base, common


def get_config() -> ml_collections.ConfigDict:
    config = base.get_config("base")
    config.model.update(common.DEMO_BACKBONE)
    config.data.train = common.DEMO_CORPUS
    config.data.validation = common.DEMO_CORPUS_VALIDATION
    # 8 epochs = 160 steps: in a 240-step run validation masked-token accuracy peaked at step 160
    # (docs/codebook.md); the shorter budget keeps the whole demo under 15 minutes on 2 cores.
    common.demo_runtime(config, batch_size=32, epochs=8, lr=1e-3)
    config.eval.every_epochs = 4
    return config
