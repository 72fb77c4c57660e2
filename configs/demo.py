"""The demo main job: builds the synthetic demo datasets, trains the tokenizer, pre-trains, fine-tunes and
evaluates on both demo tasks, and prints a results table (about 6 minutes on 2 CPU cores).

    python -m labram_jax.main --config=configs/demo.py --workdir=/tmp/labram-demo
"""

from labram_jax.config_defaults import demo_pipeline_config


def get_config():
    return demo_pipeline_config()
