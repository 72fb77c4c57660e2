"""Architecture defaults: the neural Transformer of each size and the official VQ-NSP tokenizer.

Everything about a run (data, schedule, cadences, the paper's recipes, the demo) lives in the config files
of `configs/`, built from `configs/common.py`; `docs/configuration.md` documents every field. A checkpoint
stores the architecture it was built with (`labram_jax.checkpoints.model_spec`), so these defaults matter
only for new models.
"""

from __future__ import annotations

import ml_collections

from labram_jax.models.spec import SIZES


def model_config(size: str = "base") -> ml_collections.ConfigDict:
    """`config.model`. `width` / `depth` / `num_heads` (0 = the size's) shrink a model for demos and tests."""
    if size not in SIZES:
        raise ValueError(f"unknown model size {size!r}; choose one of {sorted(SIZES)}")
    return ml_collections.ConfigDict(
        dict(
            size=size,
            width=0,
            depth=0,
            num_heads=0,
            layer_scale_init=SIZES[size]["layer_scale_init"],
            drop_rate=0.0,
            attn_drop_rate=0.0,
            drop_path_rate=0.0,
            max_patches=16,
            head_init_scale=0.001,
            dtype="float32",
            remat=False,
        )
    )


def tokenizer_model_config() -> ml_collections.ConfigDict:
    """`config.tokenizer` of the tokenizer stage: the official VQ-NSP (`vqnsp_encoder_base_decoder_3x200x12`)."""
    return ml_collections.ConfigDict(
        dict(
            width=200,
            num_heads=10,
            encoder_depth=12,
            decoder_depth=3,
            num_codes=8192,
            code_dim=64,
            ema_decay=0.99,
            beta=1.0,
            kmeans_init=True,
            # Codebook-collapse remedies (ours, docs/codebook.md), all off here: the reference quantiser.
            restart_threshold=0.0,
            restart_decay=0.99,
            entropy_weight=0.0,
            entropy_temperature=0.1,
            continuous_steps=0,
            mean_target_offset=False,
            max_patches=16,
            dtype="float32",
            remat=False,
        )
    )


# Our remedies for codebook collapse (docs/codebook.md): a continuous warm-up over the optimiser's warm-up,
# then dead-code restart and the entropy penalty; the Fourier heads start from the mean targets. The
# reference tokenizer has none (REFERENCE_QUANTIZER).
QUANTIZER_REMEDIES = dict(
    continuous_steps=-1,
    restart_threshold=0.1,
    restart_decay=0.9,
    entropy_weight=0.1,
    entropy_temperature=0.1,
    mean_target_offset=True,
)
REFERENCE_QUANTIZER = dict(continuous_steps=0, restart_threshold=0.0, entropy_weight=0.0, mean_target_offset=False)
