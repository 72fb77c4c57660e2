"""Synthetic but EEG-like recordings, written as real EDF files in the TUAB and TUEV layouts, and an
unlabelled corpus for pre-training.

What varies from one 1-s patch to the next is what a tokenizer has to encode and what masked modeling has to
predict, so the signals are built to vary at that scale, with structure a model can learn:

* brain states that follow each other every few seconds (alert / eyes closed / drowsy), each with its own
  background gain and rates of rhythms and transients, so a patch is partly predictable from its neighbours
  in time;
* rhythm bursts that start and stop (posterior alpha, central mu, fronto-central beta, frontal-midline theta,
  spindles, delta), each with a smooth topography over the 10-20 positions, so a patch is partly
  predictable from its neighbours in space;
* transients and artefacts that come and go: eye blinks and lateral eye movements, muscle bursts, electrode
  pops, K-complexes, 60 Hz mains;
* background: 1/f ("pink") noise per channel plus a few spatially smooth 1/f sources (volume conduction);
* TUAB-like classes: "abnormal" recordings have a slower, weaker alpha and intermittent focal
  delta/theta slowing over one hemisphere (and sharp waves); "normal" ones do not;
* TUEV-like events, each one second long: spike-and-wave (SPSW, focal), generalized periodic discharges
  (GPED, all channels, 1 Hz), periodic lateralized discharges (PLED, one hemisphere), eye movements (EYEM,
  large slow frontal deflections of opposite polarity on F7/F8), muscle artefact (ARTF), background (BCKG).

Files carry TUH channel names (`EEG FP1-REF`, ...) and two extra non-EEG channels (`EEG EKG1-REF`,
`PHOTIC-REF`) that the builders must drop and report. Everything is seeded: the same arguments write the
same files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import mne
import numpy as np
from scipy.signal.windows import tukey

from labram_jax.channels import TUH_CHANNELS

SFREQ: float = 256.0
EXTRA_CHANNELS: tuple[str, ...] = ("EEG EKG1-REF", "PHOTIC-REF")

# Approximate positions on the flattened scalp (x: left -1 .. right +1, y: back -1 .. front +1).
POSITIONS: dict[str, tuple[float, float]] = {
    "FP1": (-0.31, 0.95),
    "FP2": (0.31, 0.95),
    "F7": (-0.81, 0.59),
    "F3": (-0.40, 0.55),
    "FZ": (0.0, 0.50),
    "F4": (0.40, 0.55),
    "F8": (0.81, 0.59),
    "T1": (-0.95, 0.30),
    "T2": (0.95, 0.30),
    "T3": (-1.0, 0.0),
    "C3": (-0.50, 0.0),
    "CZ": (0.0, 0.0),
    "C4": (0.50, 0.0),
    "T4": (1.0, 0.0),
    "A1": (-1.15, -0.10),
    "A2": (1.15, -0.10),
    "T5": (-0.81, -0.59),
    "P3": (-0.40, -0.55),
    "PZ": (0.0, -0.50),
    "P4": (0.40, -0.55),
    "T6": (0.81, -0.59),
    "O1": (-0.31, -0.95),
    "O2": (0.31, -0.95),
}
_XY = np.array([POSITIONS[c] for c in TUH_CHANNELS])

_TEMPORAL = {"T3", "T4", "T5", "T6", "F7", "F8", "T1", "T2", "A1", "A2"}
_LEFT = {"FP1", "F3", "C3", "P3", "O1", "F7", "T3", "T5", "A1", "T1"}
_RIGHT = {"FP2", "F4", "C4", "P4", "O2", "F8", "T4", "T6", "A2", "T2"}
_FOCAL_GROUPS = (
    ("F7", "T3", "T1", "F3"),
    ("F8", "T4", "T2", "F4"),
    ("T5", "P3", "O1", "T3"),
    ("T6", "P4", "O2", "T4"),
    ("C3", "CZ", "F3", "P3"),
)

STATES = ("alert", "relaxed", "drowsy")
"""Brain states: eyes open and alert, eyes closed and relaxed, drowsy."""

# Per state: background gain and events per minute of each rhythm / transient.
_STATE_GAIN = {"alert": 0.8, "relaxed": 1.0, "drowsy": 1.25}
_RATES = {  # per minute, in states alert / relaxed / drowsy
    "alpha": (4, 24, 8),
    "mu": (6, 3, 1),
    "beta": (20, 8, 4),
    "theta": (2, 4, 14),
    "spindle": (0, 1, 8),
    "blink": (14, 2, 4),
    "saccade": (6, 1, 1),
    "muscle": (3, 1, 1),
    "kcomplex": (0, 0, 3),
    "pop": (0.5, 0.5, 0.5),
}
# Rhythms: band (Hz), topography centre and width, amplitude (µV), duration (s).
_RHYTHMS = {
    "alpha": dict(band=(8.5, 11.5), centre=(0.0, -0.85), width=0.55, amp=(15, 35), dur=(1.0, 4.0)),
    "mu": dict(band=(9.0, 12.0), centre=None, width=0.30, amp=(8, 16), dur=(0.5, 2.0)),
    "beta": dict(band=(16.0, 26.0), centre=(0.0, 0.35), width=0.60, amp=(4, 9), dur=(0.3, 1.5)),
    "theta": dict(band=(4.0, 7.0), centre=(0.0, 0.40), width=0.50, amp=(10, 25), dur=(1.0, 3.0)),
    "spindle": dict(band=(11.5, 15.0), centre=(0.0, -0.10), width=0.50, amp=(10, 22), dur=(0.5, 1.5)),
    "delta": dict(band=(1.0, 3.5), centre=None, width=0.55, amp=(30, 70), dur=(1.0, 4.0)),
}


def topography(centre: tuple[float, float], width: float) -> np.ndarray:
    """`(23,)` weights in TUH order: a Gaussian bump of `width` around `centre` on the flattened scalp."""
    d2 = np.sum((_XY - np.asarray(centre)) ** 2, axis=1)
    return np.exp(-d2 / (2.0 * width**2))


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


def state_sequence(
    rng: np.random.Generator,
    seconds: float,
    dwell: tuple[float, float] = (4.0, 15.0),
    weights: Sequence[float] = (0.4, 0.4, 0.2),
) -> list[tuple[str, float, float]]:
    """`[(state, start_s, end_s)]` covering `[0, seconds)`: states of random dwell, never one twice in a row."""
    out: list[tuple[str, float, float]] = []
    t, last = 0.0, None
    p = np.asarray(weights, float)
    while t < seconds:
        choices = [i for i in range(len(STATES)) if STATES[i] != last]
        q = p[choices] / p[choices].sum()
        state = STATES[choices[int(rng.choice(len(choices), p=q))]]
        end = min(seconds, t + rng.uniform(*dwell))
        out.append((state, t, end))
        t, last = end, state
    return out


def _onsets(
    rng: np.random.Generator, segments: list[tuple[str, float, float]], kind: str, extra_rate: float = 0.0
) -> np.ndarray:
    """Event onsets (s) of one kind: Poisson within each state segment at that state's rate (+ `extra_rate`)."""
    out = []
    for state, start, end in segments:
        rate = _RATES[kind][STATES.index(state)] + extra_rate if kind in _RATES else extra_rate
        count = rng.poisson(rate * (end - start) / 60.0)
        out.append(rng.uniform(start, end, size=count))
    return np.sort(np.concatenate(out)) if out else np.zeros(0)


