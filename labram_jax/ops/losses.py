"""Losses of the three stages, all padding-aware (ref. §4.6, §5.3, §6.3)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from labram_jax.ops import argext
from labram_jax.ops.masked_stats import masked_mean


def masked_mse(pred: jnp.ndarray, target: jnp.ndarray, token_mask: jnp.ndarray) -> jnp.ndarray:
    """`F.mse_loss` over every element of the real tokens: `(B, N, F)` with a `(B, N)` mask."""
    pred, target = pred.astype(jnp.float32), target.astype(jnp.float32)
    return masked_mean((pred - target) ** 2, token_mask[..., None])


def commitment_loss(z: jnp.ndarray, z_q: jnp.ndarray, token_mask: jnp.ndarray, beta: float = 1.0) -> jnp.ndarray:
    """`beta * mean((sg(z_q) - z)^2)` over the real tokens; pulls the encoder towards its codewords."""
    return beta * masked_mse(z, jax.lax.stop_gradient(z_q), token_mask)


def tokenizer_loss(
    quantizer_losses: dict[str, jnp.ndarray],
    amplitude_pred: jnp.ndarray,
    amplitude_target: jnp.ndarray,
    phase_pred: jnp.ndarray,
    phase_target: jnp.ndarray,
    token_mask: jnp.ndarray,
) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
    """VQ-NSP loss: the quantiser's losses + amplitude MSE + phase MSE, all weights 1.

    `quantizer_losses` holds the commitment loss as `quant_loss` (the reference's name) and, when the entropy
    penalty is on, `entropy_loss`; every term is logged under its name beside `rec_loss`, `rec_angle_loss`
    and `total_loss`.
    """
    rec = masked_mse(amplitude_pred, amplitude_target, token_mask)
    rec_angle = masked_mse(phase_pred, phase_target, token_mask)
    total = sum(quantizer_losses.values()) + rec + rec_angle
    return total, {**quantizer_losses, "rec_loss": rec, "rec_angle_loss": rec_angle, "total_loss": total}


def mem_loss(
    logits: jnp.ndarray, labels: jnp.ndarray, masked: jnp.ndarray, visible: jnp.ndarray
) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
    """Symmetric masked-EEG-modeling loss (ref. §5.3).

    `logits (B, N, V)` hold, for every token, the prediction of the pass in which it was masked (pass 1 for
    `masked`, pass 2 for `visible`, its complement among the real tokens); `labels (B, N)` are the tokenizer's
    codes. Loss = mean CE over `masked` + mean CE over `visible`, as the two `CrossEntropyLoss` terms.
    `loss_rec` repeats the reference's logging oddity: the first term divided by 2. `majority_acc` (ours) is
    the accuracy on `masked` of always predicting the batch's most frequent code, the baseline of `mlm_acc`.
    """
    ce = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)
    hit = (argext.argmax(logits) == labels).astype(jnp.float32)
    ce_masked, ce_visible = masked_mean(ce, masked), masked_mean(ce, visible)
    loss = ce_masked + ce_visible
    majority = majority_hits(labels, masked, logits.shape[-1]) / jnp.maximum(jnp.sum(masked), 1)
    return loss, {
        "loss": loss,
        "loss_rec": ce_masked / 2.0,
        "mlm_acc": masked_mean(hit, masked),
        "mlm_acc_sym": masked_mean(hit, visible),
        "majority_acc": majority,
    }


def majority_hits(labels: jnp.ndarray, mask: jnp.ndarray, num_classes: int) -> jnp.ndarray:
    """How many of the `mask`ed `labels` equal their most frequent value: the hits of a predictor that always
    answers the batch's most frequent code, the floor a masked-token accuracy must clear to mean anything."""
    counts = jnp.zeros((num_classes,), jnp.float32).at[labels.reshape(-1)].add(mask.reshape(-1).astype(jnp.float32))
    return jnp.max(counts)


def binary_cross_entropy(logits: jnp.ndarray, labels: jnp.ndarray, weights: jnp.ndarray | None = None) -> jnp.ndarray:
    """`BCEWithLogitsLoss` for a 1-output head: `logits (B, 1)` or `(B,)`, labels in {0, 1}."""
    losses = optax.sigmoid_binary_cross_entropy(
        logits.reshape(-1).astype(jnp.float32), labels.reshape(-1).astype(jnp.float32)
    )
    return masked_mean(losses, jnp.ones_like(losses, bool) if weights is None else weights.astype(bool))


def label_smoothing_cross_entropy(
    logits: jnp.ndarray, labels: jnp.ndarray, smoothing: float = 0.1, weights: jnp.ndarray | None = None
) -> jnp.ndarray:
    """timm `LabelSmoothingCrossEntropy`: CE against `(1 - eps) * onehot + eps / K`."""
    num_classes = logits.shape[-1]
    targets = optax.smooth_labels(jax.nn.one_hot(labels, num_classes), smoothing)
    losses = optax.softmax_cross_entropy(logits.astype(jnp.float32), targets)
    return masked_mean(losses, jnp.ones_like(losses, bool) if weights is None else weights.astype(bool))


def mse_regression(pred: jnp.ndarray, target: jnp.ndarray, weights: jnp.ndarray | None = None) -> jnp.ndarray:
    """Mean squared error of a regression head `(B, K)` against `(B, K)` targets."""
    sq = jnp.mean((pred.astype(jnp.float32) - target.astype(jnp.float32).reshape(pred.shape)) ** 2, axis=-1)
    return masked_mean(sq, jnp.ones_like(sq, bool) if weights is None else weights.astype(bool))
