"""Preprocessing against closed forms: what the band-pass, notch, resampling and units must do to sines."""

import mne
import numpy as np
import pytest

from labram_jax.data.preprocess import PreprocessConfig, output_length, preprocess_block
from labram_jax.data.recording import FileTask, process_file
from tfds_builders.demo.synth import write_edf


def _fit(x: np.ndarray, freq: float, sfreq: float, t0: float = 0.0) -> tuple[float, float, np.ndarray]:
    """Least-squares sinusoid of `freq` in `x` sampled from time `t0` (independent of MNE).

    Returns (amplitude, delay in seconds relative to `sin(2 pi f t)`, residual).
    """
    t = t0 + np.arange(x.shape[-1]) / sfreq
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
    return float(np.hypot(*coef)), float(-np.arctan2(coef[1], coef[0]) / (2 * np.pi * freq)), x - basis @ coef


def _amplitude(x: np.ndarray, freq: float, sfreq: float) -> float:
    return _fit(x, freq, sfreq)[0]


# MNE's FFT resampling (Raw.resample defaults, as the reference) pads the signal and rounds the padding to
# whole output samples, which delays the output by up to half a 200 Hz sample depending on the length.
HALF_SAMPLE = 0.5 / 200.0 + 1e-5


@pytest.mark.parametrize("sfreq", [250.0, 256.0, 500.0, 160.0])
def test_sine_survives_mains_removed_units_and_length(sfreq):
    seconds = 60
    t = np.arange(int(seconds * sfreq)) / sfreq
    volts = 50e-6 * np.sin(2 * np.pi * 10 * t) + 30e-6 * np.sin(2 * np.pi * 50 * t) + 20e-6  # + DC offset
    out = preprocess_block(volts[None].copy(), sfreq, PreprocessConfig())
    assert out.dtype == np.float32
    assert out.shape == (1, seconds * 200)  # resampled length
    # Away from the edges (the 0.1 Hz high-pass is a 33-s FIR: 16.5 s of transient at each end), the output
    # is the 10 Hz sine alone, in microvolts, in phase up to the resampler's sub-sample delay.
    mid = slice(20 * 200, 40 * 200)
    amplitude, delay, residual = _fit(out[0, mid], 10.0, 200.0, t0=20.0)
    assert amplitude == pytest.approx(50.0, rel=0.01)  # µV, pass-band gain 1
    assert abs(delay) <= HALF_SAMPLE  # zero-phase filters
    assert np.abs(residual).max() < 0.02 * 50.0  # nothing else left: 50 Hz notched, DC gone
    assert _amplitude(out[0, mid], 50.0, 200.0) < 0.005 * 30.0
    assert abs(out[0, mid].mean()) < 0.05  # high-pass removes the DC offset


def test_notch_is_configurable_and_60hz_stays_in_band_by_default():
    sfreq, seconds = 256.0, 60
    t = np.arange(int(seconds * sfreq)) / sfreq
    volts = 40e-6 * np.sin(2 * np.pi * 60 * t)
    mid = slice(20 * 200, 40 * 200)
    kept = preprocess_block(volts[None].copy(), sfreq, PreprocessConfig())  # 50 Hz notch (reference)
    removed = preprocess_block(volts[None].copy(), sfreq, PreprocessConfig(notch_hz=60.0))
    assert _amplitude(kept[0, mid], 60.0, 200.0) == pytest.approx(40.0, rel=0.02)
    assert _amplitude(removed[0, mid], 60.0, 200.0) < 0.4


def test_out_of_band_components_are_removed():
    sfreq, seconds = 500.0, 60
    t = np.arange(int(seconds * sfreq)) / sfreq
    # Above the low-pass stop edge (75 Hz + the automatic 18.75 Hz transition band).
    volts = 30e-6 * np.sin(2 * np.pi * 110 * t)
    out = preprocess_block(volts[None].copy(), sfreq, PreprocessConfig())
    mid = slice(20 * 200, 40 * 200)
    assert np.abs(out[0, mid]).max() < 0.01 * 30.0


def test_matches_mne_raw_methods():
    """The array functions reproduce the reference's Raw method chain (filter, notch_filter, resample)."""
    sfreq = 256.0
    rng = np.random.default_rng(0)
    data = rng.standard_normal((3, int(30 * sfreq))) * 20e-6
    raw = mne.io.RawArray(data.copy(), mne.create_info(["FP1", "CZ", "O2"], sfreq, "eeg"), verbose="error")
    raw.filter(0.1, 75.0, verbose="error").notch_filter(50.0, verbose="error").resample(200, verbose="error")
    reference = raw.get_data(units="uV")
    ours = preprocess_block(data.copy(), sfreq, PreprocessConfig())
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-3)


def test_output_length_matches_mne():
    for n, sfreq in [(256 * 61 + 7, 256.0), (1000, 160.0), (5003, 512.0), (2000, 200.0)]:
        x = np.zeros((1, n))
        assert mne.filter.resample(x, up=200.0, down=sfreq, npad="auto").shape[1] == output_length(n, sfreq)


def test_edf_round_trip_through_the_file_pipeline(tmp_path):
    """A known signal written as EDF comes out of process_file as the expected µV windows."""
    sfreq, seconds = 256.0, 60
    t = np.arange(int(seconds * sfreq)) / sfreq
    uv = np.stack([60.0 * np.sin(2 * np.pi * 10 * t + k) for k in range(3)])
    path = tmp_path / "sine.edf"
    write_edf(path, uv, sfreq, names=["EEG FP1-REF", "EEG CZ-REF", "EEG O2-REF"], extra_channels=False)
    report, records = process_file(FileTask(path=str(path), recording_id="sine", window_seconds=10.0))
    assert report.status == "ok" and report.units_written == 6 == len(records)
    key, rec = records[2]  # 20-30 s: away from the high-pass transients at the edges
    assert rec["start"] == 4000 and rec["signal"].shape == (3, 2000) and rec["signal"].dtype == np.float32
    for k in range(3):
        amplitude, delay, residual = _fit(rec["signal"][k], 10.0, 200.0, t0=20.0)
        assert amplitude == pytest.approx(60.0, rel=0.01)  # EDF physical unit uV -> volts -> µV
        phase_delay = -k / (2 * np.pi * 10.0)  # the sine was advanced by k radians
        assert abs(delay - phase_delay) <= HALF_SAMPLE
        assert np.abs(residual).max() < 0.01 * 60.0
