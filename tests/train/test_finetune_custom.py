"""Fine-tuning on a user's own labelled EEG: `configs/finetune_custom.py` on tiny `eeg_labelled` datasets,
partial fine-tuning, and the multi-seed table."""

from __future__ import annotations

import csv
import json
import os

import jax
import mne
import numpy as np
import pytest
import tensorflow_datasets as tfds

from configs import finetune_custom
from labram_jax import checkpoints
from labram_jax.config_errors import ConfigError
from labram_jax.models import factory
from labram_jax.train import seeds as seeds_lib
from labram_jax.train import task_from_data
from labram_jax.train.loop import run
from labram_jax.train.metric_writers import read_metrics
from tests.train.tiny_configs import TINY_BACKBONE
from tfds_builders.eeg_labelled import EegLabelled, labelled_config

pytestmark = pytest.mark.slow  # whole training runs or subprocesses: `-m "not slow"` skips them

SFREQ = 250.0
CHANNELS = ["Fp1", "Fp2", "C3", "C4", "O1", "O2"]


def _trial_signal(rng, seconds, onsets_labels):
    """Volts: noise plus, after each onset, 4 s of 10 Hz (class 0) or 22 Hz (class 1) on the C channels."""
    n = int(seconds * SFREQ)
    t = np.arange(n) / SFREQ
    x = rng.standard_normal((len(CHANNELS), n)) * 5.0
    for onset, label in onsets_labels:
        span = (t >= onset) & (t < onset + 4.0)
        x[2:4, span] += 40.0 * np.sin(2 * np.pi * (10.0 if label == 0 else 22.0) * t[span])
    return x * 1e-6


def _write_edf(path, data, annotations):
    raw = mne.io.RawArray(data, mne.create_info(CHANNELS, SFREQ, "eeg"), verbose="error")
    onsets, descriptions = zip(*annotations)
    raw.set_annotations(mne.Annotations(list(onsets), [0.0] * len(onsets), list(descriptions)))
    path.parent.mkdir(parents=True, exist_ok=True)
    mne.export.export_raw(str(path), raw, fmt="edf", physical_range="channelwise", overwrite=True, verbose="error")


@pytest.fixture(scope="module")
def events_data(tmp_path_factory):
    """6 subjects x 1 run of 12 trials (T1 = left, T2 = right), 4-s records: 72 records."""
    root = tmp_path_factory.mktemp("mi_recordings")
    rng = np.random.default_rng(0)
    for s in range(6):
        labels = rng.permutation([0, 1] * 6)
        onsets = [2.0 + 5.0 * i for i in range(len(labels))]
        data = _trial_signal(rng, 64.0, list(zip(onsets, labels)))
        _write_edf(
            root / f"sub-{s:02d}" / "eeg" / f"sub-{s:02d}_task-mi_eeg.edf",
            data,
            [(o, "T1" if lab == 0 else "T2") for o, lab in zip(onsets, labels)],
        )
    data_dir = str(tmp_path_factory.mktemp("mi_data"))
    config = labelled_config(manual_dir=root, events="T1=left,T2=right", tmin=0, tmax=4, name="mi")
    EegLabelled(config=config, data_dir=data_dir).download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(root))
    )
    return data_dir


@pytest.fixture(scope="module")
def regression_data(tmp_path_factory):
    """A table of 8 recordings (8 s each -> two 4-s windows) with a target equal to the 10 Hz amplitude."""
    root = tmp_path_factory.mktemp("reg_recordings")
    rng = np.random.default_rng(1)
    rows = []
    for i in range(8):
        amp = float(rng.uniform(5, 50))
        t = np.arange(int(8 * SFREQ)) / SFREQ
        x = rng.standard_normal((len(CHANNELS), t.size)) * 3.0
        x[2:4] += amp * np.sin(2 * np.pi * 10 * t)
        raw = mne.io.RawArray(x * 1e-6, mne.create_info(CHANNELS, SFREQ, "eeg"), verbose="error")
        path = root / f"p{i}.edf"
        mne.export.export_raw(str(path), raw, fmt="edf", physical_range="channelwise", verbose="error")
        rows.append({"path": path.name, "label": f"{amp:.3f}", "subject": f"p{i}"})
    table = root / "labels.csv"
    with open(table, "w", newline="") as f:
        w = csv.DictWriter(f, ["path", "label", "subject"])
        w.writeheader()
        w.writerows(rows)
    data_dir = str(tmp_path_factory.mktemp("reg_data"))
    config = labelled_config(manual_dir=root, table=str(table), window=4, name="amp")
    EegLabelled(config=config, data_dir=data_dir).download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(root))
    )
    return data_dir


