"""Our Flax modules against an independent NumPy implementation of the official equations.

Weights travel through the official name map (`to_official`), so these tests also pin the layout
conversions that checkpoint import relies on.
"""

import dataclasses

import jax
import numpy as np
import pytest

from labram_jax import layout
from labram_jax.models.neural_transformer import LaBraMClassifier, LaBraMPretrain
from labram_jax.models.temporal_conv import TemporalConv
from labram_jax.models.transformer import Block
from labram_jax.models.vqnsp import VQNSP
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
    keys = {
        k: v
        for k, v in ref.backbone_keys("", 100, 0, 4, 4, False, False, False).items()
        if k.startswith("patch_embed.")
    }
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
    keys = {
        k: v
        for k, v in ref.backbone_keys(
            "", spec.width, 1, spec.num_heads, 4, spec.qkv_bias, spec.qk_norm, spec.layer_scale_init > 0
        ).items()
        if k.startswith("blocks.0.")
    }
    sd = ref.official_state_dict({"params": {"backbone": {"blocks_0": variables["params"]}}}, keys)
    expected = ref.block(
        x.astype(np.float64), sd, "blocks.0.", spec.num_heads, spec.qkv_bias, spec.qk_norm, spec.layer_scale_init > 0
    )
    np.testing.assert_allclose(ours, expected, rtol=RTOL, atol=ATOL)


def _classifier_reference(variables, batch, spec, num_outputs):
    keys = ref.backbone_keys(
        "",
        spec.width,
        spec.depth,
        spec.num_heads,
        spec.conv_channels,
        spec.qkv_bias,
        spec.qk_norm,
        spec.layer_scale_init > 0,
        spec.max_patches,
    )
    keys.update({"fc_norm.weight": (spec.width,), "fc_norm.bias": (spec.width,)})
    if num_outputs:
        keys.update({"head.weight": (num_outputs, spec.width), "head.bias": (num_outputs,)})
    sd = _sd(variables, keys)
    results = []
    for i in range(batch[layout.EEG].shape[0]):
        x = batch[layout.EEG][i : i + 1].astype(np.float64) / 100.0
        chans = [0] + batch[layout.CHANNEL_IDS][i].tolist()
        h = ref.forward_features(
            x, chans, sd, spec.depth, spec.num_heads, spec.qkv_bias, spec.qk_norm, spec.layer_scale_init > 0
        )
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
    keys = ref.backbone_keys(
        "student.", spec.width, spec.depth, spec.num_heads, spec.conv_channels, False, True, True, spec.max_patches
    )
    keys.update(
        {
            "student.mask_token": (1, 1, spec.width),
            "student.norm.weight": (spec.width,),
            "student.norm.bias": (spec.width,),
            "lm_head.weight": (vocab, spec.width),
            "lm_head.bias": (vocab,),
        }
    )
    sd = _sd(variables, keys)
    for i in range(2):
        x = batch[layout.EEG][i : i + 1].astype(np.float64) / 100.0
        chans = [0] + batch[layout.CHANNEL_IDS][i].tolist()
        for pass_mask in (masked[i : i + 1], ~masked[i : i + 1]):
            h = ref.forward_features(
                x,
                chans,
                sd,
                spec.depth,
                spec.num_heads,
                False,
                True,
                True,
                prefix="student.",
                mask=pass_mask,
                cls_from_first_channel=True,
            )
            h = ref.layer_norm(h, sd["student.norm.weight"], sd["student.norm.bias"])
            expected = ref.linear(h[:, 1:][pass_mask], sd, "lm_head")
            np.testing.assert_allclose(logits[i][pass_mask[0]], expected, rtol=RTOL, atol=ATOL)


