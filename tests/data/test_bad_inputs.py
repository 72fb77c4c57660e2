"""Real-world and broken files through the eeg_corpus builder and the build command.

Every bad file or window must land in the report with its reason, counts must add up, strict mode must
stop with an error naming the file.
"""

import json
import os

import mne
import numpy as np
import pytest
import tensorflow_datasets as tfds

from labram_jax.data.report import BuildError
from tfds_builders import build as build_cli
from tfds_builders.common import REPORT_NAME
from tfds_builders.demo.synth import write_edf
from tfds_builders.eeg_corpus import EegCorpus

PHYSIONET_NAMES = ["Fc5.", "Cz..", "T7..", "Fp1.", "T3", "Iz..", "X1"]  # T3 and T7 both kept; X1 unknown


def _noise(rng, channels, seconds, sfreq):
    return rng.standard_normal((channels, int(seconds * sfreq))) * 20.0  # µV


def _write_fif(path, uv, sfreq, names):
    raw = mne.io.RawArray(uv * 1e-6, mne.create_info(list(names), sfreq, "eeg"), verbose="error")
    raw.save(str(path), overwrite=True, verbose="error")


def _physionet_edf(path, rng):
    """EDF+ with PhysioNet-style dotted names and a latin-1 byte in its annotation channel."""
    sfreq = 160.0
    raw = mne.io.RawArray(
        _noise(rng, len(PHYSIONET_NAMES), 20, sfreq) * 1e-6,
        mne.create_info(PHYSIONET_NAMES, sfreq, "eeg"),
        verbose="error",
    )
    raw.set_annotations(mne.Annotations([1.0, 5.0], [0.0, 0.0], ["T0", "MARKX"]))
    mne.export.export_raw(str(path), raw, fmt="edf", overwrite=True, verbose="error")
    data = path.read_bytes()
    at = data.index(b"MARKX")
    path.write_bytes(data[: at + 4] + b"\xe9" + data[at + 5 :])  # 'MARKé' in latin-1: not UTF-8