def _custom(data_dir, dataset, mode="full", steps=12, lr=3e-3):
    config = finetune_custom.get_config(f"base,{mode}", dataset=dataset)
    config.model.update(TINY_BACKBONE)
    config.data.data_dir = data_dir
    config.optim.update(dict(batch_size=8, epochs=100, warmup_epochs=0, warmup_steps=1, lr=lr, min_lr=lr))
    config.max_steps = steps
    config.log.update(dict(every_steps=1, progress=False))
    config.checkpoint.every_steps = steps
    config.eval.every_epochs = 0
    return config


def test_task_read_from_dataset_metadata(events_data, regression_data):
    c = task_from_data.resolve(_custom(events_data, "eeg_labelled/mi"))
    assert (c.task.kind, c.task.num_outputs, tuple(c.task.class_names)) == ("binary", 1, ("left", "right"))
    assert (c.data.max_channels, c.data.max_patches, c.task.label_smoothing) == (6, 4, 0.0)
    assert c.data.train == "eeg_labelled/mi:train" and c.data.test == "eeg_labelled/mi:test"
    r = task_from_data.resolve(_custom(regression_data, "eeg_labelled/amp"))
    assert (r.task.kind, r.task.num_outputs, tuple(r.task.class_names)) == ("regression", 1, ())
    # Longer records than the model reads: refused with the fix.
    long = _custom(events_data, "eeg_labelled/mi")
    long.model.max_patches = 2
    with pytest.raises(ConfigError, match=r"4 s long but the model reads at most 2 s.*Rebuild"):
        task_from_data.resolve(long)
    with pytest.raises(
        ConfigError,
        match=r"(?s)not built.*python -m tfds_builders.build eeg_labelled --config=nope --manual_dir=.*--events=",
    ):
        task_from_data.resolve(_custom(events_data, "eeg_labelled/nope"))


def test_finetune_custom_binary_loss_goes_down(events_data, tmp_path):
    results = run(_custom(events_data, "eeg_labelled/mi", steps=24), str(tmp_path))
    losses = [r["loss"] for r in read_metrics(str(tmp_path)) if r["split"] == "train"]
    assert len(losses) == 24
    assert np.mean(losses[-6:]) < np.mean(losses[:6])
    test = results["test"]["eeg_labelled/mi:test"]
    assert {"balanced_accuracy", "roc_auc"} <= set(test)
    meta = checkpoints.read_meta(str(tmp_path))
    assert meta["task"]["kind"] == "binary" and meta["model_spec"]["num_outputs"] == 1


def test_finetune_custom_regression_runs(regression_data, tmp_path):
    results = run(_custom(regression_data, "eeg_labelled/amp", steps=16, lr=1e-2), str(tmp_path))
    losses = [r["loss"] for r in read_metrics(str(tmp_path)) if r["split"] == "train"]
    assert np.mean(losses[-4:]) < np.mean(losses[:4])
    test = results["test"]["eeg_labelled/amp:test"]
    assert {"r2", "rmse", "pearson_r"} <= set(test)


def _init_checkpoint(path, config):
    """A fine-tuning checkpoint of the tiny backbone with random weights (the `init_checkpoint`)."""
    c = task_from_data.resolve(config)
    model = factory.classifier_model(c, c.task.num_outputs)
    variables = jax.jit(factory.init_fn(model, factory.example_batch(1, 6, 4)))(jax.random.key(7))
    from flax import linen as nn

    variables = nn.meta.unbox(variables)
    checkpoints.write_model(
        path, variables, checkpoints.make_meta("finetune", c, step=0, num_outputs=c.task.num_outputs)
    )
    return variables


