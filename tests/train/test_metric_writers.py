import json
import math
import os

import numpy as np
import pytest

from labram_jax.train.metric_writers import MetricWriter, read_metrics


def _lines(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_writes_jsonl_and_tensorboard(tmp_path):
    workdir = str(tmp_path / "run")
    with MetricWriter(workdir) as writer:
        writer.write(0, "train", {"loss": 2.5, "lr": np.float32(1e-4)})
        writer.write(10, "validation", {"roc_auc": 0.75})
    assert _lines(workdir) == [
        {"step": 0, "split": "train", "loss": 2.5, "lr": pytest.approx(1e-4)},
        {"step": 10, "split": "validation", "roc_auc": 0.75},
    ]
    tb = os.listdir(os.path.join(workdir, "tensorboard"))
    assert any(name.startswith("events.out.tfevents") for name in tb)
    records = read_metrics(workdir)
    assert [(r["split"], r["step"]) for r in records] == [("train", 0), ("validation", 10)]


def test_resume_appends_and_read_keeps_last_record(tmp_path):
    workdir = str(tmp_path)
    with MetricWriter(workdir) as first:
        for step in (0, 10, 20, 30):
            first.write(step, "train", {"loss": 100.0 + step})
        first.write(20, "validation", {"accuracy": 0.5})
    # Resumed from the step-20 checkpoint: steps 20 and 30 are logged again.
    with MetricWriter(workdir) as second:
        for step in (20, 30, 40):
            second.write(step, "train", {"loss": float(step)})
    assert len(_lines(workdir)) == 8
    records = read_metrics(workdir)
    train = [(r["step"], r["loss"]) for r in records if r["split"] == "train"]
    assert train == [(0, 100.0), (10, 110.0), (20, 20.0), (30, 30.0), (40, 40.0)]
    assert [r["accuracy"] for r in records if r["split"] == "validation"] == [0.5]


def test_non_finite_values_are_null_in_json_and_nan_on_read(tmp_path):
    workdir = str(tmp_path)
    with MetricWriter(workdir) as writer:
        writer.write(1, "validation", {"roc_auc": float("nan"), "loss": float("inf"), "acc": 1.0})
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        text = f.read()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"step": 1, "split": "validation", "roc_auc": None, "loss": None, "acc": 1.0}
    (record,) = read_metrics(workdir)
    assert math.isnan(record["roc_auc"]) and math.isnan(record["loss"]) and record["acc"] == 1.0


def test_disabled_writer_writes_nothing(tmp_path):
    workdir = tmp_path / "rank1"
    with MetricWriter(str(workdir), enabled=False) as writer:
        writer.write(0, "train", {"loss": 1.0})
    assert not workdir.exists()
    assert read_metrics(str(workdir)) == []


def test_reserved_names_and_truncated_line(tmp_path):
    workdir = str(tmp_path)
    with MetricWriter(workdir) as writer:
        with pytest.raises(ValueError, match="clash"):
            writer.write(0, "train", {"step": 1.0})
        writer.write(0, "train", {"loss": 1.0})
    with open(os.path.join(workdir, "metrics.jsonl"), "a") as f:
        f.write('{"step": 5, "split": "tr')  # killed mid-write
    with pytest.warns(UserWarning, match="unreadable"):
        records = read_metrics(workdir)
    assert records == [{"step": 0, "split": "train", "loss": 1.0}]