def _put(x: np.ndarray, start: int, wave: np.ndarray, gains: np.ndarray) -> None:
    """Adds `gains[:, None] * wave` to `x` from sample `start`, cropped to the recording."""
    start = max(int(start), 0)
    end = min(start + len(wave), x.shape[1])
    if end > start:
        x[:, start:end] += gains[:, None] * wave[None, : end - start]


def _burst(rng: np.random.Generator, name: str, sfreq: float, band: tuple[float, float] | None = None) -> np.ndarray:
    """A tapered oscillation of one rhythm, with a random frequency in its band that drifts a little."""
    spec = _RHYTHMS[name]
    lo, hi = band or spec["band"]
    m = int(rng.uniform(*spec["dur"]) * sfreq)
    t = np.arange(m) / sfreq
    f0 = rng.uniform(lo, hi)
    freq = f0 * (1.0 + 0.04 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t + rng.uniform(0, 2 * np.pi)))
    phase = 2 * np.pi * np.cumsum(freq) / sfreq + rng.uniform(0, 2 * np.pi)
    return rng.uniform(*spec["amp"]) * np.sin(phase) * tukey(m, 0.5)


def _background_noise(
    rng: np.random.Generator, segments: list[tuple[str, float, float]], n: int, sfreq: float
) -> np.ndarray:
    """1/f noise per channel plus three spatially smooth 1/f sources, scaled by the state's gain."""
    gain = np.ones(n)
    for state, start, end in segments:
        gain[int(start * sfreq) : int(end * sfreq)] = _STATE_GAIN[state]
    gain = np.convolve(gain, np.ones(int(0.5 * sfreq)) / int(0.5 * sfreq), mode="same")  # smooth transitions
    sources = _pink(rng, (3, n), sfreq)
    maps = np.stack([topography(rng.uniform(-0.8, 0.8, 2), rng.uniform(0.5, 1.0)) for _ in range(3)])
    return (8.0 * _pink(rng, (len(TUH_CHANNELS), n), sfreq) + 7.0 * maps.T @ sources) * gain[None]


