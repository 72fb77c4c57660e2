"""The signal preprocessing of LaBraM (labram_reference.md section 7.1), with MNE.

Order and defaults of the official dataset makers, on the native sampling rate:
`raw.filter(0.1, 75.0)` (zero-phase FIR, firwin/Hamming, automatic transition bands), `raw.notch_filter(50)`,
`raw.resample(200)` (FFT), then microvolts. We call the array functions those `Raw` methods call
(`mne.filter.filter_data`, `mne.filter.notch_filter`, `mne.filter.resample` with the `Raw.resample` defaults)
so that channels can be processed in blocks, which bounds memory on long, dense recordings.

MNE's FFT resampling pads the signal and rounds the padding to whole output samples, so depending on the
recording's length the output can lag by up to half a 200 Hz sample (2.5 ms); the reference has the same
behaviour (it calls `Raw.resample`), and the tests allow for it.

The notch defaults to 50 Hz as in the reference, also for the US-recorded TUH data; set
`PreprocessConfig(notch_hz=60.0)` for 60 Hz mains, or `None` to skip it.
"""

from __future__ import annotations

import dataclasses

import mne
import numpy as np

from labram_jax import layout

TARGET_SFREQ: float = layout.SAMPLING_RATE


@dataclasses.dataclass(frozen=True)
class PreprocessConfig:
    """Filtering and resampling parameters.

    Attributes:
      l_freq: band-pass lower edge in Hz.
      h_freq: band-pass upper edge in Hz; the native sampling rate must exceed `2 * h_freq`.
      notch_hz: mains frequency to notch (that frequency only, as `raw.notch_filter(50.0)`), or None.
      sfreq: output sampling rate in Hz.
      channel_block: channels filtered together; bounds the float64 working memory per recording.
    """

    l_freq: float = 0.1
    h_freq: float = 75.0
    notch_hz: float | None = 50.0
    sfreq: float = TARGET_SFREQ
    channel_block: int = 32

    def min_input_sfreq(self) -> float:
        """Lowest native rate the band-pass accepts: Nyquist must be above `h_freq`."""
        return 2.0 * self.h_freq

    def as_dict(self) -> dict[str, float | None]:
        return {"l_freq": self.l_freq, "h_freq": self.h_freq, "notch_hz": self.notch_hz, "sfreq": self.sfreq}


def output_length(n_samples: int, sfreq: float, target: float = TARGET_SFREQ) -> int:
    """Samples after resampling `n_samples` from `sfreq` to `target`, as `mne.filter.resample` computes it."""
    if sfreq == target:
        return n_samples
    return int(round(n_samples * target / sfreq))


def preprocess_block(data_volts: np.ndarray, sfreq: float, config: PreprocessConfig) -> np.ndarray:
    """Band-pass, notch and resample one block of channels.

    Args:
      data_volts: `(C, T)` float64 in volts at `sfreq` (modified in place by MNE when possible).
      sfreq: native sampling rate in Hz; must be above `config.min_input_sfreq()`.
      config: parameters.

    Returns:
      `(C, output_length(T, sfreq))` float32 in microvolts at `config.sfreq`.
    """
    if sfreq <= config.min_input_sfreq():
        raise ValueError(
            f"sampling rate {sfreq} Hz is too low for a {config.h_freq} Hz low-pass (needs > "
            f"{config.min_input_sfreq()} Hz); lower PreprocessConfig.h_freq or drop this recording"
        )
    x = np.asarray(data_volts, dtype=np.float64)
    x = mne.filter.filter_data(x, sfreq, config.l_freq, config.h_freq, n_jobs=None, copy=False, verbose="error")
    if config.notch_hz is not None:
        # `raw.notch_filter(50.0)` in the reference removes 50 Hz only (no harmonics); harmonics above
        # 75 Hz are already in the low-pass stop band.
        if config.notch_hz < sfreq / 2.0:
            x = mne.filter.notch_filter(x, sfreq, config.notch_hz, copy=False, verbose="error")
    if sfreq != config.sfreq:
        # Raw.resample's defaults (npad="auto", window="auto", pad="auto", FFT method).
        x = mne.filter.resample(
            x, up=config.sfreq, down=sfreq, npad="auto", window="auto", pad="auto", method="fft", verbose="error"
        )
    x *= 1e6  # volts -> microvolts
    return x.astype(np.float32)
