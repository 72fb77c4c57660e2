"""Synthetic but EEG-like recordings, written as real EDF files in the TUAB and TUEV layouts.

The signals have what a model needs to learn something and a pipeline needs to be exercised:

* background: 1/f ("pink") noise per channel plus a shared component (volume conduction), ~15 µV;
* rhythms: posterior alpha (8.5-11 Hz, waxing and waning), fronto-central beta (~20 Hz);
* artefacts: eye blinks on the frontopolar channels, muscle bursts on temporal channels, 60 Hz mains;
* TUAB-like classes: "abnormal" recordings carry polymorphic delta/theta slowing (1-4 Hz, partly
  lateralised), a slower and weaker alpha; "normal" ones do not;
* TUEV-like events, each one second long: spike-and-wave (SPSW, focal), generalized periodic discharges
  (GPED, all channels, 1 Hz), periodic lateralized discharges (PLED, one hemisphere), eye movements (EYEM,
  large slow frontal deflections of opposite polarity on F7/F8), muscle artefact (ARTF), background (BCKG).

Files carry TUH channel names (`EEG FP1-REF`, ...) and two extra non-EEG channels (`EEG EKG1-REF`,
`PHOTIC-REF`) that the builders must drop and report. Everything is seeded: the same arguments write the
same files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import mne
import numpy as np

from labram_jax.channels import TUH_CHANNELS

SFREQ: float = 256.0
EXTRA_CHANNELS: tuple[str, ...] = ("EEG EKG1-REF", "PHOTIC-REF")

_POSTERIOR = {"O1": 1.0, "O2": 1.0, "P3": 0.6, "P4": 0.6, "PZ": 0.6, "T5": 0.5, "T6": 0.5}
_FRONTAL = {"FP1", "FP2", "F3", "F4", "F7", "F8", "FZ", "C3", "C4", "CZ"}
_TEMPORAL = {"T3", "T4", "T5", "T6", "F7", "F8", "T1", "T2", "A1", "A2"}
_LEFT = {"FP1", "F3", "C3", "P3", "O1", "F7", "T3", "T5", "A1", "T1"}
_RIGHT = {"FP2", "F4", "C4", "P4", "O2", "F8", "T4", "T6", "A2", "T2"}
_FOCAL_GROUPS = (("F7", "T3", "T1", "F3"), ("F8", "T4", "T2", "F4"), ("T5", "P3", "O1", "T3"),
                 ("T6", "P4", "O2", "T4"), ("C3", "CZ", "F3", "P3"))


def _pink(rng: np.random.Generator, shape: tuple[int, int], sfreq: float) -> np.ndarray:
    """Unit-variance 1/f noise along the last axis."""
    spec = np.fft.rfft(rng.standard_normal(shape), axis=-1)
    f = np.fft.rfftfreq(shape[-1], 1.0 / sfreq)
    spec *= 1.0 / np.sqrt(np.maximum(f, 0.5))
    x = np.fft.irfft(spec, n=shape[-1], axis=-1)
    return x / x.std(axis=-1, keepdims=True)


def _band_noise(rng: np.random.Generator, n: int, sfreq: float, lo: float, hi: float) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sfreq)
    spec[(f < lo) | (f > hi)] = 0.0
    x = np.fft.irfft(spec, n=n)
    return x / (x.std() + 1e-12)


def _envelope(rng: np.random.Generator, n: int, sfreq: float, rate_hz: float = 0.3) -> np.ndarray:
    """Slow positive modulation in [0.3, 1.0] (waxing and waning rhythms)."""
    e = _band_noise(rng, n, sfreq, 0.0, rate_hz)
    return 0.65 + 0.35 * np.tanh(e)


def background(rng: np.random.Generator, seconds: float, abnormal: bool, sfreq: float = SFREQ) -> np.ndarray:
    """`(23, n)` microvolts of resting EEG in TUH channel order, normal or with abnormal slowing."""
    n = int(round(seconds * sfreq))
    t = np.arange(n) / sfreq
    chans = TUH_CHANNELS
    x = 12.0 * _pink(rng, (len(chans), n), sfreq) + 6.0 * _pink(rng, (1, n), sfreq)
    scale = rng.uniform(0.8, 1.25)
    alpha_f = rng.uniform(8.5, 11.0) if not abnormal else rng.uniform(6.5, 8.0)
    alpha_amp = 18.0 if not abnormal else 8.0
    alpha = np.sin(2 * np.pi * alpha_f * t + rng.uniform(0, 2 * np.pi)) * _envelope(rng, n, sfreq)
    beta = _band_noise(rng, n, sfreq, 17.0, 24.0)
    for i, c in enumerate(chans):
        x[i] += alpha_amp * _POSTERIOR.get(c, 0.15) * alpha
        if c in _FRONTAL:
            x[i] += 3.0 * beta
    if abnormal:
        # Polymorphic delta/theta, stronger over one (random) hemisphere.
        slow = _band_noise(rng, n, sfreq, 1.0, 4.0) * _envelope(rng, n, sfreq, 0.2)
        side = _LEFT if rng.random() < 0.5 else _RIGHT
        for i, c in enumerate(chans):
            x[i] += (35.0 if c in side else 18.0) * slow + 6.0 * _band_noise(rng, n, sfreq, 1.0, 4.0)
    # Eye blinks every few seconds on the frontopolar channels.
    for onset in np.cumsum(rng.uniform(3.0, 9.0, size=int(seconds / 3) + 1)):
        if onset + 0.4 >= seconds:
            break
        s = int(onset * sfreq)
        w = np.sin(np.linspace(0, np.pi, int(0.3 * sfreq))) * rng.uniform(60, 120)
        for i, c in enumerate(chans):
            if c in ("FP1", "FP2"):
                x[i, s:s + len(w)] += w
            elif c in ("F3", "F4", "F7", "F8", "FZ"):
                x[i, s:s + len(w)] += 0.3 * w
    # Occasional muscle bursts on temporal channels.
    for onset in rng.uniform(0, max(seconds - 1.5, 0.1), size=int(seconds / 30)):
        s, m = int(onset * sfreq), int(rng.uniform(0.5, 1.5) * sfreq)
        burst = _band_noise(rng, m, sfreq, 30.0, 70.0) * 15.0
        for i, c in enumerate(chans):
            if c in _TEMPORAL:
                x[i, s:s + m] += burst[: x.shape[1] - s]
    x += 4.0 * np.sin(2 * np.pi * 60.0 * t)[None]  # US mains
    return scale * x


def add_event(rng: np.random.Generator, x: np.ndarray, onset: float, label: int, sfreq: float = SFREQ) -> None:
    """Adds a TUEV-like event (0-based label, see the module docstring) starting at `onset` seconds."""
    chans = TUH_CHANNELS
    s = int(round(onset * sfreq))
    idx = {c: i for i, c in enumerate(chans)}

    def put(rows: Sequence[int], start: int, wave: np.ndarray, gain: float = 1.0) -> None:
        start = max(start, 0)
        end = min(start + len(wave), x.shape[1])
        for r in rows:
            x[r, start:end] += gain * wave[: end - start]

    def spike_wave(amp: float) -> np.ndarray:
        spike = -amp * np.interp(np.arange(int(0.07 * sfreq)), [0, int(0.035 * sfreq), int(0.07 * sfreq)],
                                 [0, 1, 0])
        wave = 0.45 * amp * np.sin(np.linspace(0, np.pi, int(0.3 * sfreq)))
        return np.concatenate([spike, wave])

    if label == 0:  # SPSW: one or two focal spike-and-wave complexes
        group = [idx[c] for c in _FOCAL_GROUPS[rng.integers(len(_FOCAL_GROUPS))]]
        put(group, s + int(0.2 * sfreq), spike_wave(rng.uniform(120, 180)))
        if rng.random() < 0.5:
            put(group, s + int(0.6 * sfreq), spike_wave(rng.uniform(80, 120)))
    elif label in (1, 2):  # GPED (all channels) / PLED (one hemisphere): periodic sharp waves at ~1 Hz
        rows = list(range(len(chans))) if label == 1 else \
            [idx[c] for c in (_LEFT if rng.random() < 0.5 else _RIGHT)]
        period = rng.uniform(0.8, 1.2)
        for k in range(-2, 4):
            put(rows, s + int((0.3 + k * period) * sfreq), spike_wave(rng.uniform(90, 130)))
    elif label == 3:  # EYEM: lateral eye movement, opposite polarity on F7/F8, large on FP1/FP2
        n = int(rng.uniform(0.6, 0.9) * sfreq)
        w = np.sin(np.linspace(0, np.pi, n)) * rng.uniform(120, 200)
        sign = 1.0 if rng.random() < 0.5 else -1.0
        put([idx["F7"]], s + int(0.1 * sfreq), sign * w)
        put([idx["F8"]], s + int(0.1 * sfreq), -sign * w)
        put([idx["FP1"], idx["FP2"]], s + int(0.1 * sfreq), w, 0.6)
    elif label == 4:  # ARTF: strong muscle burst or an electrode pop
        if rng.random() < 0.6:
            rows = [idx[c] for c in _TEMPORAL]
            put(rows, s, _band_noise(rng, int(sfreq), sfreq, 25.0, 90.0) * rng.uniform(40, 70))
        else:
            r = int(rng.integers(len(chans)))
            pop = rng.uniform(200, 400) * np.exp(-np.arange(int(0.8 * sfreq)) / (0.12 * sfreq))
            put([r], s + int(0.2 * sfreq), pop)
    # label 5 (BCKG): background only.


def write_edf(path: str | os.PathLike[str], signal_uv: np.ndarray, sfreq: float = SFREQ,
              names: Sequence[str] | None = None, extra_channels: bool = True) -> None:
    """Writes `(C, n)` microvolts as an EDF file with TUH channel names (MNE export through edfio)."""
    names = list(names) if names is not None else [f"EEG {c}-REF" for c in TUH_CHANNELS]
    data = signal_uv * 1e-6
    if extra_channels:
        rng = np.random.default_rng(len(names))
        data = np.concatenate([data, 1e-4 * rng.standard_normal((len(EXTRA_CHANNELS), data.shape[1]))])
        names = names + list(EXTRA_CHANNELS)
    raw = mne.io.RawArray(data, mne.create_info(names, sfreq, "eeg"), verbose="error")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    mne.export.export_raw(str(path), raw, fmt="edf", physical_range="channelwise", overwrite=True,
                          verbose="error")


def write_tuab_tree(root: str | os.PathLike[str], *, train_subjects: int = 16, eval_subjects: int = 5,
                    seconds: float = 120.0, sfreq: float = SFREQ, seed: int = 0,
                    second_session_every: int = 4) -> list[Path]:
    """Writes a TUAB-layout tree: `edf/{train,eval}/{normal,abnormal}/01_tcp_ar/<subj>_s00k_t000.edf`.

    `train_subjects` / `eval_subjects` are per class; every `second_session_every`-th training subject
    gets a second recording (so splits must keep all of a subject's recordings together).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    paths = []
    serial = 0
    for official, count in (("train", train_subjects), ("eval", eval_subjects)):
        for label, cls in enumerate(("normal", "abnormal")):
            for k in range(count):
                subject = f"demo{serial:05d}"
                serial += 1
                sessions = 2 if official == "train" and second_session_every and k % second_session_every == 0 \
                    else 1
                for sess in range(1, sessions + 1):
                    p = root / "edf" / official / cls / "01_tcp_ar" / f"{subject}_s{sess:03d}_t000.edf"
                    write_edf(p, background(rng, seconds, abnormal=bool(label), sfreq=sfreq), sfreq)
                    paths.append(p)
    return paths


def write_tuev_tree(root: str | os.PathLike[str], *, train_subjects: int = 16, eval_subjects: int = 5,
                    seconds: float = 120.0, sfreq: float = SFREQ, seed: int = 1,
                    event_spacing: float = 6.0) -> list[Path]:
    """Writes a TUEV-layout tree: `edf/train/<subj>/<subj>_00000001.edf` (+ `.rec`) and
    `edf/eval/<id>/<name>.edf` (+ `.rec`), events of all six classes every `event_spacing` seconds
    (1-3 `.rec` rows each, on random annotator channels)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    paths = []
    for official, count in (("train", train_subjects), ("eval", eval_subjects)):
        for k in range(count):
            subject = f"{'dev' if official == 'train' else 'ev'}{k:05d}"
            name = f"{subject}_00000001" if official == "train" else f"{subject}_a_"
            p = root / "edf" / official / subject / f"{name}.edf"
            x = background(rng, seconds, abnormal=rng.random() < 0.3, sfreq=sfreq)
            rows = []
            onsets = np.arange(2.5, seconds - 3.5, event_spacing)
            labels = rng.integers(0, 6, size=len(onsets))
            for onset, label in zip(onsets, labels):
                onset = float(round(onset + rng.uniform(0, 1.0), 1))
                add_event(rng, x, onset, int(label), sfreq)
                for ch in rng.choice(22, size=int(rng.integers(1, 4)), replace=False):
                    rows.append(f"{int(ch)},{onset:.4f},{onset + 1.0:.4f},{int(label) + 1}")
            write_edf(p, x, sfreq)
            p.with_suffix(".rec").write_text("\n".join(rows) + "\n")
            paths.append(p)
    return paths
