"""Export to the official PyTorch layout: export -> import is the identity on every tensor of the seven
official models; an exported fine-tuned model gives, through a NumPy forward of the official equations, the
outputs `labram_jax.load` gives; our own quantiser state is left out and listed."""

from __future__ import annotations

import json

import flax.linen as nn
import jax
import numpy as np
import pytest

import labram_jax
from configs import demo_finetune_tuab, demo_tokenizer
from labram_jax import channels, checkpoints, layout
from labram_jax.convert import convert, convert_state_dict
from labram_jax.export import export, export_state_dict, main
from labram_jax.models import factory
from tests import numpy_reference as ref
from tests.convert import official_files as files

pytest.importorskip("torch")

NAMES = ["FP1", "FP2", "C3"]


@pytest.mark.parametrize("model", files.ALL_MODELS)
def test_export_then_import_is_the_identity_on_every_official_tensor(model):
    sd = files.pattern_state_dict(model)
    done = convert_state_dict(sd, f"synthetic {model}")
    exported, left_out = export_state_dict(done.result.variables, done.spec)
    assert left_out == [] and exported.keys() == sd.keys()
    for name, value in sd.items():
        assert exported[name].shape == value.shape and np.array_equal(exported[name], value), name


def _checkpoint(directory, config, kind: str, **extra) -> str:
    config.model.update(width=100, depth=2, num_heads=4, max_patches=4) if "model" in config else None
    meta = checkpoints.make_meta(kind, config, step=5, **extra)
    module = checkpoints.build_model(meta)
    variables = nn.meta.unbox(factory.init_fn(module, factory.example_batch())(jax.random.PRNGKey(2)))
    if kind == "finetune":  # a non-trivial fc_norm and head, so that the comparison tests them
        rng = np.random.default_rng(0)
        variables = jax.tree.map(lambda v: v + 0.05 * rng.standard_normal(v.shape).astype(v.dtype), variables)
    checkpoints.write_model(directory, variables, meta)
    return str(directory)


def test_exported_finetune_model_equals_the_official_equations(tmp_path):
    path = _checkpoint(tmp_path / "ft", demo_finetune_tuab.get_config(), "finetune", num_outputs=1)
    summary = export(path, tmp_path / "ft.pth")
    assert summary["official_model"] == "labram_base_patch200_200" and summary["left_out"] == []
    assert json.loads((tmp_path / "ft.json").read_text())["tensors"] == summary["tensors"]
    import torch

    sd = {k: v.numpy().astype(np.float64) for k, v in torch.load(tmp_path / "ft.pth", weights_only=True).items()}
    model = labram_jax.load(path)
    eeg = (30 * np.random.default_rng(1).standard_normal((2, len(NAMES), 600))).astype(np.float32)
    chans = [0, *channels.channel_ids(NAMES).tolist()]
    x = layout.patchify(eeg.astype(np.float64)) / layout.INPUT_SCALE
    flags = {"qkv_bias": False, "qk_norm": True, "layer_scale": True}
    tokens = np.concatenate([ref.forward_features(x[i : i + 1], chans, sd, 2, 4, **flags)[:, 1:] for i in range(2)])
    pooled = ref.layer_norm(tokens.mean(1), sd["fc_norm.weight"], sd["fc_norm.bias"])
    np.testing.assert_allclose(model.logits(eeg, NAMES), ref.linear(pooled, sd, "head"), rtol=1e-4, atol=1e-5)


def test_tokenizer_with_remedies_round_trips_and_lists_our_own_state(tmp_path, capsys):
    config = demo_tokenizer.get_config()
    # The official width (the importer reads sizes by width), a small model otherwise.
    config.tokenizer.update(width=200, num_heads=10, encoder_depth=1, decoder_depth=1, num_codes=16, code_dim=8)
    path = _checkpoint(tmp_path / "tok", config, "tokenizer")
    assert main(["--checkpoint", path, "--out", str(tmp_path / "tok.safetensors")]) == 0
    printed = capsys.readouterr().out
    assert "official vqnsp_encoder_base_decoder_3x200x12 layout" in printed and "restart_usage" in printed
    convert(tmp_path / "tok.safetensors", tmp_path / "back")
    ours, back = labram_jax.load(path), labram_jax.load(tmp_path / "back")
    flat = lambda v: {jax.tree_util.keystr(k): np.asarray(x) for k, x in jax.tree_util.tree_flatten_with_path(v)[0]}
    mine, theirs = flat(ours.variables), flat(back.variables)
    assert set(mine) - set(theirs) == {
        f"['quantizer']['quantize']['{k}']" for k in ("restart_usage", "restarts", "train_steps")
    }
    for key, value in theirs.items():
        np.testing.assert_array_equal(value, mine[key].astype(value.dtype), err_msg=key)


def test_out_must_name_a_pytorch_file(tmp_path, capsys):
    path = _checkpoint(tmp_path / "ft", demo_finetune_tuab.get_config(), "finetune", num_outputs=1)
    assert main(["--checkpoint", path, "--out", str(tmp_path / "model.npz")]) == 1
    assert "must end in .pth or .safetensors" in capsys.readouterr().err
