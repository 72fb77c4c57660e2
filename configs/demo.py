"""The demo main job: builds the synthetic demo datasets (two small labelled sets and an unlabelled corpus),
trains the tokenizer, pre-trains, fine-tunes each task from the pre-trained backbone and from random
initialisation, and prints one table of every stage (about 11 minutes on 2 CPU cores).

    python -m labram_jax.main --config=configs/demo.py --workdir=/tmp/labram-demo
    python -m labram_jax.main --config=configs/demo.py --workdir=/tmp/labram-demo --config.seeds=0,1,2
"""

from labram_jax.config_defaults import demo_pipeline_config


def get_config():
    return demo_pipeline_config()
