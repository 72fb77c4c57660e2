"""What the converter refuses, and what it accepts when told to: every failure names the file or tensors and
writes nothing."""

import argparse
import json
import os

import numpy as np
import pytest

from labram_jax import checkpoints
from labram_jax.convert import (
    CONVERSION_FILE,
    ConversionError,
    UnsafeCheckpointError,
    convert,
    convert_state_dict,
)
from labram_jax.convert.safe_load import read_state_dict
from tests.convert import official_files as files

torch = pytest.importorskip("torch")


def write_marker(path):
    """What a malicious checkpoint would run on unpickling (here: harmlessly creates a file)."""
    with open(path, "w") as f:
        f.write("code from the checkpoint ran")


class CarriesCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (write_marker, (self.marker,))


@pytest.fixture(scope="module")
def base_sd():
    return files.pattern_state_dict(files.FINETUNE_BASE)


def test_pickle_that_carries_code_is_refused_and_never_run(tmp_path, base_sd):
    marker, out = tmp_path / "marker", tmp_path / "out"
    small = {k: v for k, v in base_sd.items() if k in ("cls_token", "pos_embed")}
    files.save_pth(small, tmp_path / "evil.pth", extra=CarriesCode(str(marker)))
    with pytest.raises(UnsafeCheckpointError, match=r"refusing .*evil\.pth.*write_marker.*Nothing was written"):
        convert(tmp_path / "evil.pth", out)
    assert not marker.exists(), "unpickling ran code from the file"
    assert not out.exists()
    torch.load(tmp_path / "evil.pth", weights_only=False)  # the payload is real: full unpickling runs it
    assert marker.exists()


