"""Parameter counts of every config and the one-to-one map onto the official state dicts."""

import flax.linen as nn
import jax
import numpy as np
import pytest

from configs import base, tokenizer
from labram_jax.models import factory, official_names

EXPECTED = {
    ("pretrain", "base"): 9_153_520,
    ("pretrain", "large"): 52_989_504,
    ("pretrain", "huge"): 383_000_896,
    ("finetune6", "base"): 5_821_142,
    ("finetune6", "large"): 46_261_126,
    ("finetune6", "huge"): 369_240_518,
    ("finetune1", "base"): 5_820_137,
    ("finetune1", "large"): 46_259_121,
    ("finetune1", "huge"): 369_236_513,
}


def _model(official_name):
    if official_name.startswith("vqnsp"):
        return factory.tokenizer_model(tokenizer.get_config("reference"))
    size = official_name.split("_")[1]
    config = base.get_config(size)
    if "8k_vocab" in official_name:
        return factory.pretrain_model(config, 8192)
    return factory.classifier_model(config, 6)


@pytest.mark.parametrize("kind,size", sorted(EXPECTED))
def test_parameter_counts(kind, size):
    config = base.get_config(size)
    if kind == "pretrain":
        model = factory.pretrain_model(config, 8192)
    else:
        model = factory.classifier_model(config, 6 if kind == "finetune6" else 1)
    assert factory.param_count(factory.abstract_variables(model)) == EXPECTED[(kind, size)]


def test_tokenizer_parameter_count_follows_official_convention():
    variables = factory.abstract_variables(factory.tokenizer_model(tokenizer.get_config()))
    assert factory.param_count(variables) == 8_579_408
    trainable = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(nn.meta.unbox(variables)["params"]))
    assert trainable == 7_522_640


@pytest.mark.parametrize("official_name", sorted(official_names.OFFICIAL_PARAM_COUNTS))
def test_every_official_tensor_has_exactly_one_counterpart(official_name):
    entry = official_names.official_state_dicts()[official_name]
    assert entry["params"] == official_names.OFFICIAL_PARAM_COUNTS[official_name]
    variables = nn.meta.unbox(factory.abstract_variables(_model(official_name)))
    ours = {
        tuple(getattr(k, "key", k) for k in path): leaf.shape
        for path, leaf in jax.tree_util.tree_flatten_with_path(variables)[0]
    }
    seen = {}
    for name, shape in entry["state_dict"].items():
        target = official_names.translate(name)
        key = (target.collection,) + target.path
        assert key in ours, f"{name} -> {key} has no variable here"
        assert key not in seen, f"{name} and {seen.get(key)} both map to {key}"
        seen[key] = name
        assert int(np.prod(shape)) == int(np.prod(ours[key])), (name, shape, ours[key])
        converted = official_names.to_flax(np.zeros(shape), target.kind, ours[key])
        assert converted.shape == ours[key]
        back = official_names.to_official(converted, target.kind, shape)
        assert back.shape == tuple(shape)
    assert set(seen) == set(ours), f"variables without an official tensor: {set(ours) - set(seen)}"


def test_layout_conversions_round_trip_values():
    rng = np.random.default_rng(0)
    for kind, official_shape, ours_shape in [
        ("linear", (600, 200), (200, 3, 10, 20)),
        ("linear", (200, 200), (10, 20, 200)),
        ("conv", (8, 1, 1, 15), (15, 1, 8)),
        ("conv", (200, 64, 1, 1), (64, 200)),
        ("reshape", (1, 129, 200), (129, 200)),
    ]:
        value = rng.standard_normal(official_shape)
        converted = official_names.to_flax(value, kind, ours_shape)
        np.testing.assert_array_equal(official_names.to_official(converted, kind, official_shape), value)
    qkv = rng.standard_normal((600, 200))
    kernel = official_names.to_flax(qkv, "linear", (200, 3, 10, 20))
    # Row h*hd + j of the k block (rows 200..399) is head h, dim j of k.
    np.testing.assert_array_equal(kernel[:, 1, 3, 7], qkv[200 + 3 * 20 + 7])


def test_giant_is_about_a_billion_parameters_with_64_wide_heads():
    """configs/giant.py (ours): ~1B parameters, head dimension a multiple of 64, the temporal conv's
    25 x conv_channels features equal to the width. The count is the closed form of the architecture:
    per block qkv (3 w^2) + proj (w^2 + w) + fc1/fc2 (8 w^2 + 5 w) + 2 norms (4 w) + qk-norms
    (4 head_dim) + 2 layer scales (2 w), plus what does not grow with depth."""
    from configs import giant
    from labram_jax.models.spec import SIZES

    config = giant.get_config()
    spec = SIZES["giant"]
    w, depth, heads = spec["width"], spec["depth"], spec["num_heads"]
    assert (w // heads) % 64 == 0 and w == 25 * spec["conv_channels"]
    count = factory.param_count(factory.abstract_variables(factory.pretrain_model(config, 8192)))
    per_block = 12 * w * w + 12 * w + 4 * (w // heads)
    assert 0.95e9 < count < 1.1e9
    assert count - depth * per_block < 0.05 * count  # the blocks are nearly all of it
    assert config.mesh.fsdp == -1 and config.model.dtype == "bfloat16" and config.model.remat
