"""The eeg_labelled builder on recordings written by the test: annotation events and label tables.

Recordings are short (4 channels at 250 Hz) so that the whole module builds five small datasets in well
under a minute with one worker.
"""

import json
import math
import os

import mne
import numpy as np
import pytest
import tensorflow_datasets as tfds

from labram_jax.data.preprocess import PreprocessConfig
from labram_jax.data.recording import FileTask, load_recording
from labram_jax.data.report import BuildError, FileReport, load_report
from tfds_builders import build as build_cli
from tfds_builders.common import REPORT_NAME
from tfds_builders.eeg_labelled import EegLabelled, labelled_config

SFREQ = 250.0
NAMES = ["Fp1", "Cz", "O1", "STIM"]  # STIM is not an electrode: dropped and reported
SECONDS = 30.0
TMIN, TMAX = -0.5, 3.5  # 4-s records starting half a second before each onset
EVENTS = "T1=left,T2=right,T3=left"


def _signal(rng, seconds, onsets=()):
    """(4, n) volts: noise, plus a sharp bump at each onset (to find the onset in the records)."""
    n = int(seconds * SFREQ)
    t = np.arange(n) / SFREQ
    x = rng.standard_normal((len(NAMES), n)) * 10.0
    for onset in onsets:
        x[:3] += 300.0 * np.exp(-0.5 * ((t - onset) / 0.01) ** 2)
    return x * 1e-6


def _write_edf(path, data, annotations=None):
    raw = mne.io.RawArray(data, mne.create_info(NAMES, SFREQ, "eeg"), verbose="error")
    if annotations:
        onsets, descriptions = zip(*annotations)
        raw.set_annotations(mne.Annotations(list(onsets), [0.0] * len(onsets), list(descriptions)))
    path.parent.mkdir(parents=True, exist_ok=True)
    mne.export.export_raw(str(path), raw, fmt="edf", physical_range="channelwise", overwrite=True, verbose="error")


def _write_fif_late_start(path, data, annotations, first_samp):
    """A FIF file whose first sample is not sample 0 (recording started after the measurement)."""
    raw = mne.io.RawArray(data, mne.create_info(NAMES, SFREQ, "eeg"), first_samp=first_samp, verbose="error")
    onsets, descriptions = zip(*annotations)
    # orig_time None: onsets relative to the first sample; MNE stores them shifted by raw.first_time.
    raw.set_annotations(mne.Annotations(list(onsets), [0.0] * len(onsets), list(descriptions)))
    path.parent.mkdir(parents=True, exist_ok=True)
    raw.save(str(path), overwrite=True, verbose="error")


def _sources(builder, splits=("train", "validation", "test")):
    name = f"eeg_labelled/{builder.builder_config.name}"
    return {
        s: tfds.data_source(name, data_dir=str(builder._data_dir_root), split=s, download=False)
        for s in splits
        if s in builder.info.splits
    }


def _records(builder):
    return {s: [src[i] for i in range(len(src))] for s, src in _sources(builder).items()}


# ---------------------------------------------------------------------------------------------------------
# Events mode

# file -> annotations (onset s, description). With tmin -0.5 / tmax 3.5 at 30 s:
# onset 0.2 starts before the recording, onset 27.0 ends after it; 'T0' and 'boundary' are not mapped.
EVENT_FILES = {
    "sub-01/eeg/sub-01_task-mi_eeg.edf": [
        (0.2, "T1"),
        (2.0, "T1"),
        (6.3, "T2"),
        (10.0, "T0"),
        (14.01, "T3"),
        (27.0, "T2"),
    ],
    "sub-02/eeg/sub-02_task-mi_eeg.edf": [(3.0, "T2"), (8.5, "T0"), (12.25, "T1"), (20.0, "boundary")],
    "sub-03/eeg/sub-03_task-mi_eeg.edf": [(5.0, "T1"), (11.0, "T2")],
    # Nothing mapped: reported, no record (a subject with other files, so every split has records).
    "sub-01/eeg/sub-01_task-rest_eeg.edf": [(4.0, "T0"), (9.0, "T0")],
}
FIF_FILE = "sub-05/eeg/sub-05_task-mi_raw.fif"
FIF_EVENTS = [(1.5, "T2"), (7.75, "T1"), (16.0, "T0")]
FIF_FIRST_SAMP = 1000  # 4 s at 250 Hz