# file name -> expected reason (None: read; windows may still be skipped)
EXPECTED = {
    "flat_raw.fif": "flat",
    "garbage.edf": "unreadable",
    "good/S001R01.edf": None,
    "lowrate.edf": "low_sampling_rate",
    "nan_all_raw.fif": "nan",
    "nan_part_raw.fif": None,
    "short.edf": "too_short",
    "truncated.edf": "truncated",
    "unknown_only.edf": "no_usable_channels",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    (root / "good").mkdir()
    _physionet_edf(root / "good" / "S001R01.edf", rng)
    write_edf(
        root / "full.edf",
        _noise(rng, 3, 20, 256.0),
        256.0,
        names=["EEG FP1-REF", "EEG C3-REF", "EEG O1-REF"],
        extra_channels=False,
    )
    data = (root / "full.edf").read_bytes()
    (root / "truncated.edf").write_bytes(data[: len(data) * 2 // 3])
    (root / "full.edf").unlink()
    (root / "garbage.edf").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    write_edf(root / "unknown_only.edf", _noise(rng, 2, 20, 256.0), 256.0, names=["X1", "EKG"], extra_channels=False)
    write_edf(root / "short.edf", _noise(rng, 2, 3, 256.0), 256.0, names=["FP1", "FP2"], extra_channels=False)
    write_edf(root / "lowrate.edf", _noise(rng, 2, 20, 128.0), 128.0, names=["FP1", "FP2"], extra_channels=False)
    part = _noise(rng, 2, 20, 250.0)
    part[1, 5 * 250 : 6 * 250] = np.nan  # inside window 4-8 s
    _write_fif(root / "nan_part_raw.fif", part, 250.0, ["C3", "C4"])
    _write_fif(root / "nan_all_raw.fif", np.full((2, 20 * 250), np.nan), 250.0, ["C3", "C4"])
    _write_fif(root / "flat_raw.fif", np.zeros((2, 20 * 250)), 250.0, ["C3", "C4"])
    (root / "notes.txt").write_text("not a recording")
    return root


def test_report_reasons_and_counts(corpus, tmp_path, capsys):
    data_dir = tmp_path / "tfds"
    rc = build_cli.main(
        ["eeg_corpus", f"--data_dir={data_dir}", f"--manual_dir={corpus}", "--config=w4", "--workers=1"]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "files read" in out and REPORT_NAME in out
    report = json.loads((data_dir / "eeg_corpus" / "w4" / "1.0.0" / REPORT_NAME).read_text())
    files = {f["path"].replace(os.sep, "/"): f for f in report["files"]}
    assert sorted(files) == sorted(EXPECTED)  # every recording listed, notes.txt ignored
    for name, reason in EXPECTED.items():
        assert files[name]["reason"] == reason, (name, files[name])
        assert (files[name]["status"] == "ok") == (reason is None)

    good = files["good/S001R01.edf"]  # latin-1 annotation read, dots stripped
    assert good["channels_mapped"] == {
        "Fc5.": "FC5",
        "Cz..": "CZ",
        "T7..": "T7",
        "Fp1.": "FP1",
        "T3": "T3",
        "Iz..": "IZ",
    }
    assert list(good["channels_dropped"]) == ["X1"]
    assert good["units_written"] == 5 and good["units_skipped"] == {}
    part = files["nan_part_raw.fif"]
    assert part["units_written"] == 4 and part["units_skipped"] == {"nan": 1}
    assert "128" in files["lowrate.edf"]["detail"] and "announces" in files["truncated.edf"]["detail"]

    s = report["summary"]
    assert s["files_found"] == len(EXPECTED)
    assert s["files_found"] == s["files_read"] + sum(s["files_skipped"].values())
    assert s["files_read"] == 2
    assert s["units_found"] == s["units_written"] + sum(s["units_skipped"].values())
    assert s["units_written"] == sum(f["units_written"] for f in report["files"]) == 9
    src = tfds.data_source("eeg_corpus/w4", data_dir=str(data_dir), split="train", download=False)
    assert len(src) == s["units_written"]
    shapes = sorted({src[i]["signal"].shape for i in range(len(src))})
    assert shapes == [(2, 800), (6, 800)]  # each recording keeps its own channel set


def test_strict_mode_names_the_first_bad_file(corpus, tmp_path, capsys):
    builder = EegCorpus(config="w4", data_dir=str(tmp_path / "a"), strict=True)
    with pytest.raises(BuildError, match="flat_raw.fif"):  # first bad file in sorted order
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(corpus)))
    rc = build_cli.main(
        [
            "eeg_corpus",
            f"--data_dir={tmp_path / 'b'}",
            f"--manual_dir={corpus}",
            "--config=w4",
            "--workers=1",
            "--strict",
        ]
    )
    assert rc == 1
    err = capsys.readouterr().err
    assert "flat_raw.fif" in err and "flat" in err and "--strict" in err


def test_tuab_layout_missing_channels_and_montage_order(tmp_path):
    """A TUH file lacking montage channels is skipped as missing_channels; others are reordered to the
    reference's 23-channel order whatever their order in the file."""
    from labram_jax.channels import TUH_CHANNELS, channel_id
    from tfds_builders.tuab import Tuab

    rng = np.random.default_rng(1)
    base = tmp_path / "tuab" / "edf"
    order = list(TUH_CHANNELS)[::-1]  # reversed in the file
    uv = _noise(rng, 23, 20, 256.0)
    uv[order.index("CZ")] += 300.0 * np.sin(2 * np.pi * 10 * np.arange(uv.shape[1]) / 256.0)
    write_edf(base / "train/normal/01_tcp_ar/aaa_s001_t000.edf", uv, 256.0, names=[f"EEG {c}-REF" for c in order])
    write_edf(
        base / "train/abnormal/01_tcp_ar/bbb_s001_t000.edf",
        _noise(rng, 21, 20, 256.0),
        256.0,
        names=[f"EEG {c}-REF" for c in TUH_CHANNELS[:21]],
    )  # no T1, T2
    write_edf(base / "eval/normal/01_tcp_ar/ccc_s001_t000.edf", _noise(rng, 23, 20, 256.0), 256.0)
    builder = Tuab(data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(tmp_path / "tuab")))
    files = {f.path.split(os.sep)[-1]: f for f in builder.report.files}
    assert files["bbb_s001_t000.edf"].reason == "missing_channels"
    assert "T1" in files["bbb_s001_t000.edf"].detail
    src = tfds.data_source("tuab", data_dir=str(tmp_path / "tfds"), split="train", download=False)
    assert len(src) == 2
    rec = src[0]
    assert rec["channel_ids"].tolist() == [channel_id(c) for c in TUH_CHANNELS]
    loudest = int(np.argmax(rec["signal"].std(axis=1)))
    assert TUH_CHANNELS[loudest] == "CZ"  # the data moved with its name


def test_corpus_window_configs_by_name(tmp_path, capsys):
    rng = np.random.default_rng(1)
    folder = tmp_path / "rec"
    folder.mkdir()
    write_edf(
        folder / "a.edf", _noise(rng, 2, 20, 256.0), 256.0, names=["EEG FP1-REF", "EEG O2-REF"], extra_channels=False
    )
    data_dir = tmp_path / "tfds"
    assert (
        build_cli.main(
            ["eeg_corpus", f"--data_dir={data_dir}", f"--manual_dir={folder}", "--config=w2s1", "--workers=1"]
        )
        == 0
    )
    src = tfds.data_source("eeg_corpus/w2s1", data_dir=str(data_dir), split="train", download=False)
    assert len(src) == (20 - 2) // 1 + 1
    assert {src[i]["signal"].shape for i in range(len(src))} == {(2, 400)}
    assert sorted(src[i]["start"] for i in range(len(src))) == [200 * k for k in range(19)]
    assert EegCorpus.config_from_name("w16_notch60").notch_hz == 60.0
    for bad in ("w2.5", "x4", "w0"):
        with pytest.raises(SystemExit, match="eeg_corpus config|has no config"):
            build_cli.build("eeg_corpus", str(data_dir), str(folder), bad)


def test_channel_flat_over_the_file_is_dropped_without_flagging_windows(tmp_path):
    from labram_jax.data.recording import FileTask, process_file

    rng = np.random.default_rng(2)
    uv = _noise(rng, 3, 20, 250.0)
    uv[1] = 0.0  # a disconnected electrode
    uv[2, 5 * 250 : 6 * 250] = 0.0  # a dead second on another channel: window 4-8 s only
    path = tmp_path / "one_dead_raw.fif"
    _write_fif(path, uv, 250.0, ["C3", "CZ", "C4"])
    report, records = process_file(FileTask(path=str(path), recording_id="r", window_seconds=4.0))
    assert report.status == "ok"
    assert report.channels_dropped == {"CZ": "flat over the whole recording"}
    assert list(report.channels_mapped.values()) == ["C3", "C4"]
    assert report.units_written == 4 and report.units_skipped == {"flat": 1}
    assert all(ex["signal"].shape == (2, 800) for _, ex in records)
    assert sorted(ex["start"] for _, ex in records) == [0, 1600, 2400, 3200]
