"""Every official tensor of all seven official models lands in its variable, in our layout, and nothing is
left over on either side (synthetic state dicts with exactly the official names and shapes)."""

import flax.linen as nn
import numpy as np
import pytest

from labram_jax.convert import convert_state_dict, mapping
from labram_jax.models import factory, official_names
from tests.convert import official_files as files


def _leaf(variables, target):
    node = variables[target.collection]
    for key in target.path:
        node = node[key]
    return np.asarray(node)


@pytest.mark.parametrize("model", files.ALL_MODELS)
def test_every_tensor_lands_in_its_variable(model):
    # Huge is checked in full too: ~383M float32 patterned values (1.5 GB, ~1.5 GB more for the result).
    sd = files.pattern_state_dict(model)
    done = convert_state_dict(sd, f"synthetic {model}")
    assert done.arch.official_model == model
    assert done.result.let_go == [] and done.result.unused_patterns == []
    assert len(done.result.mapped) == len(sd)

    abstract = mapping.flat_variables(nn.meta.unbox(factory.abstract_variables(done.model)))
    converted = mapping.flat_variables(done.result.variables)
    assert converted.keys() == abstract.keys(), "variables without a tensor, or tensors without a variable"
    for key, leaf in abstract.items():
        assert converted[key].shape == leaf.shape and converted[key].dtype == leaf.dtype, key
    assert factory.param_count(done.result.variables) == official_names.OFFICIAL_PARAM_COUNTS[model]

    for name, value in sd.items():
        target = official_names.translate(name)
        ours = _leaf(done.result.variables, target)
        expected = official_names.to_flax(value, target.kind, ours.shape).astype(ours.dtype)
        assert np.array_equal(ours, expected), name
        if ours.dtype != bool:  # and back: the official tensor is recovered bit for bit
            assert np.array_equal(official_names.to_official(ours, target.kind, value.shape), value), name


def test_layouts_put_each_element_where_the_reference_reads_it():
    """Spot checks written from the PyTorch semantics, independent of `to_flax`."""
    sd = files.pattern_state_dict(files.FINETUNE_BASE)
    p = convert_state_dict(sd, "synthetic").result.variables["params"]
    d, hd = 200, 20
    qkv = sd["blocks.4.attn.qkv.weight"]  # rows: q (200), k (200), v (200); head-major
    kernel = p["backbone"]["blocks_4"]["attn"]["qkv"]["kernel"]  # (d, 3, H, hd)
    for which, h, j in [(0, 0, 0), (1, 3, 7), (2, 9, 19)]:
        np.testing.assert_array_equal(kernel[:, which, h, j], qkv[which * d + h * hd + j])
    proj = sd["blocks.4.attn.proj.weight"]  # [out, in], in = head-major h * hd + j
    np.testing.assert_array_equal(p["backbone"]["blocks_4"]["attn"]["proj"]["kernel"][3, 7], proj[:, 3 * hd + 7])
    np.testing.assert_array_equal(p["backbone"]["blocks_4"]["mlp"]["fc1"]["kernel"], sd["blocks.4.mlp.fc1.weight"].T)
    conv = sd["patch_embed.conv2.weight"]  # [out, in, 1, width]
    np.testing.assert_array_equal(p["backbone"]["patch_embed"]["conv2"]["kernel"][2, 5, 1], conv[1, 5, 0, 2])
    np.testing.assert_array_equal(p["backbone"]["pos_embed"][17], sd["pos_embed"][0, 17])
    np.testing.assert_array_equal(
        p["backbone"]["blocks_4"]["attn"]["q_norm"]["scale"], sd["blocks.4.attn.q_norm.weight"]
    )
    np.testing.assert_array_equal(p["backbone"]["blocks_4"]["gamma_2"], sd["blocks.4.gamma_2"])
    np.testing.assert_array_equal(p["head"]["kernel"], sd["head.weight"].T)
    np.testing.assert_array_equal(p["fc_norm"]["bias"], sd["fc_norm.bias"])

    sd = files.pattern_state_dict(files.TOKENIZER)
    sd["quantize.embedding.initted"] = np.zeros(1, np.float32)  # a tokenizer whose k-means never ran
    v = convert_state_dict(sd, "synthetic").result.variables
    enc = v["params"]["encoder"]["backbone"]["blocks_0"]["attn"]
    np.testing.assert_array_equal(enc["q_bias"][2, 5], sd["encoder.blocks.0.attn.q_bias"][2 * hd + 5])
    np.testing.assert_array_equal(enc["v_bias"].reshape(-1), sd["encoder.blocks.0.attn.v_bias"])
    proj = v["params"]["decoder"]["backbone"]["patch_embed"]["proj"]["kernel"]  # 1x1 conv -> Dense (in, out)
    np.testing.assert_array_equal(proj[11, 130], sd["decoder.patch_embed.proj.weight"][130, 11, 0, 0])
    np.testing.assert_array_equal(
        v["params"]["decode_task_layer_angle"]["dense_out"]["kernel"], sd["decode_task_layer_angle.2.weight"].T
    )
    q = v["quantizer"]["quantize"]
    np.testing.assert_array_equal(q["codebook"], sd["quantize.embedding.weight"])
    np.testing.assert_array_equal(q["ema_embed_avg"], sd["quantize.embedding.embed_avg"])
    np.testing.assert_array_equal(q["ema_cluster_size"], sd["quantize.embedding.cluster_size"])
    np.testing.assert_array_equal(q["usage"], sd["quantize.cluster_size"])
    assert q["initted"].shape == () and q["initted"].dtype == bool and not q["initted"]

    sd = files.pattern_state_dict(files.PRETRAIN_BASE)
    p = convert_state_dict(sd, "synthetic").result.variables["params"]
    np.testing.assert_array_equal(p["student"]["mask_token"], sd["student.mask_token"][0, 0])
    np.testing.assert_array_equal(p["student"]["lm_head"]["kernel"], sd["student.lm_head.weight"].T)
    np.testing.assert_array_equal(p["lm_head"]["kernel"], sd["lm_head.weight"].T)
    np.testing.assert_array_equal(p["projection_head"]["bias"], sd["projection_head.0.bias"])
    np.testing.assert_array_equal(p["student"]["backbone"]["time_embed"], sd["student.time_embed"][0])