def _add_rhythms(
    rng: np.random.Generator, x: np.ndarray, segments: list[tuple[str, float, float]], abnormal: bool, sfreq: float
) -> None:
    """Rhythm bursts that start and stop, each with its own topography (the centre jitters burst to burst);
    an abnormal recording's alpha is slower and weaker."""
    alpha_band = (6.5, 8.0) if abnormal else (8.5, 11.5)
    alpha_gain = 0.5 if abnormal else 1.0
    for name in ("alpha", "mu", "beta", "theta", "spindle"):
        spec = _RHYTHMS[name]
        for onset in _onsets(rng, segments, name):
            centre = spec["centre"] or (rng.choice([-0.5, 0.5]), 0.0)
            centre = np.asarray(centre) + rng.normal(0.0, 0.12, 2)
            band = alpha_band if name == "alpha" else None
            wave = _burst(rng, name, sfreq, band) * (alpha_gain if name == "alpha" else 1.0)
            _put(x, onset * sfreq, wave, topography(centre, spec["width"]))


def _add_slowing(
    rng: np.random.Generator, x: np.ndarray, segments: list[tuple[str, float, float]], sfreq: float
) -> None:
    """The abnormal class: intermittent polymorphic delta/theta, focal over one hemisphere, and sharp waves."""
    side = -0.55 if rng.random() < 0.5 else 0.55
    for onset in _onsets(rng, segments, "delta", extra_rate=9.0):
        centre = np.array([side, rng.uniform(-0.5, 0.5)])
        _put(x, onset * sfreq, _burst(rng, "delta", sfreq), topography(centre, _RHYTHMS["delta"]["width"]))
    same_side = np.sign(_XY[:, 0]) == np.sign(side)
    x += np.where(same_side, 6.0, 3.0)[:, None] * _band_noise(rng, x.shape[1], sfreq, 1.0, 4.0)[None]
    for onset in _onsets(rng, segments, "sharp", extra_rate=2.0):
        m = int(0.08 * sfreq)
        wave = -rng.uniform(50, 90) * np.interp(np.arange(m), [0, m // 2, m], [0, 1, 0])
        _put(x, onset * sfreq, wave, topography((side, rng.uniform(-0.5, 0.5)), 0.35))


def _add_artefacts(
    rng: np.random.Generator, x: np.ndarray, segments: list[tuple[str, float, float]], sfreq: float
) -> None:
    """Blinks, lateral eye movements, muscle bursts, K-complexes and electrode pops at their states' rates."""
    chans = TUH_CHANNELS
    idx = {c: i for i, c in enumerate(chans)}
    frontal = topography((0.0, 1.0), 0.35)
    for onset in _onsets(rng, segments, "blink"):
        m = int(rng.uniform(0.25, 0.4) * sfreq)
        _put(x, onset * sfreq, rng.uniform(60, 140) * np.sin(np.linspace(0, np.pi, m)), frontal)
    lateral = np.zeros(len(chans))
    lateral[[idx["F7"], idx["T1"]]], lateral[[idx["F8"], idx["T2"]]] = 1.0, -1.0
    lateral[[idx["FP1"], idx["F3"]]], lateral[[idx["FP2"], idx["F4"]]] = 0.4, -0.4
    for onset in _onsets(rng, segments, "saccade"):
        m = int(rng.uniform(0.3, 0.8) * sfreq)
        step = np.minimum(np.arange(m) / (0.04 * sfreq), 1.0) * np.exp(-np.arange(m) / (0.6 * sfreq))
        _put(x, onset * sfreq, rng.choice([-1, 1]) * rng.uniform(40, 90) * step, lateral)
    temporal = np.array([1.0 if c in _TEMPORAL else 0.1 for c in chans])
    for onset in _onsets(rng, segments, "muscle"):
        m = int(rng.uniform(0.3, 2.0) * sfreq)
        side = _LEFT if rng.random() < 0.5 else _RIGHT
        gains = temporal * np.array([1.0 if c in side else 0.4 for c in chans])
        burst = rng.uniform(10, 25) * _band_noise(rng, m, sfreq, 25.0, 70.0) * tukey(m, 0.3)
        _put(x, onset * sfreq, burst, gains)
    vertex = topography((0.0, 0.1), 0.5)
    for onset in _onsets(rng, segments, "kcomplex"):
        m = int(rng.uniform(0.6, 1.0) * sfreq)
        s = np.linspace(0, 2 * np.pi, m)
        _put(x, onset * sfreq, rng.uniform(50, 100) * (-np.sin(s) * np.exp(-s / 4)), vertex)
    for onset in _onsets(rng, segments, "pop"):
        gains = np.zeros(len(chans))
        gains[rng.integers(len(chans))] = 1.0
        m = int(0.6 * sfreq)
        _put(x, onset * sfreq, rng.uniform(100, 250) * np.exp(-np.arange(m) / (0.1 * sfreq)), gains)


def background(rng: np.random.Generator, seconds: float, abnormal: bool, sfreq: float = SFREQ) -> np.ndarray:
    """`(23, n)` microvolts of EEG in TUH channel order: state-dependent rhythms and artefacts over 1/f
    background, normal or with the abnormal slowing of the TUAB-like class."""
    n = int(round(seconds * sfreq))
    segments = state_sequence(rng, seconds)
    x = _background_noise(rng, segments, n, sfreq)
    _add_rhythms(rng, x, segments, abnormal, sfreq)
    if abnormal:
        _add_slowing(rng, x, segments, sfreq)
    _add_artefacts(rng, x, segments, sfreq)
    x += 4.0 * np.sin(2 * np.pi * 60.0 * np.arange(n) / sfreq)[None]  # US mains
    return rng.uniform(0.8, 1.25) * x


def add_event(rng: np.random.Generator, x: np.ndarray, onset: float, label: int, sfreq: float = SFREQ) -> None:
    """Adds a TUEV-like event (0-based label, see the module docstring) starting at `onset` seconds."""
    chans = TUH_CHANNELS
    s = int(round(onset * sfreq))
    idx = {c: i for i, c in enumerate(chans)}

    def put(rows: Sequence[int], start: int, wave: np.ndarray, gain: float = 1.0) -> None:
        start = max(start, 0)
        end = min(start + len(wave), x.shape[1])
        if end <= start:  # periodic discharges may run past the end of the recording
            return
        for r in rows:
            x[r, start:end] += gain * wave[: end - start]

    def spike_wave(amp: float) -> np.ndarray:
        spike = -amp * np.interp(np.arange(int(0.07 * sfreq)), [0, int(0.035 * sfreq), int(0.07 * sfreq)], [0, 1, 0])
        wave = 0.45 * amp * np.sin(np.linspace(0, np.pi, int(0.3 * sfreq)))
        return np.concatenate([spike, wave])

    if label == 0:  # SPSW: one or two focal spike-and-wave complexes
        group = [idx[c] for c in _FOCAL_GROUPS[rng.integers(len(_FOCAL_GROUPS))]]
        put(group, s + int(0.2 * sfreq), spike_wave(rng.uniform(120, 180)))
        if rng.random() < 0.5:
            put(group, s + int(0.6 * sfreq), spike_wave(rng.uniform(80, 120)))
    elif label in (1, 2):  # GPED (all channels) / PLED (one hemisphere): periodic sharp waves at ~1 Hz
        rows = list(range(len(chans))) if label == 1 else [idx[c] for c in (_LEFT if rng.random() < 0.5 else _RIGHT)]
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


def write_edf(
    path: str | os.PathLike[str],
    signal_uv: np.ndarray,
    sfreq: float = SFREQ,
    names: Sequence[str] | None = None,
    extra_channels: bool = True,
) -> None:
    """Writes `(C, n)` microvolts as an EDF file with TUH channel names (MNE export through edfio)."""
    names = list(names) if names is not None else [f"EEG {c}-REF" for c in TUH_CHANNELS]
    data = signal_uv * 1e-6
    if extra_channels:
        rng = np.random.default_rng(len(names))
        data = np.concatenate([data, 1e-4 * rng.standard_normal((len(EXTRA_CHANNELS), data.shape[1]))])
        names = names + list(EXTRA_CHANNELS)
    raw = mne.io.RawArray(data, mne.create_info(names, sfreq, "eeg"), verbose="error")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    mne.export.export_raw(str(path), raw, fmt="edf", physical_range="channelwise", overwrite=True, verbose="error")


def write_tuab_tree(
    root: str | os.PathLike[str],
    *,
    train_subjects: int = 16,
    eval_subjects: int = 5,
    seconds: float = 120.0,
    sfreq: float = SFREQ,
    seed: int = 0,
    second_session_every: int = 4,
) -> list[Path]:
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
                sessions = 2 if official == "train" and second_session_every and k % second_session_every == 0 else 1
                for sess in range(1, sessions + 1):
                    p = root / "edf" / official / cls / "01_tcp_ar" / f"{subject}_s{sess:03d}_t000.edf"
                    write_edf(p, background(rng, seconds, abnormal=bool(label), sfreq=sfreq), sfreq)
                    paths.append(p)
    return paths


def write_tuev_tree(
    root: str | os.PathLike[str],
    *,
    train_subjects: int = 16,
    eval_subjects: int = 5,
    seconds: float = 120.0,
    sfreq: float = SFREQ,
    seed: int = 1,
    event_spacing: float = 6.0,
) -> list[Path]:
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


def write_corpus_tree(
    root: str | os.PathLike[str],
    *,
    recordings: int = 48,
    seconds: float = 150.0,
    sfreq: float = SFREQ,
    seed: int = 2,
    abnormal_share: float = 0.4,
    event_spacing: float = 8.0,
) -> list[Path]:
    """Writes an unlabelled pre-training corpus: `<subject>/<subject>_<k>.edf`, one recording per subject.

    Backgrounds are abnormal with probability `abnormal_share`; TUEV-like events of the six classes occur
    about every `event_spacing` seconds. Nothing is annotated: the labels stay in the generator.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(recordings):
        subject = f"pre{k:05d}"
        x = background(rng, seconds, abnormal=rng.random() < abnormal_share, sfreq=sfreq)
        for onset in np.arange(rng.uniform(1.0, event_spacing), seconds - 2.0, event_spacing):
            add_event(rng, x, float(onset + rng.uniform(-1.0, 1.0)), int(rng.integers(0, 6)), sfreq)
        p = root / subject / f"{subject}_00000001.edf"
        write_edf(p, x, sfreq)
        paths.append(p)
    return paths


NONSTATIONARITY_BANDS: tuple[tuple[float, float], ...] = ((1, 4), (4, 8), (8, 13), (13, 30), (30, 70))


def patch_nonstationarity(signal: np.ndarray, rng: np.random.Generator, sfreq: float = 200.0) -> float:
    """How much the 1-s patches of `(C, T)` EEG differ, beyond what a stationary signal gives.

    The spread across patches of the log power in five bands (delta to gamma; per channel and band, then
    averaged), divided by the same spread for a phase-randomised copy of the recording, which has the same
    average spectrum but no structure in time. A stationary signal scores ~1; every burst, state change
    or transient raises it. Measured on 120-s recordings at 200 Hz: stationary pink noise 0.99; the demo's
    first generator 1.07-1.18; EEGMMI S001 (awake, motor tasks) 1.15-1.24; this generator 1.40-1.60.
    """
    patch = int(sfreq)
    c, t = signal.shape
    a = t // patch

    def spread(x: np.ndarray) -> float:
        spectrum = np.abs(np.fft.rfft(x[:, : a * patch].reshape(c, a, patch), axis=-1)) ** 2
        f = np.fft.rfftfreq(patch, 1.0 / sfreq)
        power = np.stack([spectrum[..., (f >= lo) & (f < hi)].sum(-1) for lo, hi in NONSTATIONARITY_BANDS], -1)
        return float(np.log(power).std(axis=1).mean())

    coefficients = np.fft.rfft(signal, axis=-1)
    phases = np.exp(1j * rng.uniform(0, 2 * np.pi, coefficients.shape))
    phases[:, 0] = 1.0
    surrogate = np.fft.irfft(coefficients * phases, n=t, axis=-1)
    return spread(signal) / spread(surrogate)
