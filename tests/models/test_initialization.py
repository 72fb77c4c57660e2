"""Initialisation follows §1.8, and every parameter carries logical axis names."""

import flax.linen as nn
import jax
import numpy as np
import pytest

from configs import base, tokenizer
from labram_jax import logical_axes
from labram_jax.models import factory


@pytest.fixture(scope="module")
def finetune_params():
    model = factory.classifier_model(base.get_config("base"), 6)
    return nn.meta.unbox(jax.jit(factory.init_fn(model, factory.example_batch()))(jax.random.PRNGKey(0)))["params"]


@pytest.fixture(scope="module")
def pretrain_params():
    model = factory.pretrain_model(base.get_config("base"), 8192)
    return nn.meta.unbox(jax.jit(factory.init_fn(model, factory.example_batch()))(jax.random.PRNGKey(1)))["params"]


def test_finetune_init(finetune_params):
    p = finetune_params
    blocks = p["backbone"]
    fc1 = np.asarray(blocks["blocks_0"]["mlp"]["fc1"]["kernel"])
    assert abs(fc1.std() - 0.02) < 0.001 and np.abs(fc1).max() > 0.06  # +-2 absolute: no practical truncation
    for i in (0, 5, 11):  # fix_init_weight: proj and fc2 divided by sqrt(2 (i + 1))
        for name in ("attn/proj", "mlp/fc2"):
            module, leaf = name.split("/")
            w = np.asarray(blocks[f"blocks_{i}"][module][leaf]["kernel"])
            np.testing.assert_allclose(w.std(), 0.02 / np.sqrt(2 * (i + 1)), rtol=0.05)
    head = np.asarray(p["head"]["kernel"])
    np.testing.assert_allclose(head.std(), 0.02 * 0.001, rtol=0.15)
    assert np.all(np.asarray(p["head"]["bias"]) == 0)
    conv1 = np.asarray(blocks["patch_embed"]["conv1"]["kernel"])  # PyTorch default: U(+-1/sqrt(15))
    assert np.abs(conv1).max() <= 1 / np.sqrt(15) and np.abs(conv1).max() > 0.5 / np.sqrt(15)
    assert np.all(np.asarray(blocks["blocks_3"]["gamma_1"]) == np.float32(0.1))
    assert np.all(np.asarray(blocks["blocks_3"]["attn"]["q_norm"]["scale"]) == 1)
    assert np.all(np.asarray(p["fc_norm"]["bias"]) == 0)
    pos = np.asarray(blocks["pos_embed"])
    assert abs(pos.std() - 0.02) < 0.001


def test_pretrain_init_uses_one_sigma_truncation(pretrain_params):
    p = pretrain_params
    student = p["student"]["backbone"]
    for w in (
        student["blocks_0"]["mlp"]["fc1"]["kernel"],
        student["patch_embed"]["conv2"]["kernel"],
        p["student"]["mask_token"],
        student["pos_embed"],
        p["lm_head"]["kernel"],
    ):
        w = np.asarray(w)
        assert np.abs(w).max() <= 0.02 + 1e-7
    fc1 = np.asarray(student["blocks_0"]["mlp"]["fc1"]["kernel"])
    np.testing.assert_allclose(fc1.std(), 0.02 * 0.5396, rtol=0.03)  # std of N(0,1) truncated at +-1
    assert np.all(np.asarray(student["patch_embed"]["conv1"]["bias"]) == 0)
    bias = np.asarray(p["lm_head"]["bias"])  # keeps PyTorch's default U(+-1/sqrt(d))
    assert np.abs(bias).max() <= 1 / np.sqrt(200) and bias.std() > 0.5 / np.sqrt(200) / np.sqrt(3)


@pytest.mark.parametrize("which", ["pretrain", "finetune", "tokenizer"])
def test_every_parameter_has_logical_axis_names(which):
    config = base.get_config("base")
    model = {
        "pretrain": lambda: factory.pretrain_model(config, 8192),
        "finetune": lambda: factory.classifier_model(config, 2),
        "tokenizer": lambda: factory.tokenizer_model(tokenizer.get_config()),
    }[which]()
    variables = factory.abstract_variables(model)
    boxed = jax.tree_util.tree_leaves(variables["params"], is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
    assert boxed and all(isinstance(x, nn.LogicallyPartitioned) for x in boxed)
    for leaf in boxed:
        assert len(leaf.names) == leaf.value.ndim
        assert set(leaf.names) <= set(logical_axes.ALL)
    specs = nn.get_partition_spec(variables)
    assert jax.tree_util.tree_leaves(specs["params"], is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec))
