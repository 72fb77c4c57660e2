"""Importing braindecode's `Labram` layout: told apart from the official one by its names, renamed onto the
same variables, its unused temporal row dropped; configurations our model lacks are refused by name, and
`--allow_*` patterns may name the file's own tensors."""

from __future__ import annotations

import numpy as np
import pytest

from labram_jax.convert import ConversionError, braindecode_names, convert_state_dict
from tests.convert import official_files as files


@pytest.fixture(scope="module")
def official():
    return files.pattern_state_dict(files.FINETUNE_BASE)


def _braindecode(official, num_patches: int = 16) -> dict[str, np.ndarray]:
    return braindecode_names.to_braindecode(official, num_patches)


def test_names_are_renamed_both_ways_and_detected(official):
    theirs = _braindecode(official)
    assert theirs.keys() == {braindecode_names.braindecode_name(n) for n in official}
    assert {"position_embedding", "temporal_embedding", "final_layer.weight", "blocks.11.mlp.2.bias"} <= theirs.keys()
    assert "patch_embed.temporal_conv.conv1.weight" in theirs
    assert theirs["temporal_embedding"].shape == (1, 17, 200) and not theirs["temporal_embedding"][0, 16].any()
    assert all(braindecode_names.official_name(braindecode_names.braindecode_name(n)) == n for n in official)
    assert braindecode_names.is_braindecode(theirs) and not braindecode_names.is_braindecode(official)


def test_a_shorter_braindecode_window_converts_with_fewer_temporal_rows(official):
    done = convert_state_dict(_braindecode(official, num_patches=10), "bd.pth")
    assert done.layout == "braindecode" and done.arch.max_patches == 10
    assert "row 10 dropped" in done.layout_notes[0]["action"]
    time_embed = done.result.variables["params"]["backbone"]["time_embed"]
    np.testing.assert_array_equal(time_embed, official["time_embed"][0, :10])


def test_patterns_may_name_braindecode_tensors(official):
    done = convert_state_dict(_braindecode(official), "bd.pth", allow_unexpected=["final_layer.*", "nothing.*"])
    assert done.arch.num_outputs == 0 and "head" not in done.result.variables["params"]
    assert {(e["file"], e["pattern"]) for e in done.result.let_go} == {
        ("final_layer.weight", "final_layer.*"),
        ("final_layer.bias", "final_layer.*"),
    }
    assert done.result.unused_patterns == ["nothing.*"]


def test_what_our_model_lacks_is_refused_by_name(official):
    theirs = _braindecode(official)
    mixed = {**theirs, "pos_embed": official["pos_embed"]}
    with pytest.raises(ConversionError, match="mixes the official LaBraM names"):
        convert_state_dict(mixed, "bd.pth")
    cls_pooled = {("norm." + k[len("fc_norm.") :] if k.startswith("fc_norm.") else k): v for k, v in theirs.items()}
    with pytest.raises(ConversionError, match="use_mean_pooling=False"):
        convert_state_dict(cls_pooled, "bd.pth")
    with pytest.raises(ConversionError, match="learned_patcher=True"):
        convert_state_dict({**theirs, "patch_embed.segment_patch.patcher.weight": np.zeros((200, 1, 200))}, "bd.pth")
    missing = {k: v for k, v in theirs.items() if k != "blocks.3.attn.qkv.weight"}
    with pytest.raises(ConversionError, match=r"(?s)blocks\.3\.attn\.qkv\.weight.*braindecode's Labram layout"):
        convert_state_dict(missing, "bd.pth")