def test_truncated_files_name_the_file(tmp_path, base_sd):
    files.save_pth(base_sd, tmp_path / "full.pth")
    data = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(ConversionError, match=r"cannot read .*cut\.pth: the file is truncated or corrupt"):
        convert(tmp_path / "cut.pth", tmp_path / "out")
    assert not (tmp_path / "out").exists()

    from safetensors.numpy import save_file

    save_file({"cls_token": base_sd["cls_token"]}, str(tmp_path / "full.safetensors"))
    data = (tmp_path / "full.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:-100])
    with pytest.raises(ConversionError, match=r"cannot read .*cut\.safetensors"):
        read_state_dict(tmp_path / "cut.safetensors")
    with pytest.raises(ConversionError, match="does not exist"):
        read_state_dict(tmp_path / "nothing.pth")


def test_unrelated_model_is_not_mistaken_for_labram(tmp_path):
    resnet = {
        "conv1.weight": np.zeros((64, 3, 7, 7), np.float32),
        "bn1.weight": np.ones(64, np.float32),
        "bn1.running_mean": np.zeros(64, np.float32),
        "fc.weight": np.zeros((1000, 512), np.float32),
    }
    files.save_pth(resnet, tmp_path / "resnet.pth", wrapper="state_dict")
    with pytest.raises(ConversionError, match=r"resnet\.pth: not a LaBraM checkpoint.*'conv1.weight'"):
        convert(tmp_path / "resnet.pth", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_mismatched_missing_and_unknown_tensors_are_listed_together(base_sd):
    sd = dict(base_sd)
    sd["pos_embed"] = np.zeros((1, 100, 200), np.float32)
    del sd["blocks.3.mlp.fc1.weight"]
    sd["blocks.3.attn.relative_position_bias_table"] = np.zeros((10, 10), np.float32)
    with pytest.raises(ConversionError) as err:
        convert_state_dict(sd, "f.pth")
    message = str(err.value)
    assert "mis-shaped tensors [1]: pos_embed: file [1, 100, 200], model [1, 129, 200]" in message
    assert "missing tensors (the model needs them) [1]: blocks.3.mlp.fc1.weight [800, 200]" in message
    assert "unknown tensors (no counterpart in the model) [1]: blocks.3.attn.relative_position_bias_table" in message
    assert "--allow_unexpected" in message and "--allow_missing" in message

    done = convert_state_dict(
        sd,
        "f.pth",
        allow_missing=["pos_embed", "blocks.3.mlp.*"],
        allow_unexpected=["*.relative_position_bias_table", "unused.*"],
    )
    actions = {e["official"]: (e["problem"], e["action"]) for e in done.result.let_go}
    assert actions == {
        "pos_embed": ("mis-shaped", "initialised"),
        "blocks.3.mlp.fc1.weight": ("missing", "initialised"),
        "blocks.3.attn.relative_position_bias_table": ("unexpected", "dropped"),
    }
    assert done.result.unused_patterns == ["unused.*"]
    fc1 = done.result.variables["params"]["backbone"]["blocks_3"]["mlp"]["fc1"]["kernel"]
    assert fc1.shape == (200, 800) and 0 < np.std(fc1) < 0.1  # initialised fresh (trunc-normal 0.02)


def test_task_head_let_go_leaves_a_headless_finetune_checkpoint(tmp_path, base_sd):
    files.save_pth(base_sd, tmp_path / "tuev.pth")
    report = convert(tmp_path / "tuev.pth", tmp_path / "out", allow_unexpected=["head.*"])
    assert report["architecture"]["num_outputs"] == 0
    assert checkpoints.read_meta(tmp_path / "out")["model_spec"]["num_outputs"] == 0
    assert [e["official"] for e in report["let_go"]] == ["head.weight", "head.bias"]
    headless = {k: v for k, v in base_sd.items() if not k.startswith("head.")}
    with pytest.raises(ConversionError, match=r"missing tensors .*head\.weight \(the task head"):
        convert_state_dict(headless, "f.pth")
    assert convert_state_dict(headless, "f.pth", allow_missing=["head.*"]).arch.num_outputs == 0


def test_kind_must_match_the_file_and_out_must_be_new(tmp_path, base_sd):
    with pytest.raises(ConversionError, match="--kind pretrain was asked for, but the file holds a finetune"):
        convert_state_dict(base_sd, "f.pth", kind="pretrain")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "something").write_text("")
    with pytest.raises(ConversionError, match="not an empty directory"):
        convert(tmp_path / "missing.pth", tmp_path / "out")


@pytest.mark.parametrize("layout", ["raw", "state_dict", "official_training", "ddp", "safetensors"])
def test_accepted_wrappers(tmp_path, layout):
    sd = {"cls_token": np.full((1, 1, 200), 2.0, np.float32), "blocks.0.gamma_1": np.ones(200, np.float32)}
    path = tmp_path / "w.pth"
    if layout == "raw":
        files.save_pth(sd, path, wrapper=None)
    elif layout == "state_dict":
        files.save_pth(sd, path, wrapper="state_dict", epoch=3)
    elif layout == "official_training":  # utils.save_model: model, optimizer, epoch, scaler, args
        files.save_pth(
            sd,
            path,
            optimizer={"state": {}},
            epoch=9,
            scaler={"scale": 65536.0},
            args=argparse.Namespace(lr=5e-4, model="labram_base_patch200_200"),
        )
    elif layout == "ddp":
        files.save_pth({"module." + k: v for k, v in sd.items()}, path)
    else:
        from safetensors.numpy import save_file

        path = tmp_path / "w.safetensors"
        save_file(sd, str(path))
    state = read_state_dict(path)
    assert set(state.tensors) == set(sd)
    np.testing.assert_array_equal(state.tensors["cls_token"], sd["cls_token"])
    assert state.prefix_removed == ("module." if layout == "ddp" else None)


def test_student_only_state_dict_maps_onto_the_pretrain_student():
    sd = files.pattern_state_dict(files.PRETRAIN_BASE)
    bare = {k[len("student.") :]: v for k, v in sd.items() if k.startswith("student.")}
    with pytest.raises(ConversionError, match=r"missing tensors .*lm_head\.weight"):
        convert_state_dict(bare, "student.pth")
    done = convert_state_dict(bare, "student.pth", allow_missing=["lm_head.*", "projection_head.*"])
    assert done.prefix_added == "student." and done.arch.kind == "pretrain"
    np.testing.assert_array_equal(done.result.variables["params"]["student"]["mask_token"], bare["mask_token"][0, 0])


def test_report_accounts_for_every_tensor(tmp_path):
    sd = files.random_state_dict(files.TOKENIZER)
    files.save_pth(
        {k: v.astype(np.float16) if k.startswith("decoder.") else v for k, v in sd.items()}, tmp_path / "vqnsp.pth"
    )
    convert(tmp_path / "vqnsp.pth", tmp_path / "out")
    report = json.loads((tmp_path / "out" / CONVERSION_FILE).read_text())
    assert report["kind"] == "tokenizer" and report["parameters"] == report["official_parameters"] == 8_579_408
    assert {e["official"] for e in report["mapped"]} == set(sd)
    entry = next(e for e in report["mapped"] if e["official"] == "quantize.embedding.initted")
    assert entry == {
        "official": "quantize.embedding.initted",
        "shape": [1],
        "collection": "quantizer",
        "path": "quantize/initted",
        "flax_shape": [],
        "layout": "reshape",
        "dtype": "float32",
    }
    assert next(e for e in report["mapped"] if e["official"] == "decoder.cls_token")["dtype"] == "float16"
    assert report["source"]["sha256"] and os.path.isdir(report["checkpoint"])
    assert checkpoints.read_meta(tmp_path / "out")["kind"] == "tokenizer"