@pytest.fixture(scope="module")
def events_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("events_recordings")
    rng = np.random.default_rng(0)
    for rel, annotations in EVENT_FILES.items():
        _write_edf(root / rel, _signal(rng, SECONDS, [o for o, _ in annotations]), annotations)
    _write_fif_late_start(
        root / FIF_FILE, _signal(rng, SECONDS, [o for o, _ in FIF_EVENTS]), FIF_EVENTS, FIF_FIRST_SAMP
    )
    config = labelled_config(manual_dir=root, events=EVENTS, tmin=TMIN, tmax=TMAX)
    builder = EegLabelled(config=config, data_dir=str(tmp_path_factory.mktemp("events_data")), workers=1)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(root)))
    return root, builder


def test_events_one_record_per_mapped_annotation(events_build):
    root, builder = events_build
    label_names = ["left", "right"]  # order of first appearance in --events; T3 also maps to left
    mapping = {"T1": "left", "T2": "right", "T3": "left"}
    length = int((TMAX - TMIN) * 200)
    expected = {}
    for rel, annotations in {**EVENT_FILES, FIF_FILE: FIF_EVENTS}.items():
        rid = os.path.splitext(rel)[0]
        for onset, desc in annotations:
            start = math.ceil((onset + TMIN) * 200 - 1e-6)
            if desc in mapping and 0 <= start and start + length <= SECONDS * 200:
                expected[(rid, start)] = label_names.index(mapping[desc])
    assert len(expected) == 9

    preprocessed = {}
    got = {}
    for _split, records in _records(builder).items():
        for rec in records:
            rid = rec["recording_id"].decode()
            key = (rid, int(rec["start"]))
            assert key not in got, "one record per annotation"
            got[key] = int(rec["label"])
            assert rec["signal"].shape == (3, length) and rec["signal"].dtype == np.float32
            # The record is the preprocessed recording sliced at [onset + tmin, onset + tmax) ...
            if rid not in preprocessed:
                path = next(p for p in [root / (rid + ".edf"), root / (rid + ".fif")] if p.exists())
                preprocessed[rid] = load_recording(
                    FileTask(path=str(path), preprocess=PreprocessConfig()), FileReport(path=str(path))
                ).signal
            start = int(rec["start"])
            np.testing.assert_array_equal(rec["signal"], preprocessed[rid][:, start : start + length])
            # ... and the onset's bump sits -tmin seconds into it (also in the FIF file whose first sample is
            # 4 s after the measurement start: onsets count from the first sample).
            assert abs(int(np.argmax(rec["signal"][1])) - int(-TMIN * 200)) <= 2
            assert rec["subject_id"].decode() == rid.split("/")[0]
    assert got == expected

    meta = builder.info.metadata
    assert meta["task"] == "binary" and meta["num_classes"] == 2 and meta["label_names"] == label_names
    assert meta["window_seconds"] == 4.0 and meta["mode"] == "events"
    assert meta["channels"] == ["CZ", "FP1", "O1"]
    assert meta["events"] == mapping and meta["tmin"] == TMIN and meta["tmax"] == TMAX
    assert builder.info.features["label"].names == label_names


def test_events_report_counts_unmapped_and_outside(events_build):
    root, builder = events_build
    report = load_report(os.path.join(str(builder.data_dir), REPORT_NAME))
    files = {f["path"]: f for f in report["files"]}
    first = files["sub-01/eeg/sub-01_task-mi_eeg.edf"]
    assert first["unmapped_events"] == {"T0": 1}
    assert first["units_skipped"] == {"outside_recording": 2} and first["units_written"] == 3
    assert first["channels_dropped"] == {"STIM": "not in the electrode vocabulary"}
    assert files["sub-02/eeg/sub-02_task-mi_eeg.edf"]["unmapped_events"] == {"T0": 1, "boundary": 1}
    nothing = files["sub-01/eeg/sub-01_task-rest_eeg.edf"]
    assert nothing["status"] == "skipped" and nothing["reason"] == "no_events"
    assert "'T0': 2" in nothing["detail"] and nothing["unmapped_events"] == {"T0": 2}
    s = report["summary"]
    assert s["unmapped_events"] == {"T0": 5, "boundary": 1}
    assert s["units_skipped"] == {"outside_recording": 2} and s["units_written"] == 9
    assert s["files_skipped"] == {"no_events": 1} and s["files_found"] == 5
    assert "annotations not in the event map (6, no record)" in builder.report.format_summary()
    # Subject-disjoint seeded split of the four subjects: 1 test, 1 validation, 2 train; stored with the seed.
    subjects = builder.info.metadata["subjects"]
    assert [len(subjects[s]) for s in ("train", "validation", "test")] == [2, 1, 1]
    assert sorted(sum(subjects.values(), [])) == ["sub-01", "sub-02", "sub-03", "sub-05"]
    for split, records in _records(builder).items():
        assert {r["subject_id"].decode() for r in records} == set(subjects[split])
    assert builder.info.metadata["split_seed"] == 12345 and builder.info.metadata["split_source"] == "seeded"