def test_tokenizer_forward_matches_reference():
    """Encoder -> task layer -> nearest l2-normalised code -> decoder (1x1 conv input) -> heads -> loss."""
    enc = tiny.TOKENIZER_BODY
    dec = dataclasses.replace(enc, depth=1)
    q = tiny.QUANTIZER
    model = VQNSP(enc, dec, q)
    rng = np.random.default_rng(4)
    batch = tiny.batch(rng, b=2, c=2, a=3)
    variables = tiny.perturb(model.init(jax.random.PRNGKey(4), *tiny.args(batch)))
    codebook = rng.standard_normal((q.num_codes, q.code_dim))
    codebook /= np.linalg.norm(codebook, axis=-1, keepdims=True)
    quant = dict(variables["quantizer"]["quantize"])
    quant.update(codebook=codebook.astype(np.float32), initted=np.asarray(True))
    variables = {**variables, "quantizer": {"quantize": quant}}
    loss, metrics = model.apply(variables, *tiny.args(batch))

    keys = ref.backbone_keys(
        "encoder.", enc.width, enc.depth, enc.num_heads, enc.conv_channels, True, False, False, enc.max_patches
    )
    keys.update(
        ref.backbone_keys(
            "decoder.",
            dec.width,
            dec.depth,
            dec.num_heads,
            dec.conv_channels,
            True,
            False,
            False,
            dec.max_patches,
            patch_embed="codes",
            code_dim=q.code_dim,
        )
    )
    for p in ("encoder.", "decoder."):
        keys.update({p + "fc_norm.weight": (enc.width,), p + "fc_norm.bias": (enc.width,)})
    d, code = enc.width, q.code_dim
    for name, out in (("encode_task_layer", code), ("decode_task_layer", 200), ("decode_task_layer_angle", 200)):
        keys.update(
            {f"{name}.0.weight": (d, d), f"{name}.0.bias": (d,), f"{name}.2.weight": (out, d), f"{name}.2.bias": (out,)}
        )
    sd = _sd(variables, keys)
    for i in range(2):
        x = batch[layout.EEG][i : i + 1].astype(np.float64) / 100.0
        chans = [0] + batch[layout.CHANNEL_IDS][i].tolist()
        h = ref.forward_features(x, chans, sd, enc.depth, enc.num_heads, True, False, False, prefix="encoder.")
        h = ref.layer_norm(h[:, 1:], sd["encoder.fc_norm.weight"], sd["encoder.fc_norm.bias"])
        z = ref.linear(np.tanh(ref.linear(h, sd, "encode_task_layer.0")), sd, "encode_task_layer.2")
        z = z / np.linalg.norm(z, axis=-1, keepdims=True)
        codes = np.argmin(((z[0][:, None] - codebook[None]) ** 2).sum(-1), axis=-1)
        np.testing.assert_array_equal(np.asarray(metrics["codes"])[i], codes)
        grid = codebook[codes].reshape(1, 2, 3, code)
        g = ref.forward_features(
            grid, chans, sd, dec.depth, dec.num_heads, True, False, False, prefix="decoder.", patch_embed="codes"
        )
        g = ref.layer_norm(g[:, 1:], sd["decoder.fc_norm.weight"], sd["decoder.fc_norm.bias"])
        amp = ref.linear(np.tanh(ref.linear(g, sd, "decode_task_layer.0")), sd, "decode_task_layer.2")
        # The decoder's amplitude prediction enters through its loss term, per sample.
        spectrum = np.fft.fft(x.reshape(1, 6, 200), axis=-1)
        target = np.abs(spectrum)
        target = (target - target.mean()) / target.std(ddof=1)
        per_sample_rec = ((amp - target) ** 2).mean()
        ours = model.apply(variables, *tiny.args({k: v[i : i + 1] for k, v in batch.items()}))[1]
        np.testing.assert_allclose(float(ours["rec_loss"]), per_sample_rec, rtol=1e-3)
        np.testing.assert_allclose(float(ours["quant_loss"]), ((codebook[codes] - z[0]) ** 2).mean(), rtol=1e-3)
    assert np.isfinite(float(loss))
