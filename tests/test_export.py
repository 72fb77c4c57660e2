"""Export to the official PyTorch layout: export -> import is the identity on every tensor of the seven
official models; an exported fine-tuned model gives, through a NumPy forward of the official equations, the
outputs `labram_jax.load` gives; our own quantiser state is left out and listed.

Export to braindecode's `Labram` layout: export -> import is the identity on every tensor; braindecode's
`Labram`, built with the summary's arguments, loads the file strictly and gives our outputs (when
braindecode is installed: the `bench` extra); checkpoints it cannot hold are refused by name."""

from __future__ import annotations

import importlib.util
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import labram_jax
from configs import demo_finetune_tuab, demo_tokenizer
from labram_jax import channels, checkpoints, layout
from labram_jax.convert import convert, convert_state_dict
from labram_jax.convert.__main__ import main as convert_main
from labram_jax.export import ExportError, braindecode_state_dict, export, export_state_dict, main
from labram_jax.models import factory
from tests import numpy_reference as ref
from tests.convert import official_files as files

pytest.importorskip("torch")

NAMES = ["FP1", "FP2", "C3"]
EEG = (30 * np.random.default_rng(1).standard_normal((2, len(NAMES), 600))).astype(np.float32)  # 3 s of 4


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
    rng = np.random.default_rng(0)
    if kind == "finetune":  # a non-trivial fc_norm and head, so that the comparison tests them
        variables = jax.tree.map(lambda v: v + 0.05 * rng.standard_normal(v.shape).astype(v.dtype), variables)
    if kind == "tokenizer" and "amplitude_offset" in variables["quantizer"]:  # as set by a first training batch
        variables["quantizer"].update(
            amplitude_offset=rng.standard_normal(200).astype(np.float32),
            phase_offset=rng.standard_normal(200).astype(np.float32),
            offset_initted=np.asarray(True),
        )
    checkpoints.write_model(directory, variables, meta)
    return str(directory)


@pytest.fixture(scope="module")
def tiny_finetune(tmp_path_factory) -> str:
    """A tiny fine-tuned checkpoint (width 100, 2 blocks, 4 temporal rows, 3 outputs), noisy weights."""
    directory = tmp_path_factory.mktemp("export") / "ft"
    return _checkpoint(directory, demo_finetune_tuab.get_config(), "finetune", num_outputs=3)


@pytest.fixture(scope="module")
def tiny_outputs(tiny_finetune) -> dict[str, np.ndarray]:
    """`labram_jax.load(tiny_finetune)`'s logits and patch features of `EEG`, from one forward."""
    return labram_jax.load(tiny_finetune).outputs(EEG, NAMES, ("logits", "features"))


def test_exported_finetune_model_equals_the_official_equations(tiny_finetune, tiny_outputs, tmp_path):
    summary = export(tiny_finetune, tmp_path / "ft.pth")
    assert summary["official_model"] == "labram_base_patch200_200" and summary["left_out"] == []
    assert summary["layout"] == "official" and "braindecode" not in summary
    assert json.loads((tmp_path / "ft.json").read_text())["tensors"] == summary["tensors"]
    import torch

    sd = {k: v.numpy().astype(np.float64) for k, v in torch.load(tmp_path / "ft.pth", weights_only=True).items()}
    chans = [0, *channels.channel_ids(NAMES).tolist()]
    x = layout.patchify(EEG.astype(np.float64)) / layout.INPUT_SCALE
    flags = {"qkv_bias": False, "qk_norm": True, "layer_scale": True}
    tokens = np.concatenate([ref.forward_features(x[i : i + 1], chans, sd, 2, 4, **flags)[:, 1:] for i in range(2)])
    pooled = ref.layer_norm(tokens.mean(1), sd["fc_norm.weight"], sd["fc_norm.bias"])
    np.testing.assert_allclose(tiny_outputs["logits"], ref.linear(pooled, sd, "head"), rtol=1e-4, atol=1e-5)


def _flat(variables) -> dict[str, np.ndarray]:
    return {jax.tree_util.keystr(k): np.asarray(x) for k, x in jax.tree_util.tree_flatten_with_path(variables)[0]}


def test_braindecode_export_then_import_is_the_identity_on_every_tensor(tmp_path, capsys):
    """A Base-shaped fine-tuned checkpoint (the importer reads sizes by width) through the two files."""
    done = convert_state_dict(files.pattern_state_dict(files.FINETUNE_BASE), "synthetic")
    checkpoints.write_model(tmp_path / "ft", done.result.variables, checkpoints.meta_for_spec(done.spec, step=3))
    summary = export(tmp_path / "ft", tmp_path / "bd.safetensors", "braindecode")
    kwargs = summary["braindecode"]["kwargs"]
    assert summary["layout"] == "braindecode" and summary["left_out"] == []
    assert (kwargs["n_times"], kwargs["n_outputs"], kwargs["embed_dim"], kwargs["num_layers"]) == (3200, 6, 200, 12)
    assert json.loads((tmp_path / "bd.json").read_text())["braindecode"]["kwargs"] == kwargs

    assert convert_main(["--checkpoint", str(tmp_path / "bd.safetensors"), "--out", str(tmp_path / "back")]) == 0
    assert "6-output head, from the braindecode Labram layout" in capsys.readouterr().out
    report = json.loads((tmp_path / "back" / "conversion.json").read_text())
    assert report["source"]["layout"] == "braindecode" and report["kind"] == "finetune"
    assert report["layout_notes"][0]["braindecode"] == "temporal_embedding"
    assert report["counts"] == {"file_tensors": 223, "mapped": 223, "let_go": 0, "initialised": 0}
    assert {e["file"] for e in report["mapped"]} >= {"position_embedding", "final_layer.weight"}
    mine, back = _flat(done.result.variables), _flat(labram_jax.load(tmp_path / "back").variables)
    assert mine.keys() == back.keys()
    for key, value in mine.items():
        assert back[key].dtype == value.dtype and np.array_equal(back[key], value), key