def test_events_nothing_mapped_lists_descriptions(tmp_path):
    root = tmp_path / "rec"
    rng = np.random.default_rng(1)
    for i in range(3):
        _write_edf(root / f"s{i}" / "run.edf", _signal(rng, 12.0), [(2.0, "769"), (6.0, "770")])
    config = labelled_config(manual_dir=root, events="T1=left,T2=right", tmax=4, val_fraction=0.0, test_fraction=0.0)
    builder = EegLabelled(config=config, data_dir=str(tmp_path / "data"))
    with pytest.raises(BuildError, match=r"descriptions found \(count\): \{'769': 3, '770': 3\}.*--events"):
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(root)))


@pytest.mark.parametrize(
    "tmin, tmax, match",
    [
        (0.0, 3.5, r"--tmax - --tmin must be a positive whole number of seconds.*3\.5 s"),
        (2.0, 1.0, r"--tmax - --tmin must be a positive whole number"),
        (0.0, 0.0, r"--tmax - --tmin must be a positive whole number"),
        (0.0, None, r"--events needs --tmax"),
    ],
)
def test_bad_tmin_tmax(tmp_path, tmin, tmax, match):
    with pytest.raises(ValueError, match=match):
        labelled_config(manual_dir=tmp_path, events="T1=a,T2=b", tmin=tmin, tmax=tmax)


# ---------------------------------------------------------------------------------------------------------
# Table mode

TABLE_SECONDS = 12.0  # 3 windows of 4 s


@pytest.fixture(scope="module")
def table_root(tmp_path_factory):
    """Six recordings of six subjects (two in subject folders), and one recording no table lists."""
    root = tmp_path_factory.mktemp("table_recordings")
    rng = np.random.default_rng(2)
    for rel in ["a/rec1.edf", "b/rec1.edf", "c_rec.edf", "d_rec.edf", "e_rec.edf", "f_rec.edf", "extra/unlisted.edf"]:
        _write_edf(root / rel, _signal(rng, TABLE_SECONDS))
    return root


def _table(path, header, rows):
    path.write_text("\n".join([header] + rows) + "\n")
    return path


def test_table_classes(table_root, tmp_path):
    table = _table(
        tmp_path / "labels.csv",
        "path,label,subject",
        [
            "a/rec1.edf,sleep,P1",
            "b/rec1.edf,wake,P2",
            "c_rec.edf,wake,P3",
            "d_rec.edf,sleep,P4",
            "e_rec.edf,wake,P5",
            "f_rec.edf,sleep,P6",
            "gone.edf,wake,P7",
        ],
    )
    config = labelled_config(manual_dir=table_root, table=table, window=4)
    builder = EegLabelled(config=config, data_dir=str(tmp_path / "data"))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(table_root)))
    label_of = {"a/rec1": 0, "b/rec1": 1, "c_rec": 1, "d_rec": 0, "e_rec": 1, "f_rec": 0}  # sorted names
    subject_of = {"a/rec1": "P1", "b/rec1": "P2", "c_rec": "P3", "d_rec": "P4", "e_rec": "P5", "f_rec": "P6"}
    seen = {}
    for split, records in _records(builder).items():
        for rec in records:
            rid = rec["recording_id"].decode()
            assert rec["label"] == label_of[rid] and rec["signal"].shape == (3, 800)
            assert rec["subject_id"].decode() == subject_of[rid]
            seen.setdefault(split, set()).add(subject_of[rid])
            assert int(rec["start"]) in (0, 800, 1600)
    assert sum(len(r) for r in _records(builder).values()) == 6 * 3
    splits = list(seen.values())
    assert all(not (a & b) for i, a in enumerate(splits) for b in splits[i + 1 :]), "subject-disjoint splits"
    meta = builder.info.metadata
    for split in seen:  # the stored subject lists (which also name P7, whose file is missing) hold the records'
        assert seen[split] <= set(meta["subjects"][split])
    assert meta["task"] == "binary" and meta["label_names"] == ["sleep", "wake"] and meta["num_classes"] == 2
    assert meta["window_seconds"] == 4.0 and meta["channels"] == ["CZ", "FP1", "O1"]
    assert meta["split_source"] == "seeded" and meta["table"] == str(table)
    s = builder.report.summary()
    assert s["files_skipped"] == {"missing_file": 1, "not_in_table": 1}
    files = {f.path: f for f in builder.report.files}
    assert files["extra/unlisted.edf"].reason == "not_in_table"
    assert "labels.csv line 8" in files["gone.edf"].detail
    # Strict mode stops before reading anything, naming the file.
    strict = EegLabelled(
        config=labelled_config(manual_dir=table_root, table=table, window=4, name="strict"),
        data_dir=str(tmp_path / "data"),
        strict=True,
    )
    with pytest.raises(BuildError, match=r"strict build of eeg_labelled stopped at gone.edf: .*missing_file"):
        strict.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(table_root)))


