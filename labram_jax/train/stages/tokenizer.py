"""VQ-NSP training (ref. §4.8): Fourier reconstruction + commitment, EMA codebook, k-means init.

Besides the reference's losses, the stage reports the codebook's health in a way a collapse cannot hide
(see `docs/codebook.md`): on validation, the codes actually assigned (`perplexity`, `used_codes`), the
diversity of the encoder outputs (`z_cos`, mean pairwise cosine of the unit-norm `z`), the restarts so far,
and the information the codes carry: the reconstruction losses with the true codes against those of the
same decoder with every token given one code (the batch's most frequent), as a relative gain
(`amp_info_gain`, `phase_info_gain`; 0 for a collapsed tokenizer). During a continuous warm-up
(`tokenizer.continuous_steps`) the decoder still receives the continuous `z`, so the gains then measure
what `z` carries, and the code counts are those of the not yet initialised (all-zero) codebook.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from labram_jax import layout
from labram_jax.models import factory
from labram_jax.models.quantizer import COLLECTION
from labram_jax.ops import argext
from labram_jax.ops.quantize import code_counts, mean_pairwise_cosine, perplexity
from labram_jax.train.evaluation import codebook_stats, relative_gain
from labram_jax.train.stages import validation
from labram_jax.train.stages.base import Stage, eval_inputs, model_inputs

LOSSES = ("quant_loss", "rec_loss", "rec_angle_loss", "total_loss")
ONE_CODE_LOSSES = ("rec_loss_one_code", "rec_angle_loss_one_code")


def _unit_z_sum(intermediates: Any, valid: jax.Array) -> jax.Array:
    """Sum over the real tokens of the unit-norm encoder outputs the quantiser sowed."""
    (z,) = intermediates["quantize"]["unit_z"]
    return jnp.sum(z * valid[..., None].astype(z.dtype), axis=(0, 1))


def resolve_continuous_steps(config: ml_collections.ConfigDict, steps_per_epoch: int) -> ml_collections.ConfigDict:
    """`tokenizer.continuous_steps = -1` means the optimiser's warm-up: the quantiser passes the continuous
    encoder output for as many steps as the learning rate takes to reach its peak. Returns a copy with the
    number of steps filled in (other configs are returned unchanged)."""
    if config.stage != "tokenizer" or config.tokenizer.continuous_steps >= 0:
        return config
    optim = config.optim
    steps = optim.warmup_steps if optim.warmup_steps > 0 else optim.warmup_epochs * steps_per_epoch
    resolved = ml_collections.ConfigDict(config.to_dict())
    resolved.tokenizer.continuous_steps = int(steps)
    return resolved


class TokenizerStage(Stage):
    kind = "tokenizer"

    @classmethod
    def validate(cls, config) -> None:
        super().validate(config)
        validation.validate_tokenizer_architecture(config)

    def build_model(self):
        return factory.tokenizer_model(self.config)

    def loss_fn(self, params, extra, batch, rng, frozen):
        kmeans_rng, restart_rng, dropout_rng = jax.random.split(rng, 3)
        inputs = model_inputs(batch)
        (loss, metrics), updated = self.model.apply(
            {"params": params, **extra},
            *inputs,
            train=True,
            rngs={"kmeans": kmeans_rng, "restart": restart_rng, "dropout": dropout_rng},
            mutable=[COLLECTION, "intermediates"],
        )
        valid = layout.token_mask(inputs[2], inputs[3])
        state = updated[COLLECTION]["quantize"]
        out = {k: metrics[k] for k in LOSSES + ("entropy_loss",) if k in metrics}
        # The reference logs unused codes of the usage buffer (an EMA of code counts) every epoch.
        out["unused_codes"] = jnp.sum(state["usage"] == 0).astype(jnp.float32)
        counts = code_counts(metrics["codes"].reshape(-1), valid.reshape(-1), self.config.tokenizer.num_codes)
        out["batch_perplexity"] = perplexity(counts)
        out["z_cos"] = mean_pairwise_cosine(_unit_z_sum(updated["intermediates"], valid), jnp.sum(valid))
        if "restarts" in state:
            out["restarts"] = (state["restarts"] - extra[COLLECTION]["quantize"]["restarts"]).astype(jnp.float32)
        return loss, (out, {COLLECTION: updated[COLLECTION]})

    def eval_fn(self, params, extra, batch, frozen):
        inputs = eval_inputs(batch)
        variables = {"params": params, **extra}
        (_, metrics), inter = self.model.apply(variables, *inputs, train=False, mutable=["intermediates"])
        valid = layout.token_mask(inputs[2], inputs[3])
        tokens = jnp.sum(valid).astype(jnp.float32)
        counts = code_counts(metrics["codes"].reshape(-1), valid.reshape(-1), self.config.tokenizer.num_codes)
        amp_one, phase_one = self.model.apply(
            variables, *inputs, argext.argmax(counts), method=self.model.one_code_losses
        )
        sums = {k: metrics[k] * tokens for k in LOSSES}
        sums.update(
            tokens=tokens,
            code_counts=counts,
            batches=jnp.float32(1.0),
            rec_loss_one_code=amp_one * tokens,
            rec_angle_loss_one_code=phase_one * tokens,
            z_sum=_unit_z_sum(inter["intermediates"], valid),
        )
        quantizer = extra[COLLECTION]["quantize"]
        if "restarts" in quantizer:  # the same total in every batch; `summarize` divides by the batch count
            sums["restarts"] = quantizer["restarts"].astype(jnp.float32)
        return {}, sums

    def summarize(self, per_example, sums) -> dict[str, Any]:
        tokens = max(float(sums["tokens"]), 1.0)
        out = {k: float(sums[k]) / tokens for k in LOSSES + ONE_CODE_LOSSES}
        out["amp_info_gain"] = relative_gain(out["rec_loss"], out["rec_loss_one_code"])
        out["phase_info_gain"] = relative_gain(out["rec_angle_loss"], out["rec_angle_loss_one_code"])
        out["z_cos"] = float(mean_pairwise_cosine(np.asarray(sums["z_sum"]), float(sums["tokens"])))
        if "restarts" in sums:
            out["restarts"] = int(round(float(sums["restarts"]) / max(float(sums["batches"]), 1.0)))
        out.update(codebook_stats(np.asarray(sums["code_counts"])))
        return out

    def monitor(self):
        return ("total_loss", "min")
