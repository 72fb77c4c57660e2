"""LaBraM-Giant (ours, ~1.0B parameters): masked EEG pre-training with the recipe of `configs/base.py` and a
width-1600, 32-block, 25-head (head dimension 64) neural Transformer, set up for a TPU slice or GPU
cluster: parameters and optimiser state sharded over every device (fsdp), bf16 activations and matmuls,
activations recomputed in the backward pass. No official LaBraM is this large; LaBraM-at-Scale trained
EEG encoders up to 2B parameters.

    python -m labram_jax.plan --config=configs/giant.py --topology=v5p-8     # fits? before renting it
    python -m labram_jax.main --config=configs/giant.py --workdir=gs-or-local/giant \
        --config.tokenizer.checkpoint=runs/tokenizer

What it fits on, per device, with compile times: docs/scale-out.md ("Meshes that fit").
"""

from configs import base


def get_config():
    config = base.get_config("giant")
    config.mesh.data, config.mesh.fsdp = 1, -1
    config.model.dtype = "bfloat16"
    config.model.remat = True
    return config
