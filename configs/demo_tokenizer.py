"""One stage of the demo (`configs/demo.py` runs them all): the tokenizer, demo-sized, on the unlabelled
synthetic corpus `demo/corpus` (built by `configs/demo.py`, or `python -m tfds_builders.build demo
--config=corpus`). About 2 minutes on 2 CPU cores.

    python -m labram_jax.main --config=configs/demo_tokenizer.py --workdir=/tmp/demo-tokenizer

`configs/demo_tokenizer.py:reference` trains it with the official quantiser (no collapse remedies). Any
folder of your own EEG works too: `--config.data.data_dir=... --config.data.train=eeg_corpus/w4s1 ...`
(docs/codebook.md).
"""

import ml_collections

from configs import common, tokenizer


def get_config(quantizer: str = "remedies") -> ml_collections.ConfigDict:
    config = tokenizer.get_config(quantizer)
    config.tokenizer.update(common.DEMO_TOKENIZER)
    config.data.train = common.DEMO_CORPUS
    config.data.validation = common.DEMO_CORPUS_VALIDATION
    config.optim.lr_batch_rescale = False
    # The codes start carrying information ~60 steps after quantisation starts (docs/codebook.md).
    common.demo_runtime(config, batch_size=32, epochs=8, lr=1e-3)
    config.optim.min_lr = 1e-4
    return config
