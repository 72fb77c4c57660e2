"""VQ-NSP training (ref. §4.8): Fourier reconstruction + commitment, EMA codebook, k-means init."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from labram_jax import layout
from labram_jax.models import factory
from labram_jax.models.quantizer import COLLECTION
from labram_jax.ops.quantize import code_counts
from labram_jax.train.evaluation import codebook_stats
from labram_jax.train.stages.base import Stage, eval_inputs, model_inputs

LOSSES = ("quant_loss", "rec_loss", "rec_angle_loss", "total_loss")


class TokenizerStage(Stage):
    kind = "tokenizer"

    def build_model(self):
        return factory.tokenizer_model(self.config)

    def loss_fn(self, params, extra, batch, rng, frozen):
        kmeans_rng, dropout_rng = jax.random.split(rng)
        (loss, metrics), updated = self.model.apply(
            {"params": params, **extra}, *model_inputs(batch), train=True,
            rngs={"kmeans": kmeans_rng, "dropout": dropout_rng}, mutable=[COLLECTION])
        metrics = {k: metrics[k] for k in LOSSES}
        # The reference logs unused codes of the usage buffer (an EMA of code counts) every epoch.
        metrics["unused_codes"] = jnp.sum(updated[COLLECTION]["quantize"]["usage"] == 0).astype(jnp.float32)
        return loss, (metrics, {COLLECTION: updated[COLLECTION]})

    def eval_fn(self, params, extra, batch, frozen):
        inputs = eval_inputs(batch)
        _, metrics = self.model.apply({"params": params, **extra}, *inputs, train=False)
        valid = layout.token_mask(inputs[2], inputs[3])
        tokens = jnp.sum(valid).astype(jnp.float32)
        sums = {k: metrics[k] * tokens for k in LOSSES}
        sums["tokens"] = tokens
        sums["code_counts"] = code_counts(metrics["codes"].reshape(-1), valid.reshape(-1),
                                          self.config.tokenizer.num_codes)
        return {}, sums

    def summarize(self, per_example, sums) -> dict[str, Any]:
        tokens = max(float(sums["tokens"]), 1.0)
        out = {k: float(sums[k]) / tokens for k in LOSSES}
        out.update(codebook_stats(np.asarray(sums["code_counts"])))
        return out

    def monitor(self):
        return ("total_loss", "min")
