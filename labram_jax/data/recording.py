"""The per-file pipeline every builder shares: read -> map channels -> preprocess -> windows -> records.

A builder describes each input file with a picklable `FileTask` and calls `process_file(task)`, in the
main process or in worker processes. It returns the file's `FileReport` and its records as
`(key, example)` pairs ready for TFDS. Three ways of cutting records exist:

* fixed windows (`task.events is None`, `task.event_map is None`): `window_seconds` long every
  `stride_seconds`, one label per file (`fixed_windows`);
* events (`task.events` given, e.g. TUEV `.rec` rows): a context of `context_before` seconds before the
  onset to `context_after` after the event's one-second span, wrapped circularly at the recording ends as
  make_TUEV.py does (`event_windows`);
* annotations (`task.event_map` given): the recording's own annotations (EDF+ annotations, BrainVision
  markers, EEGLAB events: MNE's `raw.annotations`); each annotation whose description the map names
  becomes the window `[onset + tmin, onset + tmax)`, not wrapped (`annotation_windows`).

Records (dicts of numpy arrays and Python scalars):

| key | value |
|---|---|
| `signal` | `(C, T)` float32, microvolts at 200 Hz, channels in `channel_ids` order |
| `channel_ids` | `(C,)` int32 rows of the spatial embedding (`labram_jax.channels.channel_id`) |
| `label` | int; -1 when the dataset has no labels; float for a regression target |
| `recording_id`, `subject_id` | str |
| `start` | int, first sample of the record in the 200 Hz recording (events: may be negative = wrapped) |
|  | (annotations: counted from the recording's first sample, also for FIF files with `first_samp > 0`) |
| `event_channel` | int, event mode only: the annotator's channel index (-1 unknown) |
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, NamedTuple

import numpy as np

from labram_jax.channels import channel_ids as vocabulary_ids
from labram_jax.channels import is_usable, map_channels
from labram_jax.data.open_raw import RecordingError, read_raw
from labram_jax.data.preprocess import TARGET_SFREQ, PreprocessConfig, output_length, preprocess_block
from labram_jax.data.report import FileReport, SkipReason
from labram_jax.data.windows import (
    FLAT_STD_UV,
    bad_samples_at,
    check_window,
    circular_segment,
    event_sample,
    flat_channels,
    window_starts,
)

Example = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Event:
    """One annotated event: seconds from the recording start, 0-based label, annotator channel (-1 none)."""

    start: float
    stop: float
    label: int
    channel: int = -1


class Annotation(NamedTuple):
    """One annotation of a recording: seconds from its first sample, duration, description (stripped)."""

    onset: float
    duration: float
    description: str


@dataclasses.dataclass(frozen=True)
class FileTask:
    """Everything needed to turn one file into records, picklable for worker processes.

    Attributes:
      path: the recording.
      display_path: how the report names it (usually relative to the dataset root).
      split, recording_id, subject_id: stored in the report and the records.
      label: the file's label in fixed-window mode (-1: unlabelled; a float for a regression target).
      montage: if given, exactly these vocabulary names in this order (TUH's 23); a file lacking any is
        skipped as `missing_channels`. If None, every channel that maps to the vocabulary is kept.
      preprocess: filtering and resampling.
      window_seconds, stride_seconds: fixed-window mode (stride defaults to the window).
      events: event mode when not None.
      bad_events: events rejected before processing (unparsable rows, labels out of range); reported.
      context_before, context_after: event mode, seconds around the one-second event.
      skip: (reason, detail) when the builder already knows the file cannot be used (e.g. no .rec file).
      event_map: annotation mode when not None: `(description, label)` pairs; annotations with another
        description are counted in `FileReport.unmapped_events`.
      tmin, tmax: annotation mode, the record is `[onset + tmin, onset + tmax)` seconds.
    """

    path: str
    display_path: str = ""
    split: str = ""
    recording_id: str = ""
    subject_id: str = ""
    label: int | float = -1
    montage: tuple[str, ...] | None = None
    preprocess: PreprocessConfig = PreprocessConfig()
    window_seconds: float = 10.0
    stride_seconds: float | None = None
    events: tuple[Event, ...] | None = None
    bad_events: int = 0
    context_before: float = 2.0
    context_after: float = 2.0
    skip: tuple[str, str] | None = None
    event_map: tuple[tuple[str, int], ...] | None = None
    tmin: float = 0.0
    tmax: float = 0.0


@dataclasses.dataclass
class Recording:
    """A preprocessed recording: `(C, T)` float32 µV at 200 Hz, its channels and its annotations."""

    signal: np.ndarray
    channel_names: list[str]
    channel_ids: np.ndarray
    bad: np.ndarray | None  # (T,) samples derived from NaN input, or None
    flat: np.ndarray | None = None  # (T,) samples in a 1-s stretch where some channel had no signal
    annotations: tuple[Annotation, ...] = ()


def read_annotations(raw: Any) -> tuple[Annotation, ...]:
    """The annotations of an MNE `Raw`, with onsets in seconds from its first sample.

    MNE keeps `raw.annotations.onset` relative to the measurement start (`orig_time`, or time 0 without a
    measurement date), while sample 0 of the data is `raw.first_time` seconds after it: 0 for EDF, but
    not for a FIF file recorded after a start-up period or cropped. Subtracting it gives the offset into
    `raw.get_data()`, and so into the preprocessed signal.
    """
    ann = raw.annotations
    first = float(raw.first_time)
    return tuple(
        Annotation(float(o) - first, float(d), str(desc).strip())
        for o, d, desc in zip(ann.onset, ann.duration, ann.description)
    )


def _check_event_map(task: FileTask, annotations: tuple[Annotation, ...], report: FileReport) -> bool:
    """Counts the annotations the event map does not name; False (file skipped) when it names none.

    Runs before preprocessing: a recording without a single usable event is not worth filtering.
    """
    mapped = dict(task.event_map or ())
    for a in annotations:
        if a.description not in mapped:
            report.unmapped_events[a.description] = report.unmapped_events.get(a.description, 0) + 1
    if any(a.description in mapped for a in annotations):
        return True
    if not annotations:
        report.skip(SkipReason.NO_EVENTS, "the recording has no annotations (events, markers)")
    else:
        report.skip(
            SkipReason.NO_EVENTS,
            f"none of its {len(annotations)} annotations has a description of the event map "
            f"{sorted(mapped)}; descriptions: {dict(sorted(report.unmapped_events.items()))}",
        )
    return False


def _samples(seconds: float) -> int:
    return int(round(seconds * TARGET_SFREQ))


def load_recording(task: FileTask, report: FileReport, min_samples: int = 1) -> Recording | None:
    """Reads, selects channels and preprocesses `task.path`; returns None (report marked) when skipped.

    Memory: channels are read and filtered `task.preprocess.channel_block` at a time, so the peak is the
    float32 output plus one float64 block at the native rate.
    """
    cfg = task.preprocess
    try:
        raw = read_raw(task.path)
    except RecordingError as err:
        report.skip(err.reason, err.detail)
        return None
    sfreq = float(raw.info["sfreq"])
    n_native = int(raw.n_times)
    report.sfreq, report.seconds = sfreq, n_native / sfreq
    annotations = read_annotations(raw)
    if task.event_map is not None and not _check_event_map(task, annotations, report):
        return None
    names = list(raw.ch_names)

    kept_idx, kept_names, dropped = map_channels(names)
    report.channels_dropped = {
        n: ("duplicate electrode" if is_usable(n) else "not in the electrode vocabulary") for n in dropped
    }
    if task.montage is not None:
        position = dict(zip(kept_names, kept_idx))
        missing = [m for m in task.montage if m not in position]
        if missing:
            report.skip(
                SkipReason.MISSING_CHANNELS,
                f"lacks {missing} of the {len(task.montage)}-channel montage; channels: {names}",
            )
            return None
        for name, i in zip(kept_names, kept_idx):
            if name not in task.montage:
                report.channels_dropped[names[i]] = f"not in the {len(task.montage)}-channel montage"
        kept_idx = [position[m] for m in task.montage]
        kept_names = list(task.montage)
    if not kept_idx:
        report.skip(
            SkipReason.NO_USABLE_CHANNELS,
            f"none of the channel names {names} is an electrode of the vocabulary "
            "(labram_jax.channels.VOCABULARY); rename the channels to 10-20/10-10 names",
        )
        return None
    if sfreq <= cfg.min_input_sfreq():
        report.skip(
            SkipReason.LOW_SAMPLING_RATE,
            f"{sfreq:g} Hz; the {cfg.l_freq:g}-{cfg.h_freq:g} Hz band-pass needs more than "
            f"{cfg.min_input_sfreq():g} Hz",
        )
        return None
    n_out = output_length(n_native, sfreq, cfg.sfreq)
    if n_out < min_samples:
        report.skip(
            SkipReason.TOO_SHORT, f"{n_native / sfreq:.2f} s, shorter than one {min_samples / cfg.sfreq:g}-s window"
        )
        return None

    signal = np.empty((len(kept_idx), n_out), np.float32)
    bad_native = np.zeros(n_native, bool)
    flat = np.zeros(len(kept_idx), bool)
    # Flatness is judged on the raw signal, per 1-s segment (= one patch after resampling): after the
    # 0.1 Hz high-pass (a ~33-s FIR) a dead stretch picks up ringing from its neighbours. Kept per channel
    # so that dropping a channel flat over the whole file also drops its flat seconds.
    bounds = np.round(np.arange(0, n_native / sfreq, 1.0) * sfreq).astype(np.int64)
    flat_by_channel = np.zeros((len(kept_idx), len(bounds)), bool)
    for lo in range(0, len(kept_idx), cfg.channel_block):
        block = kept_idx[lo : lo + cfg.channel_block]
        x = raw.get_data(picks=block, verbose="error")
        finite = np.isfinite(x)
        if not finite.all():
            bad_native |= ~finite.all(axis=0)
            # Fill NaN/inf with each channel's mean so the filters see no step; the affected windows are
            # skipped anyway through `bad`.
            means = np.array([row[ok].mean() if ok.any() else 0.0 for row, ok in zip(x, finite)])
            x = np.where(finite, x, means[:, None])
        flat[lo : lo + len(block)] = flat_channels(x, FLAT_STD_UV * 1e-6)  # x in volts
        flat_by_channel[lo : lo + len(block)] = segment_std(x, bounds) * 1e6 < FLAT_STD_UV
        signal[lo : lo + len(block)] = preprocess_block(x, sfreq, cfg)
        del x
    if bad_native.all():
        report.skip(SkipReason.NAN, "every sample is NaN")
        return None
    if flat.any():
        flat_names = [names[i] for i, f in zip(kept_idx, flat) if f]
        if task.montage is not None or flat.all():
            report.skip(SkipReason.FLAT, f"channels without signal over the whole recording: {flat_names}")
            return None
        for n in flat_names:
            report.channels_dropped[n] = "flat over the whole recording"
        keep = ~flat
        signal = signal[keep]
        flat_by_channel = flat_by_channel[keep]
        kept_idx = [i for i, k in zip(kept_idx, keep) if k]
        kept_names = [n for n, k in zip(kept_names, keep) if k]
    flat_seconds = flat_by_channel.any(axis=0)
    report.channels_mapped = {names[i]: n for i, n in zip(kept_idx, kept_names)}
    bad = bad_samples_at(bad_native, sfreq, n_out, cfg.sfreq) if bad_native.any() else None
    flat_mask = None
    if flat_seconds.any():
        per_second = int(round(cfg.sfreq))
        flat_mask = np.repeat(flat_seconds, per_second)[:n_out]
        flat_mask = np.pad(flat_mask, (0, n_out - len(flat_mask)), constant_values=bool(flat_seconds[-1]))
    return Recording(
        signal=signal,
        channel_names=kept_names,
        channel_ids=vocabulary_ids(kept_names),
        bad=bad,
        flat=flat_mask,
        annotations=annotations,
    )


def segment_std(x: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """`(C, T)`, segment starts `(S,)` -> `(C, S)` standard deviation of each segment (last one to the end).

    A last segment shorter than half the others says nothing about flatness: it gets +inf.
    """
    x = x - x.mean(axis=1, keepdims=True)
    lengths = np.diff(np.append(bounds, x.shape[1]))
    mean = np.add.reduceat(x, bounds, axis=1) / lengths
    mean_sq = np.add.reduceat(x * x, bounds, axis=1) / lengths
    std = np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))
    std[:, lengths < max(2, lengths.max() // 2)] = np.inf
    return std


def fixed_windows(task: FileTask, rec: Recording, report: FileReport) -> list[tuple[str, Example]]:
    """Cuts `task.window_seconds` windows every `task.stride_seconds`; checks each (NaN, flat)."""
    window = _samples(task.window_seconds)
    stride = _samples(task.stride_seconds or task.window_seconds)
    out = []
    for start in window_starts(rec.signal.shape[1], window, stride):
        seg = rec.signal[:, start : start + window]
        reason = check_window(seg, _part(rec.bad, start, window), _part(rec.flat, start, window))
        if reason is not None:
            report.skip_unit(reason)
            continue
        out.append((f"{task.recording_id}:{int(start)}", _example(task, rec, seg, task.label, int(start))))
    return out


def event_windows(task: FileTask, rec: Recording, report: FileReport) -> list[tuple[str, Example]]:
    """One record per event: `context_before` s + the 1-s event + `context_after` s (TUEV: 5 s)."""
    n = rec.signal.shape[1]
    before, after = _samples(task.context_before), _samples(task.context_after)
    length = before + _samples(1.0) + after
    out = []
    for row, event in enumerate(task.events or ()):
        onset = event_sample(event.start, TARGET_SFREQ)
        if onset >= n or event.start < 0:
            report.skip_unit(SkipReason.BAD_EVENT)
            continue
        start = onset - before
        seg = circular_segment(rec.signal, start, length)
        reason = check_window(seg, _part(rec.bad, start, length), _part(rec.flat, start, length))
        if reason is not None:
            report.skip_unit(reason)
            continue
        ex = _example(task, rec, seg, event.label, start)
        ex["event_channel"] = int(event.channel)
        out.append((f"{task.recording_id}:{row}", ex))
    return out


def annotation_windows(task: FileTask, rec: Recording, report: FileReport) -> list[tuple[str, Example]]:
    """One record per annotation whose description `task.event_map` names: `[onset + tmin, onset + tmax)`.

    The window starts at the first 200 Hz sample at or after `onset + tmin` (as `event_windows`); windows
    that would leave the recording are skipped as `outside_recording` rather than wrapped (wrapped context
    from the other end of a recording would be another trial's data). Keys are `<recording_id>:<index of
    the annotation>`, unique even when two annotations share an onset.
    """
    mapped = dict(task.event_map or ())
    n = rec.signal.shape[1]
    length = _samples(task.tmax - task.tmin)
    if length <= 0:
        raise ValueError(f"tmax ({task.tmax}) must be greater than tmin ({task.tmin})")
    out = []
    for i, a in enumerate(rec.annotations):
        label = mapped.get(a.description)
        if label is None:
            continue  # counted in FileReport.unmapped_events when the file was opened
        start = event_sample(a.onset + task.tmin, TARGET_SFREQ)
        if start < 0 or start + length > n:
            report.skip_unit(SkipReason.OUTSIDE_RECORDING)
            continue
        seg = rec.signal[:, start : start + length]
        reason = check_window(seg, _part(rec.bad, start, length), _part(rec.flat, start, length))
        if reason is not None:
            report.skip_unit(reason)
            continue
        out.append((f"{task.recording_id}:{i}", _example(task, rec, seg, label, start)))
    return out


def _part(mask: np.ndarray | None, start: int, length: int) -> np.ndarray | None:
    """`mask[start:start + length]`, wrapped circularly like event contexts."""
    return None if mask is None else circular_segment(mask[None], start, length)[0]


def _example(task: FileTask, rec: Recording, seg: np.ndarray, label: int | float, start: int) -> Example:
    return {
        "signal": np.ascontiguousarray(seg, dtype=np.float32),
        "channel_ids": rec.channel_ids,
        # A float label is a regression target: int() would silently truncate it.
        "label": float(label) if isinstance(label, float) else int(label),
        "recording_id": task.recording_id,
        "subject_id": task.subject_id,
        "start": int(start),
    }


def process_file(task: FileTask) -> tuple[FileReport, list[tuple[str, Example]]]:
    """The whole per-file pipeline; never raises for a bad file (the report says what went wrong)."""
    report = FileReport(
        path=task.display_path or task.path,
        split=task.split,
        recording_id=task.recording_id,
        subject_id=task.subject_id,
    )
    if task.skip is not None:
        report.skip(*task.skip)
        return report, []
    event_mode = task.events is not None
    annotation_mode = task.event_map is not None
    if event_mode and not task.events:
        report.skip(SkipReason.NO_EVENTS, "the annotation file lists no event")
        return report, []
    # Event records may be shorter or longer than the recording: each event is judged on its own.
    min_samples = 1 if event_mode or annotation_mode else _samples(task.window_seconds)
    try:
        rec = load_recording(task, report, min_samples=min_samples)
        if rec is None:
            return report, []
        if annotation_mode:
            records = annotation_windows(task, rec, report)
        elif event_mode:
            if task.bad_events:
                report.skip_unit(SkipReason.BAD_EVENT, task.bad_events)
            records = event_windows(task, rec, report)
        else:
            records = fixed_windows(task, rec, report)
    except Exception as err:  # noqa: BLE001 - e.g. a data block MNE cannot decode mid-file
        report.skip(SkipReason.UNREADABLE, f"{type(err).__name__} while reading/processing: {err}")
        report.units_skipped.clear()
        return report, []
    report.units_written = len(records)
    return report, records


def default_ids(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> tuple[str, str]:
    """`(recording_id, subject_id)` for a file of an arbitrary corpus.

    The recording id is the path relative to `root` without its suffix (unique within the corpus). The
    subject is the BIDS `sub-<label>` component when the path has one, else the first folder under `root`,
    else the file stem up to the first underscore (the TUH convention).
    """
    rel = os.path.relpath(str(path), str(root))
    stem = rel
    for suffix in (".fif.gz",):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    else:
        stem = os.path.splitext(stem)[0]
    parts = stem.replace(os.sep, "/").split("/")
    for part in parts:
        if part.startswith("sub-"):
            return stem.replace(os.sep, "/"), part
    subject = parts[0] if len(parts) > 1 else parts[-1].split("_")[0]
    return stem.replace(os.sep, "/"), subject
