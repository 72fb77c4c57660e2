"""`labram_jax.load` on converted official checkpoints: outputs equal a NumPy forward of the official
equations on the same weights, and errors name what is wrong."""

import numpy as np
import pytest

import labram_jax
from labram_jax import channels, checkpoints, layout
from labram_jax.channels import UnknownChannelError
from labram_jax.convert import convert
from tests import numpy_reference as ref
from tests.convert import official_files as files

pytest.importorskip("torch")  # the fixtures write real .pth files

NAMES = ["EEG FP1-REF", "Cz"]  # any spelling the channel normaliser accepts
CHANS = [0] + channels.channel_ids(NAMES).tolist()


def _eeg(seed=0, b=2, seconds=2):
    return (30.0 * np.random.default_rng(seed).standard_normal((b, len(NAMES), seconds * 200))).astype(np.float32)


def _converted(tmp_path_factory, name, tensors):
    directory = tmp_path_factory.mktemp(name)
    files.save_pth(tensors, directory / f"{name}.pth")
    convert(directory / f"{name}.pth", directory / "converted")
    return directory / "converted"


@pytest.fixture(scope="module")
def finetune(tmp_path_factory):
    sd = files.random_state_dict(files.FINETUNE_BASE, seed=3, num_outputs=3)
    return files.as_float64(sd), labram_jax.load(_converted(tmp_path_factory, "finetune", sd))


@pytest.fixture(scope="module")
def pretrain(tmp_path_factory):
    sd = files.random_state_dict(files.PRETRAIN_BASE, seed=4)
    return files.as_float64(sd), labram_jax.load(_converted(tmp_path_factory, "pretrain", sd))


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    sd = files.random_state_dict(files.TOKENIZER, seed=5)
    return files.as_float64(sd), labram_jax.load(_converted(tmp_path_factory, "tokenizer", sd))


def _official_tokens(sd, eeg_uv, prefix="", **flags):
    """The official forward on µV/100 (the official engines' input), patch tokens before fc_norm."""
    flags = {"qkv_bias": False, "qk_norm": True, "layer_scale": True, **flags}
    x = layout.patchify(eeg_uv.astype(np.float64)) / layout.INPUT_SCALE
    return np.concatenate(
        [ref.forward_features(x[i : i + 1], CHANS, sd, 12, 10, prefix=prefix, **flags)[:, 1:] for i in range(len(x))]
    )


def _close(ours, expected, rel=1e-4):
    np.testing.assert_allclose(ours, expected, rtol=rel, atol=rel * np.abs(expected).max())


def test_finetune_logits_and_features_equal_official_equations(finetune):
    sd, m = finetune
    assert m.kind == "finetune" and m.meta["model_spec"]["num_outputs"] == 3
    eeg = _eeg()
    tokens = _official_tokens(sd, eeg)
    pooled = ref.layer_norm(tokens.mean(1), sd["fc_norm.weight"], sd["fc_norm.bias"])
    logits = m.logits(eeg, NAMES)
    assert logits.shape == (2, 3)
    _close(logits, ref.linear(pooled, sd, "head"))
    _close(m.pooled(eeg, NAMES), pooled)
    _close(m.features(eeg, NAMES), ref.layer_norm(tokens, sd["fc_norm.weight"], sd["fc_norm.bias"]))
    assert m.features(eeg, NAMES).shape == (2, 4, 200)  # channel-major C*A tokens


def test_pretrain_features_use_student_backbone_and_fresh_fc_norm(pretrain):
    sd, m = pretrain
    assert m.kind == "pretrain"
    assert set(m.variables["params"]) == {"student", "lm_head", "projection_head"}
    eeg = _eeg(1)
    # Fine-tuning's view (ref. §6.2): `student.` weights, cls spatial row 0, fc_norm scale 1 / bias 0.
    tokens = _official_tokens(sd, eeg, prefix="student.")
    ones, zeros = np.ones(200), np.zeros(200)
    _close(m.features(eeg, NAMES), ref.layer_norm(tokens, ones, zeros))
    _close(m.pooled(eeg, NAMES), ref.layer_norm(tokens.mean(1), ones, zeros))


def test_tokenizer_codes_equal_official_equations(tokenizer):
    sd, m = tokenizer
    eeg = _eeg(2)
    tokens = _official_tokens(sd, eeg, prefix="encoder.", qkv_bias=True, qk_norm=False, layer_scale=False)
    h = ref.layer_norm(tokens, sd["encoder.fc_norm.weight"], sd["encoder.fc_norm.bias"])
    z = ref.linear(np.tanh(ref.linear(h, sd, "encode_task_layer.0")), sd, "encode_task_layer.2")
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    distances = ((z[:, :, None, :] - sd["quantize.embedding.weight"][None, None]) ** 2).sum(-1)
    codes = m.codes(eeg, NAMES)
    assert codes.shape == (2, 4)
    # Equal codes, except where float32 cannot tell two codewords apart (none expected with this seed).
    chosen = np.take_along_axis(distances, codes[..., None].astype(int), -1)[..., 0]
    np.testing.assert_allclose(chosen, distances.min(-1), atol=1e-5)
    assert (codes == distances.argmin(-1)).mean() == 1.0


def test_wrong_kind_for_the_call(finetune, pretrain, tokenizer):
    eeg = _eeg()
    with pytest.raises(checkpoints.CheckpointError, match="`codes` needs a tokenizer checkpoint.*finetune"):
        finetune[1].codes(eeg, NAMES)
    with pytest.raises(checkpoints.CheckpointError, match="`logits` needs a finetune checkpoint.*pretrain"):
        pretrain[1].logits(eeg, NAMES)
    with pytest.raises(checkpoints.CheckpointError, match="`features` needs a finetune or pretrain.*tokenizer"):
        tokenizer[1].features(eeg, NAMES)


def test_input_errors_name_the_problem(finetune):
    m = finetune[1]
    with pytest.raises(UnknownChannelError, match="'XYZ'"):
        m.logits(_eeg(), ["FP1", "XYZ"])
    with pytest.raises(ValueError, match="350 samples is not a multiple of the 200-sample patch"):
        m.logits(_eeg()[..., :350], NAMES)
    with pytest.raises(ValueError, match="17 s of signal.*16 patches"):
        m.logits(np.zeros((1, 2, 17 * 200), np.float32), NAMES)
    with pytest.raises(ValueError, match="name the 2 channels"):
        m.logits(_eeg(), ["FP1"])
    with pytest.raises(ValueError, match="add a batch axis"):
        m.logits(_eeg()[0], NAMES)


def test_load_refuses_what_is_not_a_checkpoint(tmp_path):
    with pytest.raises(checkpoints.CheckpointError, match="python -m labram_jax.convert"):
        labram_jax.load(tmp_path)
