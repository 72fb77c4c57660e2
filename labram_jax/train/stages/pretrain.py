"""Masked EEG modeling (ref. §5): symmetric masking, the frozen tokenizer's codes as targets."""

from __future__ import annotations

import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from labram_jax import checkpoints, layout
from labram_jax.checkpoints import restore_on_mesh
from labram_jax.config_errors import ConfigError
from labram_jax.models import factory
from labram_jax.models.vqnsp import VQNSP
from labram_jax.ops import argext
from labram_jax.ops.losses import majority_hits, mem_loss
from labram_jax.ops.masking import random_masking, symmetric_complement
from labram_jax.ops.quantize import code_counts
from labram_jax.train.evaluation import codebook_stats
from labram_jax.train.stages import validation
from labram_jax.train.stages.base import Stage, eval_inputs, model_inputs

EVAL_MASK_SEED = 1234
"""Evaluation masks are drawn from a fixed key: the same tokens are hidden at every evaluation."""


class PretrainStage(Stage):
    """Masked EEG modeling against the codes of `tokenizer`, a frozen VQ-NSP module whose variables the
    loop passes to every step as `frozen` (`load_frozen`). `from_config` builds it from the checkpoint
    `config.tokenizer.checkpoint` names."""

    kind = "pretrain"

    def __init__(self, config, tokenizer: VQNSP):
        self.tokenizer = tokenizer  # before the model: its vocabulary is the tokenizer's codebook
        super().__init__(config)

    @classmethod
    def validate(cls, config) -> None:
        super().validate(config)
        validation.validate_transformer(config)
        validation.validate_frozen_tokenizer(config)

    @classmethod
    def from_config(cls, config) -> PretrainStage:
        where = tokenizer_checkpoint(config)
        return cls(config, checkpoints.build_model(where.meta))

    def build_model(self):
        return factory.pretrain_model(self.config, self.tokenizer.quantizer_spec.num_codes)

    def load_frozen(self, mesh, rules) -> Any:
        variables, _, _ = restore_on_mesh(self.config.tokenizer.checkpoint, mesh, rules)
        return variables

    def _targets(self, frozen, inputs) -> jax.Array:
        codes = self.tokenizer.apply(frozen, *inputs, method=self.tokenizer.get_codebook_indices)
        return jax.lax.stop_gradient(codes)

    def _forward(self, params, inputs, masked, deterministic, rngs=None):
        return self.model.apply({"params": params}, *inputs, masked, deterministic=deterministic, rngs=rngs)

    def loss_fn(self, params, extra, batch, rng, frozen):
        mask_rng, dropout_rng = jax.random.split(rng)
        inputs = model_inputs(batch)
        valid = layout.token_mask(inputs[2], inputs[3])
        masked = random_masking(mask_rng, valid, self.config.data.mask_ratio)
        logits = self._forward(params, inputs, masked, False, {"dropout": dropout_rng})
        loss, metrics = mem_loss(logits, self._targets(frozen, inputs), masked, symmetric_complement(masked, valid))
        return loss, (metrics, extra)

    def eval_fn(self, params, extra, batch, frozen):
        inputs = eval_inputs(batch)
        valid = layout.token_mask(inputs[2], inputs[3])
        masked = random_masking(jax.random.PRNGKey(EVAL_MASK_SEED), valid, self.config.data.mask_ratio)
        visible = symmetric_complement(masked, valid)
        logits = self._forward(params, inputs, masked, True)
        labels = self._targets(frozen, inputs)
        hit = (argext.argmax(logits) == labels).astype(jnp.float32)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)
        f = lambda m: m.astype(jnp.float32)
        vocab = logits.shape[-1]
        sums = {
            "hits_masked": jnp.sum(hit * f(masked)),
            "hits_visible": jnp.sum(hit * f(visible)),
            "ce_masked": jnp.sum(ce * f(masked)),
            "ce_visible": jnp.sum(ce * f(visible)),
            "n_masked": jnp.sum(f(masked)),
            "n_visible": jnp.sum(f(visible)),
            "majority_masked": majority_hits(labels, masked, vocab),
            "majority_visible": majority_hits(labels, visible, vocab),
            "target_counts": code_counts(labels.reshape(-1), f(valid).reshape(-1), vocab),
        }
        return {}, sums

    def summarize(self, per_example, sums):
        """Masked-token accuracy of both passes beside `majority_acc`, the accuracy of always predicting each
        batch's most frequent code, and the perplexity of the targets: a tokenizer that gives every token the
        same code makes `mlm_acc` 1.0 and `majority_acc` 1.0 too. `marginal_loss` is the loss of predicting
        every token with the split's code frequencies (twice their entropy, one term per pass): `loss` below
        it is what the model learned from the context."""
        nm, nv = max(float(sums["n_masked"]), 1.0), max(float(sums["n_visible"]), 1.0)
        targets = codebook_stats(np.asarray(sums["target_counts"]))
        return {
            "mlm_acc": float(sums["hits_masked"]) / nm,
            "mlm_acc_sym": float(sums["hits_visible"]) / nv,
            "majority_acc": float(sums["majority_masked"]) / nm,
            "majority_acc_sym": float(sums["majority_visible"]) / nv,
            "target_perplexity": targets["perplexity"],
            "target_codes": targets["used_codes"],
            "marginal_loss": 2.0 * math.log(targets["perplexity"]),
            "loss": float(sums["ce_masked"]) / nm + float(sums["ce_visible"]) / nv,
        }

    def monitor(self):
        return ("loss", "min")


def tokenizer_checkpoint(config) -> checkpoints.Located:
    """The tokenizer checkpoint pre-training needs, checked before anything compiles."""
    path = config.tokenizer.checkpoint
    how = (
        "train one with `python -m labram_jax.main --config=configs/tokenizer.py --workdir=DIR` (or "
        "convert the official vqnsp.pth with `python -m labram_jax.convert`) and pass "
        "--config.tokenizer.checkpoint=DIR"
    )
    if not path:
        raise ConfigError(
            f"config.tokenizer.checkpoint is empty: pre-training predicts the codes of a trained tokenizer; {how}"
        )
    if not os.path.exists(os.path.expanduser(path)):
        raise ConfigError(f"config.tokenizer.checkpoint={path!r} does not exist; {how}")
    where = checkpoints.locate(path)
    checkpoints.require_kind(where.meta, path, "tokenizer", purpose="config.tokenizer.checkpoint")
    return where
