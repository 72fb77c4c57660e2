"""The checkpoint package: the model spec in meta, checkpoints of the first format, one resolution."""

from __future__ import annotations

import json

import flax.linen as nn
import jax
import ml_collections
import numpy as np
import pytest

import labram_jax
from configs import base, finetune_tuab, tokenizer
from labram_jax import checkpoints, config_defaults
from labram_jax.checkpoints import model_spec
from labram_jax.models import factory

NAMES = ["FP1", "FP2", "C3"]


def _small_finetune() -> ml_collections.ConfigDict:
    config = finetune_tuab.get_config()
    config.model.update(width=100, depth=1, num_heads=4, max_patches=4)
    return config


def _small_tokenizer() -> ml_collections.ConfigDict:
    config = tokenizer.get_config("reference")
    config.tokenizer.update(
        width=100, num_heads=4, encoder_depth=1, decoder_depth=1, num_codes=16, code_dim=8, max_patches=4
    )
    return config


def _first_format_meta(kind: str, config: ml_collections.ConfigDict, step: int, **extra) -> dict:
    """What `checkpoints.make_meta` wrote before the model spec (format 1): the whole training config."""
    return json.loads(
        json.dumps(
            {"format": "labram_jax.checkpoint/1", "kind": kind, "config": config.to_dict(), "step": step, **extra},
            default=list,
        )
    )


def _eeg(seconds: int = 2) -> np.ndarray:
    return (30 * np.random.default_rng(0).standard_normal((2, len(NAMES), 200 * seconds))).astype(np.float32)


def test_meta_holds_the_model_spec_not_the_training_config():
    config = _small_finetune()
    meta = checkpoints.make_meta("finetune", config, step=5, num_outputs=1)
    assert meta["format"] == checkpoints.FORMAT and "config" not in meta
    spec = meta["model_spec"]
    assert spec["version"] == model_spec.SPEC_VERSION and spec["kind"] == "finetune" and spec["num_outputs"] == 1
    assert set(spec["transformer"]) == set(model_spec.TRANSFORMER_FIELDS)
    assert spec["transformer"]["width"] == 100 and spec["transformer"]["size"] == "base"
    # Training fields can be renamed, added or removed: the spec does not change.
    renamed = config.to_dict()
    renamed["optim"] = {"learning_rate": 1.0}
    del renamed["data"]
    assert checkpoints.make_meta("finetune", renamed, step=5, num_outputs=1)["model_spec"] == spec


def test_first_format_finetune_checkpoint_loads_with_the_same_outputs(tmp_path):
    config = _small_finetune()
    # A first-format config predates some fields of today's (here: dropout rates and the head init scale).
    old_config = ml_collections.ConfigDict(config.to_dict())
    for field in ("drop_rate", "attn_drop_rate", "head_init_scale"):
        del old_config.model[field]
    module = factory.classifier_model(config, 1)
    variables = nn.meta.unbox(factory.init_fn(module, factory.example_batch())(jax.random.PRNGKey(3)))
    checkpoints.write_model(tmp_path / "old", variables, _first_format_meta("finetune", old_config, 3, num_outputs=1))

    loaded = labram_jax.load(tmp_path / "old")
    assert loaded.meta["format"] == checkpoints.FORMAT and loaded.meta["step"] == 3
    assert loaded.meta["model_spec"] == checkpoints.make_meta("finetune", config, 3, num_outputs=1)["model_spec"]
    assert loaded.meta["task"]["kind"] == config.task.kind and loaded.meta["seed"] == config.seed
    eeg = _eeg()
    patches = eeg.reshape(2, len(NAMES), 2, 200)
    ids = np.tile(labram_jax.channels.channel_ids(NAMES), (2, 1))
    masks = (np.ones((2, len(NAMES)), bool), np.ones((2, 2), bool))
    expected = module.apply(variables, patches, ids, *masks)
    np.testing.assert_allclose(loaded.logits(eeg, NAMES), np.asarray(expected), rtol=1e-6, atol=1e-6)


def test_first_format_tokenizer_without_remedy_fields_is_the_reference_quantiser(tmp_path):
    config = _small_tokenizer()
    old_config = ml_collections.ConfigDict(config.to_dict())
    for field in ("restart_threshold", "restart_decay", "entropy_weight", "entropy_temperature", "continuous_steps"):
        del old_config.tokenizer[field]
    module = factory.tokenizer_model(config)
    variables = nn.meta.unbox(factory.init_fn(module, factory.example_batch())(jax.random.PRNGKey(4)))
    checkpoints.write_model(tmp_path / "old", variables, _first_format_meta("tokenizer", old_config, 7))

    loaded = labram_jax.load(tmp_path / "old")
    assert loaded.module == module  # same architecture, reference quantiser (no restart or entropy state)
    quantizer = loaded.module.quantizer_spec
    assert (quantizer.restart_threshold, quantizer.entropy_weight, quantizer.continuous_steps) == (0.0, 0.0, 0)
    codes = loaded.codes(_eeg(), NAMES)
    assert codes.shape == (2, len(NAMES) * 2) and codes.max() < 16


def test_first_format_pretrain_meta_upgrades_to_its_vocabulary():
    config = base.get_config("base")  # a first-format pre-training config held the tokenizer's architecture
    config.tokenizer = config_defaults.tokenizer_model_config()
    config.tokenizer.num_codes = 512
    meta = checkpoints.upgrade_meta(_first_format_meta("pretrain", config, 1))
    assert meta["model_spec"]["vocab_size"] == 512 and "config" not in meta
    assert checkpoints.build_model(meta).vocab_size == 512


def test_unknown_format_and_spec_version_name_the_fix(tmp_path):
    with pytest.raises(checkpoints.CheckpointError, match="unknown checkpoint format 'other/9'"):
        checkpoints.upgrade_meta({"format": "other/9"}, where="here")
    meta = checkpoints.make_meta("tokenizer", _small_tokenizer(), 0)
    meta["model_spec"]["version"] = model_spec.SPEC_VERSION + 1
    with pytest.raises(checkpoints.CheckpointError, match="upgrade labram_jax"):
        checkpoints.upgrade_meta(meta)


def test_locate_resolves_a_workdir_once_to_its_best_step(tmp_path):
    meta = checkpoints.make_meta("tokenizer", _small_tokenizer(), 0)
    for step, value in ((1, 0.5), (2, 0.9), (3, 0.7)):
        checkpoints.write_model(
            tmp_path / "run" / checkpoints.BEST_DIR,
            {"params": {"w": np.zeros(2)}},
            {**meta, "step": step, "monitor_value": value, "monitor_mode": "max"},
            step=step,
        )
    where = checkpoints.locate(tmp_path / "run")
    assert (where.step, where.meta["step"]) == (2, 2) and where.path.endswith(f"{checkpoints.BEST_DIR}/2")
    assert checkpoints.locate(where) is where
