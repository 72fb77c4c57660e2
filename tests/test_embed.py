"""`python -m labram_jax.embed`: windows, shapes and numbers equal to the API on the builders' windows,
per-file channels, skips and refusals. Tiny checkpoints (width 100, depth 1, 4-s models) and 9-s EDFs."""

from __future__ import annotations

import json

import flax.linen as nn
import jax
import mne
import numpy as np
import pytest

import labram_jax
from configs import demo
from labram_jax import checkpoints, embed
from labram_jax.data.preprocess import PreprocessConfig
from labram_jax.data.recording import FileTask, process_file
from labram_jax.models import factory

SFREQ = 256.0  # resampled to 200 Hz on the way, as real recordings are
SECONDS = 9  # not a multiple of the 4-s window; EDF export pads to whole seconds
WINDOW = 4  # = the tiny models' max_patches
NAMES_A = ["EEG FP1-REF", "EEG FP2-REF", "EEG C3-REF", "EEG CZ-REF", "EKG", "Photic"]
NAMES_B = ["Fp1", "O1", "O2", "Pz"]


def _write_edf(path, names, seconds=SECONDS, seed=0):
    rng = np.random.default_rng(seed)
    data = 20e-6 * rng.standard_normal((len(names), int(seconds * SFREQ)))
    raw = mne.io.RawArray(data, mne.create_info(names, SFREQ, "eeg"), verbose="error")
    path.parent.mkdir(parents=True, exist_ok=True)
    mne.export.export_raw(str(path), raw, fmt="edf", physical_range="channelwise", overwrite=True, verbose="error")
    return path


def _checkpoint(directory, kind, num_outputs=0):
    """A tiny checkpoint of our own kind, written as training writes it (random weights)."""
    config = demo.STAGES[{"finetune": "finetune_tuab"}.get(kind, kind)]()
    if "model" in config:
        config.model.update({"width": 100, "depth": 1, "num_heads": 4, "max_patches": WINDOW})
    if kind == "tokenizer":
        config.tokenizer.update(
            {
                "width": 100,
                "num_heads": 4,
                "encoder_depth": 1,
                "decoder_depth": 1,
                "num_codes": 16,
                "code_dim": 8,
                "max_patches": WINDOW,
            }
        )
    extra = {"num_outputs": num_outputs} if kind == "finetune" else {"vocab_size": 16} if kind == "pretrain" else {}
    meta = checkpoints.make_meta(kind, config, step=7, **extra)
    module = checkpoints.build_model(meta)
    variables = factory.init_fn(module, factory.example_batch())(jax.random.PRNGKey(1))
    checkpoints.write_model(directory, nn.meta.unbox(variables), meta)
    return directory


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    root = tmp_path_factory.mktemp("eeg")
    _write_edf(root / "a.edf", NAMES_A, seed=1)
    _write_edf(root / "sub" / "b.edf", NAMES_B, seed=2)
    _write_edf(root / "sub" / "short.edf", NAMES_B, seconds=3, seed=3)
    return root


@pytest.fixture(scope="module")
def finetune_ckpt(tmp_path_factory):
    return _checkpoint(tmp_path_factory.mktemp("ft") / "ckpt", "finetune", num_outputs=2)


def _builder_windows(path, stride):
    """The dataset builders' records for this file: their preprocessing and their windows."""
    task = FileTask(path=str(path), preprocess=PreprocessConfig(), window_seconds=WINDOW, stride_seconds=stride)
    report, records = process_file(task)
    assert report.status == "ok", report
    return records


