"""Build reports: what a dataset build read, wrote and skipped, and why.

Every TFDS build of this project writes `build_report.json` next to its array_record shards. The report
has one entry per file found and a summary whose counts add up by construction:

* `files_found == files_read + sum(files_skipped.values())`
* `units_found == units_written + sum(units_skipped.values())`, summed over the files that were read
  (a "unit" is a fixed window for `tuab` / `eeg_corpus` / `eeg_labelled` table mode, an annotated event
  for `tuev` / `eeg_labelled` events mode).

Nothing is dropped silently: a file or window that does not become a record lands here with a reason
from `SkipReason`. In strict mode the builder raises `BuildError` on the first skip instead.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from collections.abc import Iterable
from typing import Any


class SkipReason:
    """Reasons a file or window is skipped; the strings are what the report stores."""

    UNREADABLE = "unreadable"  # not a recording MNE can open (garbage, unknown format)
    TRUNCATED = "truncated"  # the header promises more data than the file holds
    NO_USABLE_CHANNELS = "no_usable_channels"  # no channel name maps to the electrode vocabulary
    MISSING_CHANNELS = "missing_channels"  # a fixed montage (TUH 23) lacks some of its channels
    LOW_SAMPLING_RATE = "low_sampling_rate"  # Nyquist at or below the band-pass upper edge
    NAN = "nan"  # NaN samples (whole file, or inside a window)
    FLAT = "flat"  # a channel without signal (whole file, or inside a window)
    TOO_SHORT = "too_short"  # shorter than one window after resampling
    MISSING_ANNOTATIONS = "missing_annotations"  # TUEV: no readable .rec file next to the EDF
    NO_EVENTS = "no_events"  # TUEV: the .rec file lists no event; eeg_labelled: no annotation
    #       of the recording has a description in the event map
    BAD_EVENT = "bad_event"  # TUEV: an unparsable row, a label outside 1..6, or an event
    #       outside the recording
    OUTSIDE_RECORDING = "outside_recording"  # eeg_labelled: the event's [onset + tmin, onset + tmax) window
    #       leaves the recording (windows are not wrapped)
    MISSING_FILE = "missing_file"  # eeg_labelled: a label-table row whose file does not exist
    NOT_IN_TABLE = "not_in_table"  # eeg_labelled: a recording in the folder without a label-table row


class BuildError(RuntimeError):
    """Raised in strict mode on the first skipped file or window; the message names the file."""


@dataclasses.dataclass
class FileReport:
    """What happened to one input file.

    Attributes:
      path: the file, relative to the dataset root when possible.
      status: "ok" (read; it may still have skipped windows) or "skipped" (no record came from it).
      reason: a `SkipReason` value when skipped.
      detail: human-readable explanation (which channels, which sampling rate, the exception ...).
      split: the TFDS split the file feeds.
      recording_id / subject_id: identifiers stored in the records.
      sfreq: native sampling rate in Hz (None when unreadable).
      seconds: duration in seconds (None when unreadable).
      channels_mapped: original name -> vocabulary name, for the channels kept, in record order.
      channels_dropped: original names not kept, with why ("not in vocabulary", "flat", ...).
      units_written: windows / events written as records.
      units_skipped: reason -> count of windows / events not written.
      unmapped_events: annotation description -> count, for the annotations of the file that the event
        map does not name (eeg_labelled events mode); they make no record and are listed here instead.
    """

    path: str
    status: str = "ok"
    reason: str | None = None
    detail: str = ""
    split: str = ""
    recording_id: str = ""
    subject_id: str = ""
    sfreq: float | None = None
    seconds: float | None = None
    channels_mapped: dict[str, str] = dataclasses.field(default_factory=dict)
    channels_dropped: dict[str, str] = dataclasses.field(default_factory=dict)
    units_written: int = 0
    units_skipped: dict[str, int] = dataclasses.field(default_factory=dict)
    unmapped_events: dict[str, int] = dataclasses.field(default_factory=dict)

    def skip(self, reason: str, detail: str) -> FileReport:
        """Marks the whole file skipped (no record is written from it)."""
        self.status, self.reason, self.detail = "skipped", reason, detail
        return self

    def skip_unit(self, reason: str, count: int = 1) -> None:
        self.units_skipped[reason] = self.units_skipped.get(reason, 0) + count

    @property
    def skipped(self) -> bool:
        return self.status == "skipped"

    def problems(self) -> list[str]:
        """One line per problem, for strict mode and logs."""
        out = []
        if self.skipped:
            out.append(f"{self.path}: file skipped ({self.reason}): {self.detail}")
        for reason, count in sorted(self.units_skipped.items()):
            out.append(
                f"{self.path}: {count} window(s)/event(s) skipped ({reason})"
                + (f": {self.detail}" if self.detail else "")
            )
        return out


class BuildReport:
    """Collects `FileReport`s of a build and writes them with a summary."""

    def __init__(self, dataset: str, config: dict[str, Any] | None = None):
        self.dataset = dataset
        self.config = dict(config or {})
        self.files: list[FileReport] = []

    def add(self, entry: FileReport) -> None:
        self.files.append(entry)

    def extend(self, entries: Iterable[FileReport]) -> None:
        self.files.extend(entries)

    def summary(self) -> dict[str, Any]:
        """Counts that add up (see the module docstring); per split and in total."""
        read = [f for f in self.files if not f.skipped]
        units_skipped: Counter[str] = Counter()
        for f in read:
            units_skipped.update(f.units_skipped)
        per_split: dict[str, dict[str, int]] = {}
        for f in self.files:
            s = per_split.setdefault(f.split or "-", {"files": 0, "files_read": 0, "units_written": 0})
            s["files"] += 1
            s["files_read"] += int(not f.skipped)
            s["units_written"] += f.units_written
        written = sum(f.units_written for f in read)
        unmapped: Counter[str] = Counter()
        for f in self.files:  # also files skipped later on (their annotations were read all the same)
            unmapped.update(f.unmapped_events)
        return {
            "dataset": self.dataset,
            "files_found": len(self.files),
            "files_read": len(read),
            "files_skipped": dict(sorted(Counter(f.reason for f in self.files if f.skipped).items())),
            "units_found": written + sum(units_skipped.values()),
            "units_written": written,
            "units_skipped": dict(sorted(units_skipped.items())),
            "hours_read": round(sum(f.seconds or 0.0 for f in read) / 3600.0, 4),
            "channels_dropped": dict(
                sorted(Counter(name for f in read for name in f.channels_dropped).most_common(20))
            ),
            "per_split": per_split,
            # Annotations not named by the event map (not units: they were never meant to be records).
            "unmapped_events": dict(sorted(unmapped.items())),
        }

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), "config": self.config, "files": [dataclasses.asdict(f) for f in self.files]}

    def write(self, path: str | os.PathLike[str]) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh, indent=1)

    def format_summary(self) -> str:
        """A few lines for the terminal."""
        s = self.summary()
        lines = [
            f"{s['dataset']}: {s['files_read']}/{s['files_found']} files read, "
            f"{s['hours_read']:.2f} h of EEG, {s['units_written']} records written",
        ]
        if s["files_skipped"]:
            lines.append("  files skipped: " + ", ".join(f"{k}={v}" for k, v in s["files_skipped"].items()))
        if s["units_skipped"]:
            lines.append("  windows/events skipped: " + ", ".join(f"{k}={v}" for k, v in s["units_skipped"].items()))
        if s["unmapped_events"]:
            lines.append(
                f"  annotations not in the event map ({sum(s['unmapped_events'].values())}, no "
                "record): " + ", ".join(f"{k!r}={v}" for k, v in s["unmapped_events"].items())
            )
        for split, c in s["per_split"].items():
            lines.append(f"  {split}: {c['files_read']}/{c['files']} files, {c['units_written']} records")
        if s["channels_dropped"]:
            lines.append(
                "  most dropped channels: "
                + ", ".join(f"{k} ({v})" for k, v in list(s["channels_dropped"].items())[:8])
            )
        return "\n".join(lines)


def load_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Reads a `build_report.json` back as a dict."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)