def test_table_regression_with_split_column(table_root, tmp_path):
    table = _table(
        tmp_path / "ages.csv",
        "path,label,split",
        [
            "a/rec1.edf,31.5,train",
            "b/rec1.edf,40,train",
            "c_rec.edf,22.25,train",
            "d_rec.edf,60,validation",
            "e_rec.edf,18,test",
            "f_rec.edf,45,test",
            "extra/unlisted.edf,50,train",
        ],
    )
    config = labelled_config(manual_dir=table_root, table=table, window=6, stride=3)
    builder = EegLabelled(config=config, data_dir=str(tmp_path / "data"))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(table_root)))
    target = {
        "a/rec1": 31.5,
        "b/rec1": 40.0,
        "c_rec": 22.25,
        "d_rec": 60.0,
        "e_rec": 18.0,
        "f_rec": 45.0,
        "extra/unlisted": 50.0,
    }
    split_of = {
        "a/rec1": "train",
        "b/rec1": "train",
        "c_rec": "train",
        "d_rec": "validation",
        "e_rec": "test",
        "f_rec": "test",
        "extra/unlisted": "train",
    }
    records = _records(builder)
    for split, recs in records.items():
        for rec in recs:
            rid = rec["recording_id"].decode()
            # float32 feature (read back as a Python float): 22.25 and 31.5 are exact in float32
            assert isinstance(rec["label"], (float, np.floating)) and rec["label"] == target[rid]
            assert split == split_of[rid]
            assert rec["signal"].shape == (3, 1200) and int(rec["start"]) in (0, 600, 1200)
    assert [len(records[s]) for s in ("train", "validation", "test")] == [4 * 3, 3, 2 * 3]
    meta = builder.info.metadata
    assert meta["task"] == "regression" and meta["num_classes"] == 0 and meta["label_names"] == []
    assert meta["split_source"] == "table"
    assert meta["subjects"]["test"] == ["e", "f"]  # default ids: first folder, else file-name prefix
    train_labels = [target[k] for k, s in split_of.items() if s == "train"]
    assert meta["label_mean"] == pytest.approx(np.mean(train_labels))
    assert meta["label_std"] == pytest.approx(np.std(train_labels))
    assert builder.report.summary()["files_skipped"] == {}
    # metadata.json, as other code reads it without this module
    with open(os.path.join(str(builder.data_dir), "metadata.json")) as fh:
        stored = json.load(fh)
    assert {k: stored[k] for k in ("task", "num_classes", "label_names", "window_seconds", "channels")} == {
        "task": "regression",
        "num_classes": 0,
        "label_names": [],
        "window_seconds": 6.0,
        "channels": ["CZ", "FP1", "O1"],
    }


@pytest.mark.parametrize(
    "header, rows, match",
    [
        ("path,subject", ["a/rec1.edf,P1"], r"labels.csv: line 1: the header .* has no 'label' column"),
        ("file,label", ["a/rec1.edf,x"], r"has no 'path' column"),
        ("path,label", ["a/rec1.edf,x", "b/rec1.edf,"], r"labels.csv: line 3: empty label for 'b/rec1.edf'"),
        ("path,label,split", ["a/rec1.edf,x,train", "b/rec1.edf,y,dev"], r"line 3: split 'dev'"),
        ("path,label", ["a/rec1.edf,x", "a/rec1.edf,y"], r"line 3: 'a/rec1.edf' is already listed on line 2"),
    ],
)
def test_malformed_table(tmp_path, header, rows, match):
    table = _table(tmp_path / "labels.csv", header, rows)
    with pytest.raises(ValueError, match=match):
        labelled_config(manual_dir=tmp_path, table=table)


