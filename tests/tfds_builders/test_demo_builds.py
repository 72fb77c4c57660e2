"""End-to-end builds of the demo dataset: EDF files written by the test, built by the real TUAB/TUEV code."""

import math
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from labram_jax.channels import TUH_CHANNELS, channel_id
from labram_jax.data.report import load_report
from labram_jax.data.windows import circular_segment
from tfds_builders.common import REPORT_NAME
from tfds_builders.demo import Demo, DemoConfig
from tfds_builders.tuev import read_rec

SPLITS = ("train", "validation", "test")
TUH_IDS = [channel_id(c) for c in TUH_CHANNELS]


def _build(data_dir, workers, **overrides):
    kw = dict(
        name="tiny_tuab",
        kind="tuab",
        train_subjects=6,
        eval_subjects=4,
        seconds=40.0,
        window_seconds=10.0,
        split_seed=12345,
        seed=0,
    )
    kw.update(overrides)
    builder = Demo(config=DemoConfig(**kw), data_dir=str(data_dir), workers=workers)
    builder.download_and_prepare()
    return builder


def _sources(builder):
    name = f"demo/{builder.builder_config.name}"
    return {s: tfds.data_source(name, data_dir=str(builder._data_dir_root), split=s, download=False) for s in SPLITS}


@pytest.fixture(scope="module")
def tuab_builds(tmp_path_factory):
    # Same dataset twice: in this process and with two worker processes.
    return (_build(tmp_path_factory.mktemp("a"), workers=1), _build(tmp_path_factory.mktemp("b"), workers=2))


def test_tuab_records(tuab_builds):
    builder = tuab_builds[0]
    srcs = _sources(builder)
    edf_root = Path(builder.info.metadata["edf_root"])
    label_of = {p.stem: ("abnormal" in p.parts) * 1 for p in edf_root.rglob("*.edf")}
    for _split, src in srcs.items():
        assert len(src) > 0
        for i in range(len(src)):
            rec = src[i]
            assert rec["signal"].shape == (23, 2000) and rec["signal"].dtype == np.float32
            assert rec["channel_ids"].tolist() == TUH_IDS
            rid = rec["recording_id"].decode()
            assert rec["label"] == label_of[rid]
            assert rec["start"] % 2000 == 0 and rec["subject_id"].decode() == rid.split("_")[0]
    # 40-s recordings -> floor(40 / 10) windows each; every file read.
    report = load_report(os.path.join(str(builder.data_dir), REPORT_NAME))
    s = report["summary"]
    assert s["files_found"] == s["files_read"] == len(label_of)
    assert s["units_written"] == 4 * len(label_of) == sum(len(src) for src in srcs.values())
    for split, src in srcs.items():
        assert s["per_split"][split]["units_written"] == len(src)
    assert all(set(f["channels_dropped"]) == {"EEG EKG1-REF", "PHOTIC-REF"} for f in report["files"])


def test_splits_reproducible_and_disjoint_by_subject(tuab_builds):
    a, b = tuab_builds
    assert a.info.metadata["subjects"] == b.info.metadata["subjects"]
    src_a, src_b = _sources(a), _sources(b)
    subjects = {}
    for split in SPLITS:
        assert len(src_a[split]) == len(src_b[split])
        for i in range(len(src_a[split])):  # identical records, in the identical order
            ra, rb = src_a[split][i], src_b[split][i]
            assert ra["recording_id"] == rb["recording_id"] and ra["start"] == rb["start"]
            np.testing.assert_array_equal(ra["signal"], rb["signal"])
        subjects[split] = {src_a[split][i]["subject_id"].decode() for i in range(len(src_a[split]))}
        assert subjects[split] == set(a.info.metadata["subjects"][split])
    assert not subjects["train"] & subjects["validation"]
    assert not subjects["train"] & subjects["test"]
    assert not subjects["validation"] & subjects["test"]
    # Subjects with two sessions exist, and all their recordings share one split.
    assert any(
        rid.endswith("_s002_t000")
        for rid in {src_a["train"][i]["recording_id"].decode() for i in range(len(src_a["train"]))}
        | {src_a["validation"][i]["recording_id"].decode() for i in range(len(src_a["validation"]))}
    )


def test_demo_classes_are_learnable(tuab_builds):
    """A linear model on log band powers separates the synthetic normal and abnormal windows."""
    from sklearn.linear_model import LogisticRegression

    srcs = _sources(tuab_builds[0])

    def features(src):
        x, y = [], []
        for i in range(len(src)):
            rec = src[i]
            spec = np.abs(np.fft.rfft(rec["signal"], axis=1)) ** 2
            f = np.fft.rfftfreq(2000, 1 / 200)
            bands = [(1, 4), (4, 8), (8, 13), (13, 30)]
            x.append(np.log([spec[:, (f >= lo) & (f < hi)].mean() for lo, hi in bands]))
            y.append(rec["label"])
        return np.array(x), np.array(y)

    x_tr, y_tr = features(srcs["train"])
    x_te, y_te = features(srcs["test"])
    assert set(y_tr) == {0, 1} and set(y_te) == {0, 1}
    clf = LogisticRegression().fit(x_tr, y_tr)
    assert clf.score(x_te, y_te) > 0.9


