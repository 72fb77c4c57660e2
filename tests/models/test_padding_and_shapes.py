"""Padding invariance, variable channel sets and lengths, input errors and jit determinism."""

import dataclasses

import flax.linen as nn
import jax
import numpy as np
import pytest

from labram_jax import layout
from labram_jax.models.neural_transformer import LaBraMClassifier, LaBraMPretrain, drop_path_rates
from labram_jax.models.transformer import DropPath
from labram_jax.models.vqnsp import VQNSP
from tests import tiny


def _classifier():
    model = LaBraMClassifier(tiny.BACKBONE, num_outputs=3)
    batch = tiny.batch(np.random.default_rng(0), b=2, c=3, a=4)
    return model, tiny.perturb(model.init(jax.random.PRNGKey(0), *tiny.args(batch))), batch


@pytest.mark.parametrize("extra_channels,extra_patches", [(2, 0), (0, 2), (1, 1)])
def test_classifier_outputs_ignore_padding(extra_channels, extra_patches):
    model, variables, batch = _classifier()
    padded = tiny.pad(batch, extra_channels, extra_patches)
    logits = model.apply(variables, *tiny.args(batch))
    logits_p = model.apply(variables, *tiny.args(padded))
    np.testing.assert_allclose(np.asarray(logits_p), np.asarray(logits), rtol=1e-4, atol=1e-5)
    feats = np.asarray(model.apply(variables, *tiny.args(batch), method=LaBraMClassifier.features))
    feats_p = np.asarray(model.apply(variables, *tiny.args(padded), method=LaBraMClassifier.features))
    real = tiny.token_mask_of(padded)
    np.testing.assert_allclose(feats_p[real].reshape(feats.shape), feats, rtol=1e-4, atol=1e-5)
    assert np.all(feats_p[~real] == 0)


def test_one_batch_mixes_channel_sets_and_lengths():
    """Sample 0: 3 channels x 4 s; sample 1: 2 other channels x 2 s, padded into one batch."""
    model, variables, _ = _classifier()
    rng = np.random.default_rng(1)
    first = tiny.batch(rng, b=1, c=3, a=4)
    second = tiny.batch(rng, b=1, c=2, a=2)
    mixed = tiny.pad(first, 0, 0)
    second_p = tiny.pad(second, 1, 2)
    mixed = {k: np.concatenate([first[k], second_p[k]], axis=0) for k in first}
    out = np.asarray(model.apply(variables, *tiny.args(mixed)))
    np.testing.assert_allclose(out[0], np.asarray(model.apply(variables, *tiny.args(first)))[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out[1], np.asarray(model.apply(variables, *tiny.args(second)))[0], rtol=1e-4, atol=1e-5)


def test_mem_logits_ignore_padding():
    spec = dataclasses.replace(tiny.BACKBONE, init_style="pretrain", cls_spatial_from_first_channel=True)
    model = LaBraMPretrain(spec, vocab_size=7)
    batch = tiny.batch(np.random.default_rng(2), b=2, c=2, a=3)
    masked = np.zeros((2, 2, 3), bool)
    masked[0, 0, 1] = masked[0, 1, 2] = masked[0, 1, 0] = True
    masked[1, 0, 0] = masked[1, 0, 2] = masked[1, 1, 1] = True
    variables = tiny.perturb(model.init(jax.random.PRNGKey(0), *tiny.args(batch), masked.reshape(2, -1)))
    padded = tiny.pad(batch, 1, 2)
    masked_p = np.zeros((2, 3, 5), bool)
    masked_p[:, :2, :3] = masked
    logits = np.asarray(model.apply(variables, *tiny.args(batch), masked.reshape(2, -1)))
    logits_p = np.asarray(model.apply(variables, *tiny.args(padded), masked_p.reshape(2, -1)))
    real = tiny.token_mask_of(padded)
    np.testing.assert_allclose(logits_p[real].reshape(logits.shape), logits, rtol=1e-4, atol=1e-4)


def test_tokenizer_loss_codes_and_quantizer_state_ignore_padding():
    model = VQNSP(tiny.TOKENIZER_BODY, dataclasses.replace(tiny.TOKENIZER_BODY, depth=1), tiny.QUANTIZER)
    batch = tiny.batch(np.random.default_rng(3), b=2, c=3, a=3)
    padded = tiny.pad(batch, 2, 1)
    variables = model.init(jax.random.PRNGKey(0), *tiny.args(batch))
    rngs = {"kmeans": jax.random.PRNGKey(5)}
    (loss, metrics), state = model.apply(variables, *tiny.args(batch), train=True, mutable=["quantizer"], rngs=rngs)
    (loss_p, metrics_p), state_p = model.apply(
        variables, *tiny.args(padded), train=True, mutable=["quantizer"], rngs=rngs
    )
    np.testing.assert_allclose(float(loss_p), float(loss), rtol=1e-4)
    real = tiny.token_mask_of(padded)
    np.testing.assert_array_equal(np.asarray(metrics_p["codes"])[real].reshape(2, -1), np.asarray(metrics["codes"]))
    q = nn.meta.unbox(state)["quantizer"]["quantize"]
    q_p = nn.meta.unbox(state_p)["quantizer"]["quantize"]
    assert bool(q["initted"]) and bool(q_p["initted"])
    for name in ("codebook", "ema_cluster_size", "usage"):
        np.testing.assert_allclose(np.asarray(q_p[name]), np.asarray(q[name]), rtol=1e-4, atol=1e-5)


def test_jit_is_deterministic_and_matches_eager():
    model, variables, batch = _classifier()
    fn = jax.jit(lambda v, *a: model.apply(v, *a))
    first, second = fn(variables, *tiny.args(batch)), fn(variables, *tiny.args(batch))
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))
    np.testing.assert_allclose(
        np.asarray(first), np.asarray(model.apply(variables, *tiny.args(batch))), rtol=1e-5, atol=1e-6
    )