def test_regression_task_needs_numbers_and_split_needs_subjects(tmp_path):
    table = _table(tmp_path / "labels.csv", "path,label", ["a.edf,1.5", "b.edf,high"])
    with pytest.raises(ValueError, match=r"line 3: label 'high' of 'b.edf' is not a finite number"):
        labelled_config(manual_dir=tmp_path, table=table, task="regression")
    # Forced classification of numbers: classes in number order.
    table = _table(tmp_path / "labels.csv", "path,label", ["a.edf,10", "b.edf,2", "c.edf,1"])
    assert labelled_config(manual_dir=tmp_path, table=table, task="classification").label_names == ("1", "2", "10")
    from tfds_builders.common import split_subjects_three_way

    with pytest.raises(ValueError, match=r"2 subject\(s\) cannot be split.*--val_fraction=0"):
        split_subjects_three_way(["a", "b"], 0.2, 0.2, seed=0)
    train, val, test = split_subjects_three_way([f"s{i}" for i in range(10)], 0.2, 0.2, seed=3)
    assert (len(train), len(val), len(test)) == (6, 2, 2) and not set(train) & set(val) | set(test) & set(train)


def test_existing_build_with_other_options_is_refused(events_build):
    root, builder = events_build
    data_dir = str(builder._data_dir_root)
    same = labelled_config(manual_dir=root, events=EVENTS, tmin=TMIN, tmax=TMAX)
    again = EegLabelled(config=same, data_dir=data_dir)
    again.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(root)))
    assert again.report.files == []  # reused, nothing rebuilt
    other = labelled_config(manual_dir=root, events=EVENTS, tmin=0, tmax=4)
    with pytest.raises(
        BuildError,
        match=r"built with other options \(.*tmax: built with 3\.5, now 4\.0.*"
        r"tmin: built with -0\.5, now 0\.0.*--config=OTHER_NAME.*delete",
    ):
        EegLabelled(config=other, data_dir=data_dir)
    renamed = labelled_config(manual_dir=root, events=EVENTS, tmin=0, tmax=4, name="t0_4")
    assert EegLabelled(config=renamed, data_dir=data_dir).builder_config.name == "t0_4"


# ---------------------------------------------------------------------------------------------------------
# Command line


def test_cli(table_root, tmp_path, capsys):
    table = _table(
        tmp_path / "labels.csv",
        "path,label",
        ["a/rec1.edf,1", "b/rec1.edf,0", "c_rec.edf,1", "d_rec.edf,0", "e_rec.edf,1"],
    )
    data_dir = str(tmp_path / "data")
    # Subjects from the path: a/rec1.edf and b/rec1.edf are subject "rec1", the other three "rec"; two
    # subjects fill train and test when there is no validation split.
    args = [
        "eeg_labelled",
        f"--data_dir={data_dir}",
        f"--manual_dir={table_root}",
        f"--table={table}",
        "--window=4",
        "--task=classification",
        "--notch=60",
        r"--subject_pattern=(rec1|rec)",
        "--val_fraction=0",
        "--test_fraction=0.2",
        "--workers=1",
    ]
    assert build_cli.main(args) == 0
    out = capsys.readouterr().out
    assert "eeg_labelled/table: 5/7 files read" in out and "task: binary, labels: ['0', '1']" in out
    srcs = {
        s: tfds.data_source("eeg_labelled/table", data_dir=data_dir, split=s, download=False) for s in ("train", "test")
    }
    subjects = {s: {src[i]["subject_id"].decode() for i in range(len(src))} for s, src in srcs.items()}
    assert sorted(subjects["train"] | subjects["test"]) == ["rec", "rec1"] and len(subjects["train"]) == 1
    assert srcs["train"][0]["signal"].shape == (3, 800)
    with open(os.path.join(data_dir, "eeg_labelled", "table", "1.0.0", "metadata.json")) as fh:
        meta = json.load(fh)
    assert meta["preprocess"]["notch_hz"] == 60.0 and meta["subjects"]["validation"] == []
    # The same command again reuses the dataset.
    assert build_cli.main(args) == 0
    out = capsys.readouterr().out
    assert "eeg_labelled/table: already built" in out and "5/7 files, 15 records" in out
    assert "task: binary" in out
    # Flags that only eeg_labelled takes, and --events with --table, are refused with a message.
    with pytest.raises(SystemExit, match=r"--events, --tmax only apply to eeg_labelled"):
        build_cli.main(["tuab", f"--data_dir={data_dir}", "--events=T1=a", "--tmax=4"])
    with pytest.raises(SystemExit, match=r"exactly one of --events.*--table.*both were given"):
        build_cli.main(
            [
                "eeg_labelled",
                f"--data_dir={data_dir}",
                f"--manual_dir={table_root}",
                f"--table={table}",
                "--events=T1=a,T2=b",
                "--tmax=4",
            ]
        )
    # Same name, other options: refused (exit code 1, message on stderr), the data is left as it was.
    assert build_cli.main([a if a != "--window=4" else "--window=2" for a in args]) == 1
    assert "window_seconds: built with 4.0, now 2.0" in capsys.readouterr().err