def _braindecode_labram():
    """braindecode's `Labram` class and channel order, or a skip. braindecode imports torchaudio, whose PyPI
    build cannot load next to the CPU torch; bench's import stands in for it (Labram never uses it)."""
    if importlib.util.find_spec("braindecode") is None:
        pytest.skip("braindecode is not installed (pip install -e '.[bench]')")
    from bench.torch_reference import import_labram

    return import_labram()


def test_braindecode_labram_loads_the_export_strictly_and_gives_our_outputs(tiny_finetune, tiny_outputs, tmp_path):
    labram, order = _braindecode_labram()
    assert list(order) == list(channels.VOCABULARY)  # the position embedding rows mean the same electrodes
    assert main(["--checkpoint", tiny_finetune, "--out", str(tmp_path / "bd.pth"), "--format", "braindecode",
                 "--seconds", "3"]) == 0  # fmt: skip
    summary = json.loads((tmp_path / "bd.json").read_text())
    assert summary["left_out"] == ["params/backbone/time_embed row 3 (braindecode's window is 3 s)"]
    import torch

    model = labram(**summary["braindecode"]["kwargs"]).eval()
    model.load_state_dict(torch.load(tmp_path / "bd.pth", weights_only=True), strict=True)
    x = torch.from_numpy(EEG) / 100  # braindecode takes the official engines' input, microvolts / 100
    with torch.no_grad():
        logits = model(x, ch_names=NAMES).numpy()
        features = model(x, ch_names=NAMES, return_features=True)["features"].numpy()
    np.testing.assert_allclose(logits, tiny_outputs["logits"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(features, tiny_outputs["features"], rtol=0, atol=1e-4)


def test_braindecode_export_refuses_what_labram_cannot_hold(tiny_finetune, tmp_path, capsys):
    for spec in ({"kind": "pretrain"}, {"kind": "tokenizer"}):
        with pytest.raises(ExportError, match=f"fine-tuned \\(classifier\\) checkpoints; this is a {spec['kind']}"):
            braindecode_state_dict({}, spec, None)
    out = str(tmp_path / "bd.pth")
    assert main(["--checkpoint", tiny_finetune, "--out", out, "--format", "braindecode", "--seconds", "5"]) == 1
    assert "--seconds 5: braindecode's window must be 1..4 s" in capsys.readouterr().err
    assert main(["--checkpoint", tiny_finetune, "--out", out, "--seconds", "2"]) == 1
    assert "--seconds applies to --format braindecode only" in capsys.readouterr().err
    assert not (tmp_path / "bd.pth").exists() and not (tmp_path / "bd.json").exists()


def test_tokenizer_with_remedies_round_trips_and_lists_our_own_state(tmp_path, capsys):
    config = demo_tokenizer.get_config()
    # The official width (the importer reads sizes by width), a small model otherwise.
    config.tokenizer.update(width=200, num_heads=10, encoder_depth=1, decoder_depth=1, num_codes=16, code_dim=8)
    path = _checkpoint(tmp_path / "tok", config, "tokenizer")
    assert main(["--checkpoint", path, "--out", str(tmp_path / "tok.safetensors")]) == 0
    printed = capsys.readouterr().out
    assert "official vqnsp_encoder_base_decoder_3x200x12 layout" in printed and "restart_usage" in printed
    assert main(["--checkpoint", path, "--out", str(tmp_path / "bd.pth"), "--format", "braindecode"]) == 1
    assert "this is a tokenizer checkpoint, and braindecode's Labram has no tokenizer" in capsys.readouterr().err
    convert(tmp_path / "tok.safetensors", tmp_path / "back")
    ours, back = labram_jax.load(path), labram_jax.load(tmp_path / "back")
    mine, theirs = _flat(ours.variables), _flat(back.variables)
    assert set(mine) - set(theirs) == {
        f"['quantizer']['quantize']['{k}']" for k in ("restart_usage", "restarts", "train_steps")
    } | {f"['quantizer']['{k}']" for k in ("amplitude_offset", "phase_offset", "offset_initted")}
    # The mean-target offsets went into the Fourier heads' output biases; everything else is as it was.
    folded = {
        "['params']['decode_task_layer']['dense_out']['bias']": "['quantizer']['amplitude_offset']",
        "['params']['decode_task_layer_angle']['dense_out']['bias']": "['quantizer']['phase_offset']",
    }
    for key, value in theirs.items():
        want = mine[key] + mine[folded[key]] if key in folded else mine[key]
        np.testing.assert_array_equal(value, want.astype(value.dtype), err_msg=key)
    # So the reference decoder (no offsets) predicts what ours does.
    words = jax.random.normal(jax.random.PRNGKey(1), (1, 6, 8))
    batch = factory.example_batch(num_channels=2, num_patches=3)
    args = (words, batch["channel_ids"], batch["channel_mask"], batch["patch_mask"])
    for a, b in zip(
        ours.module.apply(ours.variables, *args, method="decode"),
        back.module.apply(back.variables, *args, method="decode"),
        strict=True,
    ):
        assert float(jnp.max(jnp.abs(a))) > 0.5  # the offsets are in the outputs
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-5)


def test_out_must_name_a_pytorch_file(tiny_finetune, tmp_path, capsys):
    assert main(["--checkpoint", tiny_finetune, "--out", str(tmp_path / "model.npz")]) == 1
    assert "must end in .pth or .safetensors" in capsys.readouterr().err
