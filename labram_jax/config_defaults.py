"""Default configs of every stage, with the reference's hyper-parameters; `configs/*.py` select from them.

Field reference (all ml_collections; override any on the command line with `--config.a.b=value`):
* `stage`: tokenizer | pretrain | finetune | evaluate.
* `model`: the neural Transformer: `size` (base/large/huge), `layer_scale_init` (paper Table 4 per size),
  `drop_path_rate`, `max_patches` (rows of the temporal embedding; 16 in the official weights), `dtype`
  (compute dtype; parameters stay float32), `remat`.
* `tokenizer`: VQ-NSP: encoder/decoder depth, `num_codes` x `code_dim` codebook, EMA `ema_decay`,
  commitment `beta`, `kmeans_init`, and `checkpoint` (a trained tokenizer, needed by `pretrain`).
* `optim`: AdamW and the warm-up + cosine schedule, per-step as `utils.cosine_scheduler`.
* `data`: window length and stride in samples at 200 Hz, and the masking ratio.
"""

from __future__ import annotations

import ml_collections

from labram_jax.models.spec import SIZES


def model_config(size: str = "base") -> ml_collections.ConfigDict:
    if size not in SIZES:
        raise ValueError(f"unknown model size {size!r}; choose one of {sorted(SIZES)}")
    return ml_collections.ConfigDict(dict(
        size=size,
        layer_scale_init=SIZES[size]["layer_scale_init"],
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.0,
        max_patches=16,
        head_init_scale=0.001,
        dtype="float32",
        remat=False,
    ))


def tokenizer_model_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        encoder_depth=12,
        decoder_depth=3,
        num_codes=8192,
        code_dim=64,
        ema_decay=0.99,
        beta=1.0,
        kmeans_init=True,
        max_patches=16,
        dtype="float32",
        remat=False,
        checkpoint="",
    ))


def pretrain_config(size: str = "base") -> ml_collections.ConfigDict:
    """Masked EEG modeling (ref. §5.5: the README command / paper Table 4)."""
    config = ml_collections.ConfigDict()
    config.stage = "pretrain"
    config.seed = 0
    config.model = model_config(size)
    config.tokenizer = tokenizer_model_config()
    config.optim = ml_collections.ConfigDict(dict(
        batch_size=512, lr=5e-4, min_lr=1e-5, warmup_epochs=5, epochs=50, b1=0.9, b2=0.98, eps=1e-8,
        weight_decay=0.05, clip_grad_norm=3.0, grad_accum_steps=1))
    config.data = ml_collections.ConfigDict(dict(
        window_samples=1600, stride_samples=800, mask_ratio=0.5))
    return config


def tokenizer_config() -> ml_collections.ConfigDict:
    """VQ-NSP training (ref. §4.8: the README command / paper Table 3).

    `optim.lr` is the reference's base lr; as `run_vqnsp_training.py` the trainer rescales it by
    `batch_size / 128` (4e-4 at the reference's 1024).
    """
    config = ml_collections.ConfigDict()
    config.stage = "tokenizer"
    config.seed = 0
    config.tokenizer = tokenizer_model_config()
    config.optim = ml_collections.ConfigDict(dict(
        batch_size=1024, lr=5e-5, lr_batch_rescale=True, min_lr=1e-5, warmup_epochs=10, epochs=100, b1=0.9,
        b2=0.99, eps=1e-8, weight_decay=1e-4, clip_grad_norm=0.0, grad_accum_steps=1))
    config.data = ml_collections.ConfigDict(dict(window_samples=800, stride_samples=200))
    return config