@pytest.mark.parametrize("mode, trained_blocks", [("linear_probe", ()), ("last1", ("blocks_0",))])
def test_partial_finetuning_freezes_the_backbone(events_data, tmp_path, mode, trained_blocks):
    config = _custom(events_data, "eeg_labelled/mi", mode=mode, steps=4)
    init = _init_checkpoint(str(tmp_path / "init"), config)
    config.init_checkpoint = str(tmp_path / "init")
    run(config, str(tmp_path / "run"))
    restored = checkpoints.restore_model(
        str(tmp_path / "run" / "checkpoints"), jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), init)
    )[0]
    before, after = init["params"], restored["params"]
    for name in before["backbone"]:
        same = jax.tree.map(
            lambda a, b: bool(np.array_equal(np.asarray(a), np.asarray(b))),
            before["backbone"][name],
            after["backbone"][name],
        )
        assert all(jax.tree.leaves(same)) == (name not in trained_blocks), name
    assert not np.array_equal(before["head"]["kernel"], after["head"]["kernel"])


def test_seed_table_mean_and_std(tmp_path):
    per_seed = {
        0: {"d:test": {"acc": 0.5, "auc": 0.9}},
        1: {"d:test": {"acc": 0.7, "auc": 0.8}},
        2: {"d:test": {"acc": 0.6}},
    }
    table = seeds_lib.aggregate(per_seed)
    assert table["d:test"]["acc"]["mean"] == pytest.approx(0.6)
    assert table["d:test"]["acc"]["std"] == pytest.approx(0.1)  # sample std of 0.5, 0.7, 0.6
    assert table["d:test"]["auc"] == {
        "mean": pytest.approx(0.85),
        "std": pytest.approx(np.sqrt(0.005)),
        "n": 2,
        "values": [0.9, 0.8],
    }
    md = seeds_lib.markdown(table, [0, 1, 2])
    assert "| acc | 0.6000 ± 0.1000 | 0.5000 | 0.7000 | 0.6000 |" in md

    calls = []

    def fake_run(config, workdir):
        calls.append((config.seed, workdir, config.seeds))
        return {"test": {"d:test": {"acc": 0.5 + 0.1 * config.seed}}}

    config = finetune_custom.get_config()
    config.seeds = "0,1,2"
    result = seeds_lib.run_seeds(config, str(tmp_path), fake_run)
    assert calls == [(s, str(tmp_path / f"seed_{s}"), "") for s in (0, 1, 2)]
    saved = json.loads((tmp_path / seeds_lib.SEEDS_JSON).read_text())
    assert saved["test"]["d:test"]["acc"]["mean"] == pytest.approx(0.6) == result["test"]["d:test"]["acc"]["mean"]
    assert "0.6000 ± 0.1000" in (tmp_path / seeds_lib.SEEDS_MD).read_text()
    with pytest.raises(ConfigError, match="comma-separated integers"):
        seeds_lib.parse_seeds("0,x")


def test_seeds_through_the_real_loop(events_data, tmp_path):
    config = _custom(events_data, "eeg_labelled/mi", steps=2)
    config.seeds = "3,4"
    result = run(config, str(tmp_path))
    for s in (3, 4):
        assert os.path.isfile(tmp_path / f"seed_{s}" / "results.json")
        assert checkpoints.read_meta(str(tmp_path / f"seed_{s}"))["seed"] == s
    per_seed = [
        json.loads((tmp_path / f"seed_{s}" / "results.json").read_text())["test"]["eeg_labelled/mi:test"]
        for s in (3, 4)
    ]
    acc = result["test"]["eeg_labelled/mi:test"]["balanced_accuracy"]
    values = [r["balanced_accuracy"] for r in per_seed]
    assert acc["values"] == values and acc["mean"] == pytest.approx(np.mean(values))
    assert acc["std"] == pytest.approx(np.std(values, ddof=1))
