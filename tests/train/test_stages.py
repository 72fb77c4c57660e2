"""Every stage runs end to end through `labram_jax.train.loop.run` on the demo data, and learns."""

from __future__ import annotations

import json
import os

import flax.linen as nn
import jax
import numpy as np
import pytest

from labram_jax import checkpoints
from labram_jax.models import factory
from labram_jax.models.neural_transformer import NeuralTransformer
from labram_jax.train.loop import Trainer, run
from labram_jax.train.metric_writers import read_metrics
from tests.train.tiny_configs import tiny_config

pytestmark = pytest.mark.slow  # whole training runs or subprocesses: `-m "not slow"` skips them


def train_losses(workdir: str) -> list[float]:
    return [r["loss"] for r in read_metrics(workdir) if r["split"] == "train"]


def assert_learns(workdir: str, steps: int) -> None:
    losses = train_losses(workdir)
    assert len(losses) == steps
    assert np.all(np.isfinite(losses))
    # Step 1 runs at lr 0 (warm-up from 0), so compare the first two steps with the last two.
    assert np.mean(losses[-2:]) < np.mean(losses[:2]), losses


@pytest.fixture(scope="module")
def tokenizer_dir(demo_data_dir, tmp_path_factory) -> str:
    workdir = str(tmp_path_factory.mktemp("tokenizer"))
    config = tiny_config("tokenizer", demo_data_dir, steps=8)
    config.data.validation = "demo/tuab:validation"
    run(config, workdir)
    return workdir


@pytest.fixture(scope="module")
def pretrain_dir(demo_data_dir, tokenizer_dir, tmp_path_factory) -> str:
    workdir = str(tmp_path_factory.mktemp("pretrain"))
    config = tiny_config("pretrain", demo_data_dir, steps=8)
    config.tokenizer.checkpoint = tokenizer_dir
    run(config, workdir)
    return workdir


def test_tokenizer_stage(tokenizer_dir):
    assert_learns(tokenizer_dir, 8)
    with open(os.path.join(tokenizer_dir, "results.json")) as f:
        results = json.load(f)
    val = results["validation"]["demo/tuab:validation"]
    for key in ("rec_loss", "rec_angle_loss", "quant_loss", "perplexity", "unused_codes"):
        assert np.isfinite(val[key]), key
    assert 1.0 <= val["perplexity"] <= 16
    assert os.path.isfile(os.path.join(tokenizer_dir, "plots", "codebook_usage.png"))
    meta = checkpoints.read_meta(tokenizer_dir)
    assert meta["kind"] == "tokenizer" and meta["step"] == 8


def test_pretrain_stage(pretrain_dir):
    assert_learns(pretrain_dir, 8)
    records = [r for r in read_metrics(pretrain_dir) if r["split"] == "train"]
    assert {"mlm_acc", "mlm_acc_sym", "loss_rec", "grad_norm", "lr"} <= set(records[-1])
    assert checkpoints.read_meta(pretrain_dir)["kind"] == "pretrain"


def test_finetune_stage_from_pretrained_backbone(demo_data_dir, pretrain_dir, tmp_path):
    config = tiny_config("finetune_tuab", demo_data_dir, steps=8)
    config.init_checkpoint = pretrain_dir
    workdir = str(tmp_path / "finetune")
    results = run(config, workdir)
    assert_learns(workdir, 8)
    test = results["test"]["demo/tuab:test"]
    for key in ("balanced_accuracy", "roc_auc", "pr_auc", "accuracy", "loss"):
        assert np.isfinite(test[key]), key
    assert os.path.isfile(os.path.join(workdir, "plots", "confusion_matrix.png"))
    assert os.path.isfile(os.path.join(workdir, "plots", "loss_curves.png"))


