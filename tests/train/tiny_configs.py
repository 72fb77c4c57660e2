"""Tiny versions of the demo stage configs: the real loop and data, models small enough for 2 CPU cores."""

from __future__ import annotations

import ml_collections

from configs import demo

TINY_BACKBONE = dict(width=100, depth=1, num_heads=4)
# The collapse remedies are on and fast (one continuous step, restarts from the third step on), so every
# kind of quantiser state goes through the resume, multi-device and multi-process tests.
TINY_TOKENIZER = dict(
    width=100,
    num_heads=4,
    encoder_depth=1,
    decoder_depth=1,
    num_codes=16,
    code_dim=8,
    continuous_steps=1,
    restart_threshold=0.9,
    restart_decay=0.5,
)


def tiny_config(stage: str, data_dir: str, steps: int = 6, batch_size: int = 8) -> ml_collections.ConfigDict:
    """`stage` is a demo stage name (tokenizer, pretrain, finetune_tuab, finetune_tuev)."""
    config = demo.STAGES[stage]()
    config.data.data_dir = data_dir
    if "model" in config:
        config.model.update(TINY_BACKBONE)
    if stage == "tokenizer":  # pre-training takes its tokenizer's architecture from the checkpoint
        config.tokenizer.update(TINY_TOKENIZER)
    if stage in ("tokenizer", "pretrain"):
        config.data.train = "demo/tuab:train"
        config.data.validation = ""
    config.optim.batch_size = batch_size
    config.optim.epochs = 1
    config.optim.warmup_epochs = 0
    config.optim.warmup_steps = 1
    config.max_steps = steps
    config.log.every_steps = 1
    config.log.progress = False
    config.checkpoint.every_steps = steps
    config.eval.every_epochs = 0
    return config
