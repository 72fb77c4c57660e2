"""Converted weights drive our modules to the outputs of the independent NumPy implementation of the official
equations (tests/numpy_reference.py) on the same official-layout state dict: patch encoder, both transformer
block variants and the quantiser lookup. The weights go through `convert_state_dict`, the converter's path."""

import numpy as np
import pytest

from labram_jax import layout
from labram_jax.convert import convert_state_dict
from labram_jax.models.quantizer import NormEMAQuantizer
from labram_jax.models.temporal_conv import TemporalConv
from labram_jax.models.transformer import Block
from tests import numpy_reference as ref
from tests.convert import official_files as files

RTOL, ATOL = 1e-4, 1e-4


@pytest.fixture(scope="module")
def finetune():
    sd = files.random_state_dict(files.FINETUNE_BASE, seed=1)
    return sd, convert_state_dict(sd, "synthetic fine-tuning model")


@pytest.fixture(scope="module")
def tokenizer():
    sd = files.random_state_dict(files.TOKENIZER, seed=2)
    return sd, convert_state_dict(sd, "synthetic tokenizer")


def test_patch_encoder(finetune):
    sd, done = finetune
    rng = np.random.default_rng(0)
    eeg = (40.0 * rng.standard_normal((2, 3, 2, 200))).astype(np.float32)  # µV
    valid = np.ones((2, 6), bool)
    params = done.result.variables["params"]["backbone"]["patch_embed"]
    ours = np.asarray(TemporalConv(done.model.spec).apply({"params": params}, eeg, valid))
    expected = ref.temporal_conv(eeg.astype(np.float64) / layout.INPUT_SCALE, files.as_float64(sd))
    assert ours.shape == (2, 6, 200)
    np.testing.assert_allclose(ours, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("variant", ["qk_norm_layer_scale", "qv_bias"])
def test_transformer_block(variant, finetune, tokenizer):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 200)).astype(np.float32)
    key_mask = np.ones((2, 5), bool)
    if variant == "qk_norm_layer_scale":  # the neural Transformer (fine-tuning / pre-training)
        sd, done = finetune
        spec, params, prefix = done.model.spec, done.result.variables["params"]["backbone"]["blocks_3"], "blocks.3."
        flags = {"qkv_bias": False, "qk_norm": True, "layer_scale": True}
    else:  # the VQ-NSP encoder
        sd, done = tokenizer
        spec, prefix = done.model.encoder_spec, "encoder.blocks.3."
        params = done.result.variables["params"]["encoder"]["backbone"]["blocks_3"]
        flags = {"qkv_bias": True, "qk_norm": False, "layer_scale": False}
    assert (spec.qkv_bias, spec.qk_norm, spec.layer_scale_init > 0) == tuple(flags.values())
    ours = np.asarray(Block(spec, layer_id=3).apply({"params": params}, x, key_mask))
    expected = ref.block(x.astype(np.float64), files.as_float64(sd), prefix, spec.num_heads, **flags)
    np.testing.assert_allclose(ours, expected, rtol=RTOL, atol=ATOL)


def test_quantiser_lookup(tokenizer):
    sd, done = tokenizer
    rng = np.random.default_rng(2)
    z = rng.standard_normal((2, 7, 64)).astype(np.float32)
    quantize = done.result.variables["quantizer"]["quantize"]
    assert bool(quantize["initted"])
    np.testing.assert_array_equal(quantize["usage"], sd["quantize.cluster_size"])
    _, codes, _ = NormEMAQuantizer(done.model.quantizer_spec).apply({"quantizer": quantize}, z, np.ones((2, 7), bool))
    # Reference: l2-normalise, then the nearest codeword by squared distance (ref. §4.3).
    unit = z.astype(np.float64) / np.linalg.norm(z, axis=-1, keepdims=True)
    codebook = sd["quantize.embedding.weight"].astype(np.float64)
    distances = ((unit[:, :, None, :] - codebook[None, None]) ** 2).sum(-1)
    np.testing.assert_array_equal(np.asarray(codes), distances.argmin(-1))