def test_finetune_really_loads_the_backbone(demo_data_dir, pretrain_dir, tmp_path):
    config = tiny_config("finetune_tuab", demo_data_dir)
    config.init_checkpoint = pretrain_dir
    trainer = Trainer(config, str(tmp_path))
    with jax.set_mesh(trainer.mesh), nn.logical_axis_rules(trainer.rules):
        loaded, note = trainer._fresh_state()
        fresh = trainer.init_state(trainer.init_rng)
    assert note is not None and pretrain_dir in note
    meta = checkpoints.read_meta(pretrain_dir)
    module = checkpoints.build_model(meta)
    abstract = nn.meta.unbox(factory.abstract_variables(module))
    saved, _ = checkpoints.restore_model(pretrain_dir, abstract)
    expected = saved["params"]["student"]["backbone"]
    for a, b in zip(jax.tree.leaves(jax.device_get(loaded.params["backbone"])), jax.tree.leaves(expected)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # The pre-trained backbone gives the checkpoint's features; a random one does not.
    batch = factory.example_batch(2, 3, 4)
    batch["eeg"] = np.random.default_rng(0).normal(0, 30, batch["eeg"].shape).astype(np.float32)
    backbone = trainer.stage.model.bind({"params": jax.device_get(loaded.params)}).backbone
    ours = backbone(batch["eeg"], batch["channel_ids"], batch["channel_mask"], batch["patch_mask"])
    ref = NeuralTransformer(trainer.stage.model.spec).apply(
        {"params": expected}, batch["eeg"], batch["channel_ids"], batch["channel_mask"], batch["patch_mask"]
    )
    np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), rtol=1e-5, atol=1e-5)
    rnd = NeuralTransformer(trainer.stage.model.spec).apply(
        {"params": jax.device_get(fresh.params["backbone"])},
        batch["eeg"],
        batch["channel_ids"],
        batch["channel_mask"],
        batch["patch_mask"],
    )
    assert not np.allclose(np.asarray(rnd), np.asarray(ref), atol=1e-3)
    # fc_norm and the head stay freshly initialised (ref. §6.2).
    for key in ("fc_norm", "head"):
        for a, b in zip(
            jax.tree.leaves(jax.device_get(loaded.params[key])), jax.tree.leaves(jax.device_get(fresh.params[key]))
        ):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_multiclass_finetune_and_evaluate_stage(demo_data_dir, tmp_path):
    config = tiny_config("finetune_tuev", demo_data_dir, steps=6)
    workdir = str(tmp_path / "tuev")
    results = run(config, workdir)
    assert_learns(workdir, 6)
    test = results["test"]["demo/tuev:test"]
    assert {"balanced_accuracy", "cohen_kappa", "f1_weighted", "accuracy"} <= set(test)
    config.stage = "evaluate"
    config.init_checkpoint = workdir
    again = run(config, str(tmp_path / "evaluate"))
    # The evaluate stage on the selected checkpoint reproduces the fine-tuning run's test metrics.
    for key, value in test.items():
        assert again["test"]["demo/tuev:test"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_bf16_finetune_learns_and_keeps_float32_parameters(demo_data_dir, tmp_path):
    """`model.dtype=bfloat16` through the real loop: the bf16 products (ops/linear, ops/attention) train,
    and what is optimised and saved stays float32."""
    config = tiny_config("finetune_tuev", demo_data_dir, steps=8)
    config.model.dtype = "bfloat16"
    workdir = str(tmp_path / "bf16")
    results = run(config, workdir)
    assert_learns(workdir, 8)
    assert np.isfinite(results["test"]["demo/tuev:test"]["balanced_accuracy"])
    meta = checkpoints.read_meta(workdir)
    module = checkpoints.build_model(meta)
    abstract = nn.meta.unbox(factory.abstract_variables(module))
    saved, _ = checkpoints.restore_model(workdir, abstract)
    dtypes = {str(np.asarray(x).dtype) for x in jax.tree.leaves(saved["params"])}
    assert dtypes == {"float32"}, dtypes
