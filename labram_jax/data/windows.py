"""Cutting preprocessed recordings into fixed windows and event contexts, with per-window checks.

All indices here are samples at 200 Hz (after preprocessing).
"""

from __future__ import annotations

import math

import numpy as np

from labram_jax.data.report import SkipReason

FLAT_STD_UV: float = 0.01
"""A channel whose standard deviation in a window is below this many microvolts carries no signal (EEG is
~10-100 µV; a disconnected channel band-passed is ~0). Such windows would also give NaN in the official
tokenizer targets, whose per-patch z-scoring has no epsilon (labram_reference.md section 9.2)."""


def window_starts(n_samples: int, window: int, stride: int) -> np.ndarray:
    """Start indices of the windows that fit: `(n - window) // stride + 1` of them, remainder dropped.

    Non-overlapping 10-s TUAB windows (`window == stride == 2000`) give `n // 2000`, as make_TUAB.py does.
    """
    if window <= 0 or stride <= 0:
        raise ValueError(f"window ({window}) and stride ({stride}) must be positive")
    if n_samples < window:
        return np.zeros((0,), np.int64)
    return np.arange(0, n_samples - window + 1, stride, dtype=np.int64)


def flat_channels(signal: np.ndarray, threshold_uv: float = FLAT_STD_UV) -> np.ndarray:
    """`(C, T) -> (C,)` bool: channels whose standard deviation is below `threshold_uv`."""
    return signal.std(axis=-1) < threshold_uv


def check_window(segment: np.ndarray, bad: np.ndarray | None = None, flat: np.ndarray | None = None) -> str | None:
    """The `SkipReason` of a `(C, W)` window, or None when it is usable.

    Args:
      segment: the preprocessed window.
      bad: `(W,)` samples derived from NaN input (see `bad_samples_at`), or None.
      flat: `(W,)` samples of a stretch where a channel had no signal before filtering, or None.
    """
    if (bad is not None and bad.any()) or not np.isfinite(segment).all():
        return SkipReason.NAN
    if (flat is not None and flat.any()) or flat_channels(segment).any():
        return SkipReason.FLAT
    return None


def bad_samples_at(bad_native: np.ndarray, sfreq: float, n_out: int, target: float = 200.0) -> np.ndarray:
    """Maps a `(T_native,)` bool mask to `(n_out,)` at `target` Hz, covering every output sample whose time
    span touches a bad native sample."""
    out = np.zeros(n_out + 1, np.int64)
    idx = np.flatnonzero(bad_native)
    if len(idx):
        ratio = target / sfreq
        lo = np.clip(np.floor(idx * ratio).astype(np.int64), 0, n_out)
        hi = np.clip(np.ceil((idx + 1) * ratio).astype(np.int64), 0, n_out)
        np.add.at(out, lo, 1)
        np.add.at(out, hi, -1)
    return np.cumsum(out[:-1]) > 0


def event_sample(seconds: float, sfreq: float = 200.0) -> int:
    """First sample index whose time is >= `seconds` (make_TUEV.py: `np.where(times >= t)[0][0]`)."""
    # The small tolerance absorbs decimal seconds such as 12.005 that are not exact in binary.
    return int(math.ceil(seconds * sfreq - 1e-6))


def circular_segment(signal: np.ndarray, start: int, length: int) -> np.ndarray:
    """`signal[:, start:start + length]` with indices wrapped around the recording.

    make_TUEV.py tiles the recording three times (`[s, s, s]`) and offsets by one length, so context that
    falls before the start or after the end is taken from the other end; modular indexing is the same for
    contexts within one recording length and never runs out.
    """
    idx = np.arange(start, start + length) % signal.shape[-1]
    return np.take(signal, idx, axis=-1)
