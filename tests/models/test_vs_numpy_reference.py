"""Our Flax modules against an independent NumPy implementation of the official equations.

Weights travel through the official name map (`to_official`), so these tests also pin the layout
conversions that checkpoint import relies on.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from labram_jax import layout
from labram_jax.models.neural_transformer import LaBraMClassifier, LaBraMPretrain
from labram_jax.models.temporal_conv import TemporalConv
from labram_jax.models.transformer import Block
from tests import numpy_reference as ref
from tests import tiny

RTOL, ATOL = 2e-4, 2e-4


def _sd(variables, keys):
    return ref.official_state_dict(variables, keys)


def test_temporal_conv_matches_reference_and_mixes_channels():
    spec = tiny.BACKBONE
    rng = np.random.default_rng(0)
    batch = tiny.batch(rng, b=2, c=3, a=4)
    valid = tiny.token_mask_of(batch)
    model = TemporalConv(spec)
    variables = tiny.perturb(model.init(jax.random.PRNGKey(0), batch[layout.EEG], valid))
    ours = np.asarray(model.apply(variables, batch[layout.EEG], valid))
    keys = {k: v for k, v in ref.backbone_keys("", 100, 0, 4, 4, False, False, False).items()
            if k.startswith("patch_embed.")}
    sd = ref.official_state_dict({"params": {"backbone": {"patch_embed": variables["params"]}}}, keys)
    expected = ref.temporal_conv(batch[layout.EEG].astype(np.float64) / 100.0, sd)
    assert ours.shape == (2, 12, 100)
    np.testing.assert_allclose(ours, expected, rtol=RTOL, atol=ATOL)

    # GroupNorm statistics span the whole sample: changing channel 0 moves channel 2's embeddings.
    changed = dict(batch)
    changed[layout.EEG] = batch[layout.EEG].copy()
    changed[layout.EEG][:, 0] *= 3.0
    other = np.asarray(model.apply(variables, changed[layout.EEG], valid))
    assert np.abs(other[:, 8:] - ours[:, 8:]).max() > 1e-3


@pytest.mark.parametrize("variant", ["neural_transformer", "tokenizer"])
def test_block_matches_reference(variant):
    spec = tiny.BACKBONE if variant == "neural_transformer" else tiny.TOKENIZER_BODY
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 7, spec.width)).astype(np.float32)
    key_mask = np.ones((2, 7), bool)
    model = Block(spec, layer_id=1)
    variables = tiny.perturb(model.init(jax.random.PRNGKey(1), x, key_mask))
    ours = np.asarray(model.apply(variables, x, key_mask))
    keys = {k: v for k, v in ref.backbone_keys("", spec.width, 1, spec.num_heads, 4, spec.qkv_bias,
                                               spec.qk_norm, spec.layer_scale_init > 0).items()
            if k.startswith("blocks.0.")}
    sd = ref.official_state_dict({"params": {"backbone": {"blocks_0": variables["params"]}}}, keys)
    expected = ref.block(x.astype(np.float64), sd, "blocks.0.", spec.num_heads, spec.qkv_bias, spec.qk_norm,
                         spec.layer_scale_init > 0)
    np.testing.assert_allclose(ours, expected, rtol=RTOL, atol=ATOL)


def _classifier_reference(variables, batch, spec, num_outputs):
    keys = ref.backbone_keys("", spec.width, spec.depth, spec.num_heads, spec.conv_channels, spec.qkv_bias,
                             spec.qk_norm, spec.layer_scale_init > 0, spec.max_patches)
    keys.update({"fc_norm.weight": (spec.width,), "fc_norm.bias": (spec.width,)})
    if num_outputs:
        keys.update({"head.weight": (num_outputs, spec.width), "head.bias": (num_outputs,)})
    sd = _sd(variables, keys)
    results = []
    for i in range(batch[layout.EEG].shape[0]):
        x = batch[layout.EEG][i:i + 1].astype(np.float64) / 100.0
        chans = [0] + batch[layout.CHANNEL_IDS][i].tolist()
        h = ref.forward_features(x, chans, sd, spec.depth, spec.num_heads, spec.qkv_bias, spec.qk_norm,
                                 spec.layer_scale_init > 0)
        pooled = ref.layer_norm(h[:, 1:].mean(1), sd["fc_norm.weight"], sd["fc_norm.bias"])
        patch_tokens = ref.layer_norm(h[:, 1:], sd["fc_norm.weight"], sd["fc_norm.bias"])
        out = ref.linear(pooled, sd, "head") if num_outputs else pooled
        results.append((out[0], patch_tokens[0]))
    return np.stack([r[0] for r in results]), np.stack([r[1] for r in results])


@pytest.mark.parametrize("spec", [tiny.BACKBONE, tiny.TOKENIZER_BODY], ids=["labram", "tokenizer_body"])
def test_classifier_matches_reference(spec):
    rng = np.random.default_rng(2)
    batch = tiny.batch(rng, b=2, c=3, a=5)
    model = LaBraMClassifier(spec, num_outputs=3)
    variables = tiny.perturb(model.init(jax.random.PRNGKey(2), *tiny.args(batch)))
    logits = np.asarray(model.apply(variables, *tiny.args(batch)))
    features = np.asarray(model.apply(variables, *tiny.args(batch), method=LaBraMClassifier.features))
    expected_logits, expected_features = _classifier_reference(variables, batch, spec, 3)
    np.testing.assert_allclose(logits, expected_logits, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(features, expected_features, rtol=RTOL, atol=ATOL)


def test_mem_model_matches_reference_two_passes():
    spec = dataclasses.replace(tiny.BACKBONE, init_style="pretrain", cls_spatial_from_first_channel=True)
    vocab = 11
    rng = np.random.default_rng(3)
    batch = tiny.batch(rng, b=2, c=2, a=3)
    n = 6
    masked = np.zeros((2, n), bool)
    masked[0, [0, 2, 5]] = True
    masked[1, [1, 3, 4]] = True
    model = LaBraMPretrain(spec, vocab_size=vocab)
    variables = tiny.perturb(model.init(jax.random.PRNGKey(3), *tiny.args(batch), masked))
    logits = np.asarray(model.apply(variables, *tiny.args(batch), masked))
    keys = ref.backbone_keys("student.", spec.width, spec.depth, spec.num_heads, spec.conv_channels, False,
                             True, True, spec.max_patches)
    keys.update({"student.mask_token": (1, 1, spec.width), "student.norm.weight": (spec.width,),
                 "student.norm.bias": (spec.width,), "lm_head.weight": (vocab, spec.width),
                 "lm_head.bias": (vocab,)})
    sd = _sd(variables, keys)
    for i in range(2):
        x = batch[layout.EEG][i:i + 1].astype(np.float64) / 100.0
        chans = [0] + batch[layout.CHANNEL_IDS][i].tolist()
        for pass_mask in (masked[i:i + 1], ~masked[i:i + 1]):
            h = ref.forward_features(x, chans, sd, spec.depth, spec.num_heads, False, True, True,
                                     prefix="student.", mask=pass_mask, cls_from_first_channel=True)
            h = ref.layer_norm(h, sd["student.norm.weight"], sd["student.norm.bias"])
            expected = ref.linear(h[:, 1:][pass_mask], sd, "lm_head")
            np.testing.assert_allclose(logits[i][pass_mask[0]], expected, rtol=RTOL, atol=ATOL)