def test_tuev_events(tmp_path):
    builder = _build(
        tmp_path,
        workers=1,
        name="tiny_tuev",
        kind="tuev",
        train_subjects=4,
        eval_subjects=2,
        seconds=40.0,
        window_seconds=5.0,
        split_seed=4523,
        seed=3,
    )
    srcs = _sources(builder)
    edf_root = Path(builder.info.metadata["edf_root"])
    expected = {}
    for rec_file in edf_root.rglob("*.rec"):
        rid = str(rec_file.relative_to(edf_root).with_suffix("")).replace(os.sep, "/")
        events, bad = read_rec(rec_file)
        assert bad == 0 and events
        expected[rid] = sorted((math.ceil(e.start * 200 - 1e-6) - 400, e.label, e.channel) for e in events)
    got = {}
    for _split, src in srcs.items():
        for i in range(len(src)):
            rec = src[i]
            assert rec["signal"].shape == (23, 1000)  # 2 s + 1-s event + 2 s at 200 Hz
            assert 0 <= rec["label"] < 6
            got.setdefault(rec["recording_id"].decode(), []).append((rec["start"], rec["label"], rec["event_channel"]))
    assert {k: sorted(v) for k, v in got.items()} == expected  # one record per .rec row, at the right sample
    assert set(builder.info.metadata["label_names"]) == {"spsw", "gped", "pled", "eyem", "artf", "bckg"}
    s = builder.report.summary()
    assert s["units_written"] == sum(len(v) for v in expected.values()) == sum(len(x) for x in srcs.values())


def test_event_context_wraps_around_like_the_reference():
    """make_TUEV.py tiles the signal three times: context before the start comes from the end."""
    signal = np.arange(3 * 50).reshape(3, 50)
    tiled = np.concatenate([signal, signal, signal], axis=1)
    for start in (-30, -5, 0, 20, 45):
        np.testing.assert_array_equal(circular_segment(signal, start, 40), tiled[:, 50 + start : 50 + start + 40])


def test_open_tfds_expands_home_and_names_the_build_command(tuab_builds, monkeypatch):
    from labram_jax.data import loaders

    root = Path(str(tuab_builds[0]._data_dir_root))
    monkeypatch.setenv("HOME", str(root.parent))
    src = loaders.open_tfds("demo/tiny_tuab", f"~/{root.name}", "train")
    assert len(src) == len(_sources(tuab_builds[0])["train"])
    with pytest.raises(FileNotFoundError, match="python -m tfds_builders.build demo"):
        loaders.open_tfds("demo/tiny_tuab", f"~/{root.name}-missing", "train")


def test_demo_patches_vary_beyond_a_stationary_signal():
    """The generator's promise to the tokenizer: 1-s patches differ (states, bursts, transients). The statistic
    is ~1 for a stationary signal; EEGMMI S001 scores 1.15-1.24 and the first demo generator scored at most
    1.18 (synth.patch_nonstationarity)."""
    from tfds_builders.demo import synth

    rng = np.random.default_rng(0)
    stationary = synth._pink(rng, (23, 120 * 200), 200.0)
    assert 0.9 < synth.patch_nonstationarity(stationary, rng) < 1.1
    for abnormal in (False, True):
        for seed in range(3):
            x = synth.background(np.random.default_rng(seed), 120.0, abnormal, sfreq=200.0)
            assert synth.patch_nonstationarity(x, rng) > 1.3, (abnormal, seed)


def test_corpus_config_writes_unlabelled_windows_split_by_recording(tmp_path):
    builder = _build(
        tmp_path,
        workers=1,
        name="tiny_corpus",
        kind="corpus",
        train_subjects=5,
        seconds=30.0,
        window_seconds=10.0,
        split_seed=7,
        seed=2,
        val_fraction=0.2,
    )
    srcs = {
        s: tfds.data_source("demo/tiny_corpus", data_dir=str(tmp_path), split=s, download=False)
        for s in ("train", "validation")
    }
    assert builder.info.metadata["subjects"]["validation"] and builder.info.metadata["subjects"]["train"]
    assert sum(len(s) for s in srcs.values()) == 5 * 3  # three 10-s windows per 30-s recording
    for src in srcs.values():
        for i in range(len(src)):
            rec = src[i]
            assert rec["label"] == -1 and rec["signal"].shape == (23, 2000)
            assert rec["channel_ids"].tolist() == TUH_IDS