def test_windows_shapes_and_numbers_equal_the_api(recordings, finetune_ckpt, tmp_path):
    out = tmp_path / "a.npz"
    meta = embed.embed(
        finetune_ckpt, recordings / "a.edf", out, window_seconds=WINDOW, stride_seconds=2, batch_size=2, progress=False
    )
    (rec,) = embed.read_embeddings(out)
    # 9 s at 200 Hz, 4-s windows every 2 s: starts 0, 2, 4 s (start + 4 <= 9), tail 9 - 8 = 1 s.
    assert rec["file"] == "a.edf" and rec["windows"] == 3 and rec["tail_seconds"] == 1.0
    np.testing.assert_array_equal(rec["start_seconds"], [0.0, 2.0, 4.0])
    assert rec["channels"] == ["FP1", "FP2", "C3", "CZ"]
    assert rec["pooled"].shape == (3, 100) and rec["pooled"].dtype == np.float32
    assert rec["patch_features"].shape == (3, 4, WINDOW, 100)
    assert rec["logits"].shape == (3, 2)
    assert list(rec["issue"]) == ["", "", ""]
    assert meta["checkpoint_kind"] == "finetune" and meta["checkpoint_step"] == 7

    model = labram_jax.load(finetune_ckpt)
    records = _builder_windows(recordings / "a.edf", stride=2)
    assert [r["start"] for _, r in records] == [0, 400, 800]
    eeg = np.stack([r["signal"] for _, r in records])
    np.testing.assert_allclose(rec["pooled"], model.pooled(eeg, rec["channels"]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rec["logits"], model.logits(eeg, rec["channels"]), rtol=1e-5, atol=1e-5)
    # Channel-major tokens c * A + a land at [c, a].
    features = model.features(eeg, rec["channels"]).reshape(3, 4, WINDOW, 100)
    np.testing.assert_allclose(rec["patch_features"], features, rtol=1e-5, atol=1e-5)
    assert np.abs(rec["pooled"][0] - rec["pooled"][1]).max() > 1e-3  # different windows, different vectors

    # Default stride = window: 2 windows at 0 and 4 s, 1 s left over; same numbers at the shared start.
    embed.embed(finetune_ckpt, recordings / "a.edf", tmp_path / "b.npz", window_seconds=WINDOW, progress=False)
    (plain,) = embed.read_embeddings(tmp_path / "b.npz")
    np.testing.assert_array_equal(plain["start_seconds"], [0.0, 4.0])
    assert plain["tail_seconds"] == 1.0
    np.testing.assert_allclose(plain["pooled"], rec["pooled"][[0, 2]], rtol=1e-5, atol=1e-5)


def test_tokenizer_codes(recordings, tmp_path):
    ckpt = _checkpoint(tmp_path / "tok", "tokenizer")
    out = tmp_path / "codes.npz"
    meta = embed.embed(ckpt, recordings / "sub" / "b.edf", out, window_seconds=WINDOW, stride_seconds=3, progress=False)
    (rec,) = embed.read_embeddings(out)
    assert meta["outputs"] == ["start_seconds", "channels", "issue", "codes"]
    assert "pooled" not in rec and "patch_features" not in rec
    np.testing.assert_array_equal(rec["start_seconds"], [0.0, 3.0])  # floor((9 - 4) / 3) + 1 = 2
    assert rec["tail_seconds"] == 2.0
    assert rec["codes"].shape == (2, 4, WINDOW) and np.issubdtype(rec["codes"].dtype, np.integer)
    assert rec["codes"].min() >= 0 and rec["codes"].max() < 16
    eeg = np.stack([r["signal"] for _, r in _builder_windows(recordings / "sub" / "b.edf", stride=3)])
    expected = labram_jax.load(ckpt).codes(eeg, rec["channels"]).reshape(2, 4, WINDOW)
    np.testing.assert_array_equal(rec["codes"], expected)


def test_cli_on_a_folder_lists_channels_and_skips(recordings, tmp_path, capsys):
    ckpt = _checkpoint(tmp_path / "pre", "pretrain")
    out = tmp_path / "all.npz"
    status = embed.main(
        [
            "--checkpoint",
            str(ckpt),
            "--input",
            str(recordings),
            "--out",
            str(out),
            "--window",
            str(WINDOW),
            "--notch",
            "60",
            "--no_patch_features",
            "--quiet",
        ]
    )
    printed = capsys.readouterr().out
    assert status == 0
    recs = embed.read_embeddings(out)
    assert [r["file"] for r in recs] == ["a.edf", "sub/b.edf"]
    assert recs[0]["channels"] == ["FP1", "FP2", "C3", "CZ"] and recs[1]["channels"] == ["FP1", "O1", "O2", "PZ"]
    assert all(r["pooled"].shape == (2, 100) and "patch_features" not in r and "logits" not in r for r in recs)
    meta = embed.read_meta(out)
    assert meta["preprocess"]["notch_hz"] == 60.0 and meta["window_seconds"] == 4.0
    assert meta["channels_dropped"]["a.edf"] == {
        "EKG": "not in the electrode vocabulary",
        "Photic": "not in the electrode vocabulary",
    }
    assert "sub/b.edf" not in meta["channels_dropped"]
    assert recs[0]["channels_mapped"]["EEG FP1-REF"] == "FP1"
    (skip,) = meta["skipped"]
    assert skip["file"] == "sub/short.edf" and skip["reason"] == "too_short" and "4-s window" in skip["detail"]
    # The summary says all of it.
    assert "embedded 2 of 3 recording(s): 4 window(s) of 4 s every 4 s with a pretrain checkpoint" in printed
    assert "sub/short.edf: too_short" in printed
    assert "'EKG' (not in the electrode vocabulary): a.edf" in printed
    assert "'Photic' (not in the electrode vocabulary): a.edf" in printed
    # Raw np.load sees the documented keys.
    with np.load(out) as data:
        assert sorted(data.files) == sorted(
            ["files", "meta"] + [f"{i}/{k}" for i in (0, 1) for k in ("start_seconds", "channels", "issue", "pooled")]
        )
        assert json.loads(str(data["meta"]))["format"] == embed.FORMAT


def test_windows_the_model_cannot_take_are_refused(recordings, finetune_ckpt, tmp_path, capsys):
    with pytest.raises(embed.EmbedError, match=r"--window 5 s is longer than this model's limit of 4 s"):
        embed.embed(finetune_ckpt, recordings, tmp_path / "x.npz", window_seconds=5, progress=False)
    with pytest.raises(embed.EmbedError, match=r"--window must be a positive whole number of seconds.*2.5"):
        embed.embed(finetune_ckpt, recordings, tmp_path / "x.npz", window_seconds=2.5, progress=False)
    assert (
        embed.main(
            [
                "--checkpoint",
                str(finetune_ckpt),
                "--input",
                str(recordings),
                "--out",
                str(tmp_path / "x.npz"),
                "--window",
                "1.5",
            ]
        )
        == 1
    )
    assert "--window must be a positive whole number of seconds" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written, no partial file left


def test_paths_a_user_must_fix_are_named(recordings, finetune_ckpt, tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(embed.EmbedError, match=f"--checkpoint {missing}.*does not exist"):
        embed.embed(missing, recordings, tmp_path / "x.npz", window_seconds=WINDOW, progress=False)
    with pytest.raises(embed.EmbedError, match="--checkpoint .*holds no labram_jax checkpoint"):
        embed.embed(recordings, recordings, tmp_path / "x.npz", window_seconds=WINDOW, progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(embed.EmbedError, match="--input .*empty holds no recording.*\\.edf"):
        embed.embed(finetune_ckpt, tmp_path / "empty", tmp_path / "x.npz", progress=False)
    with pytest.raises(embed.EmbedError, match="--out .*the directory .*no_dir does not exist"):
        embed.embed(finetune_ckpt, recordings, tmp_path / "no_dir" / "x.npz", progress=False)


def test_help_is_fast_and_lists_the_flags():
    import subprocess
    import sys
    import time

    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "labram_jax.embed", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0
    for flag in (
        "--checkpoint",
        "--input",
        "--out",
        "--window",
        "--stride",
        "--batch_size",
        "--notch",
        "--no_patch_features",
        "floor((T - W) / S) + 1",
    ):
        assert flag in " ".join(result.stdout.split())  # argparse wraps lines
    assert time.monotonic() - start < 10


def test_windows_the_builders_would_drop_are_kept_and_flagged(finetune_ckpt, tmp_path):
    path = _write_edf(tmp_path / "eeg" / "flat.edf", NAMES_B, seed=4)
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    raw._data[1, : int(4 * SFREQ)] = 0.0  # O1 disconnected for the first 4 s
    mne.export.export_raw(str(path), raw, fmt="edf", physical_range="channelwise", overwrite=True, verbose="error")
    meta = embed.embed(finetune_ckpt, path, tmp_path / "f.npz", window_seconds=WINDOW, batch_size=2, progress=False)
    (rec,) = embed.read_embeddings(tmp_path / "f.npz")
    assert list(rec["issue"]) == ["flat", ""] and rec["pooled"].shape == (2, 100)
    assert rec["windows_flagged"] == {"flat": 1}
    assert "windows kept but flagged in <i>/issue (the dataset builders drop them): flat=1" in embed.format_summary(
        meta
    )
    # The builders drop exactly that window.
    assert [r["start"] for _, r in _builder_windows(path, stride=WINDOW)] == [800]