def test_cls_spatial_embedding_row_differs_between_pretrain_and_finetune():
    """Fine-tuning gives the cls token pos_embed row 0; pre-training the first channel's row (§9.1)."""
    batch = tiny.batch(np.random.default_rng(4), b=1, c=2, a=2)
    model = LaBraMClassifier(tiny.BACKBONE)
    variables = tiny.perturb(model.init(jax.random.PRNGKey(0), *tiny.args(batch)))
    base = np.asarray(model.apply(variables, *tiny.args(batch)))
    params = jax.tree_util.tree_map(np.array, variables["params"])
    # Only row 0 changes (by a non-constant vector: LayerNorm would hide a constant shift).
    params["backbone"]["pos_embed"][0] += np.random.default_rng(9).standard_normal(
        params["backbone"]["pos_embed"].shape[1]
    )
    moved = np.asarray(model.apply({"params": params}, *tiny.args(batch)))
    assert np.abs(moved - base).max() > 1e-3

    pre = LaBraMClassifier(dataclasses.replace(tiny.BACKBONE, cls_spatial_from_first_channel=True))
    base_pre = np.asarray(pre.apply(variables, *tiny.args(batch)))
    moved_pre = np.asarray(pre.apply({"params": params}, *tiny.args(batch)))
    np.testing.assert_allclose(moved_pre, base_pre, rtol=1e-6)  # row 0 unused in pre-training


def test_drop_path_rates_follow_linspace_and_act_per_sample():
    assert drop_path_rates(0.5, 3) == [0.0, 0.25, 0.5]
    np.testing.assert_allclose(drop_path_rates(0.1, 12), np.linspace(0, 0.1, 12))
    x = np.ones((64, 5, 4), np.float32)
    out = np.asarray(DropPath(0.25).apply({}, x, False, rngs={"dropout": jax.random.PRNGKey(0)}))
    per_sample = out.reshape(64, -1)
    kept = np.all(np.isclose(per_sample, 1 / 0.75), axis=1)
    dropped = np.all(per_sample == 0, axis=1)
    assert np.all(kept | dropped) and 0 < dropped.sum() < 64
    np.testing.assert_array_equal(np.asarray(DropPath(0.25).apply({}, x, True)), x)

    spec = dataclasses.replace(tiny.BACKBONE, drop_path_rate=0.5)
    model = LaBraMClassifier(spec, num_outputs=2)
    batch = tiny.batch(np.random.default_rng(5), b=4, c=2, a=2)
    variables = model.init(jax.random.PRNGKey(0), *tiny.args(batch))
    eval_out = np.asarray(model.apply(variables, *tiny.args(batch)))
    train_out = np.asarray(
        model.apply(variables, *tiny.args(batch), deterministic=False, rngs={"dropout": jax.random.PRNGKey(1)})
    )
    assert np.abs(train_out - eval_out).max() > 0


def test_too_many_patches_and_bad_channel_ids_are_rejected():
    model, variables, _ = _classifier()
    long = tiny.batch(np.random.default_rng(6), b=1, c=2, a=tiny.BACKBONE.max_patches + 1)
    with pytest.raises(ValueError, match=r"7 patches per channel .* 6 rows"):
        model.apply(variables, *tiny.args(long))
    bad = tiny.batch(np.random.default_rng(7), b=1, c=2, a=2)
    bad[layout.CHANNEL_IDS][0, 1] = 133
    with pytest.raises(ValueError, match="channel id 133"):
        model.apply(variables, *tiny.args(bad))
