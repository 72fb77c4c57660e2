"""Opening EEG recordings with MNE, robustly enough for files as users have them.

* Any format MNE reads is accepted: EDF/EDF+/BDF, BrainVision (`.vhdr`), EEGLAB (`.set`), Neuroscan
  (`.cnt`), FIF, GDF.
* EDF/BDF headers are checked before MNE sees the file, so a garbage file is reported as unreadable and a
  file cut short (interrupted copy or download) as truncated, instead of MNE reading past its end.
* EDF+ annotation channels are not always UTF-8 (PhysioNet files carry latin-1 text); MNE then fails to
  decode them, so the file is re-opened with `encoding="latin1"`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import mne

from labram_jax.data.report import SkipReason

RECORDING_SUFFIXES: tuple[str, ...] = (".edf", ".bdf", ".vhdr", ".set", ".cnt", ".fif", ".fif.gz", ".gdf")
"""File endings `find_recordings` collects (case-insensitive)."""

# MNE opens split FIF files (`x_raw-1.fif`, BIDS `_split-02_`) through the first part; listing the later
# parts as recordings of their own would duplicate data.
_FIF_CONTINUATION = re.compile(r"(-\d+\.fif(\.gz)?$)|(_split-0*[2-9]\d*_)", re.IGNORECASE)


class RecordingError(Exception):
    """A recording that cannot be used; `reason` is a `SkipReason` value."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def is_recording(path: str | os.PathLike[str]) -> bool:
    """True for a file name MNE can read as a recording (first part of split FIF files only)."""
    name = os.path.basename(str(path)).lower()
    return name.endswith(RECORDING_SUFFIXES) and not (".fif" in name and _FIF_CONTINUATION.search(name))


def find_recordings(root: str | os.PathLike[str]) -> list[Path]:
    """All recordings under `root`, searched recursively (a BIDS tree works), in sorted order."""
    root = Path(root)
    found = [p for p in root.rglob("*") if p.is_file() and is_recording(p)]
    return sorted(found)


def check_edf_header(path: str | os.PathLike[str]) -> None:
    """Raises RecordingError when an EDF/BDF file is not EDF or is shorter than its header says.

    Header layout (EDF spec): 256 bytes, then 256 bytes per signal; bytes 236-244 hold the number of data
    records (-1 while recording), 252-256 the number of signals; each signal's samples per record sit at
    offset 256 + 216 * ns + 8 * i. Samples are 2 bytes (EDF) or 3 bytes (BDF).
    """
    path = str(path)
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(256)
        try:
            if len(head) < 256:
                raise ValueError("shorter than the 256-byte EDF header")
            n_records = int(head[236:244].decode("ascii").strip())
            n_signals = int(head[252:256].decode("ascii").strip())
            header_bytes = int(head[184:192].decode("ascii").strip())
            if n_signals <= 0 or header_bytes != 256 * (n_signals + 1):
                raise ValueError(f"inconsistent header size {header_bytes} for {n_signals} signals")
            fh.seek(256 + 216 * n_signals)
            spr_field = fh.read(8 * n_signals)
            if len(spr_field) < 8 * n_signals:
                raise ValueError("header cut short")
            samples_per_record = [int(spr_field[8 * i : 8 * i + 8].decode("ascii").strip()) for i in range(n_signals)]
        except (ValueError, UnicodeDecodeError) as err:
            raise RecordingError(SkipReason.UNREADABLE, f"not a valid EDF/BDF header ({err})") from None
    bytes_per_sample = 3 if path.lower().endswith(".bdf") else 2
    record_bytes = sum(samples_per_record) * bytes_per_sample
    if n_records < 0:
        return  # still being recorded: MNE derives the count from the file size
    expected = header_bytes + n_records * record_bytes
    if size < expected:
        complete = (size - header_bytes) // max(record_bytes, 1)
        raise RecordingError(
            SkipReason.TRUNCATED,
            f"the header announces {n_records} data records ({expected} bytes) but the file has {size} bytes "
            f"({complete} complete records); re-copy or re-download it",
        )


def read_raw(path: str | os.PathLike[str]) -> mne.io.BaseRaw:
    """Opens a recording without loading its samples (`preload=False`).

    Raises:
      RecordingError: with reason `unreadable` or `truncated` and a detail naming the cause.
    """
    path = str(path)
    lower = path.lower()
    is_edf = lower.endswith((".edf", ".bdf"))
    if is_edf:
        check_edf_header(path)
    try:
        try:
            return _open(path, is_edf, encoding="utf8")
        except Exception as err:  # noqa: BLE001 - MNE raises a bare Exception for undecodable annotations
            if not is_edf or not (isinstance(err, UnicodeDecodeError) or "encoding" in str(err)):
                raise
        # EDF+ annotations written in latin-1 (PhysioNet and several clinical exporters).
        return _open(path, is_edf, encoding="latin1")
    except Exception as err:  # noqa: BLE001 - any failure means the file is unusable as is
        raise RecordingError(SkipReason.UNREADABLE, f"{type(err).__name__}: {err}") from None


def _open(path: str, is_edf: bool, encoding: str) -> mne.io.BaseRaw:
    if is_edf:
        reader = mne.io.read_raw_bdf if path.lower().endswith(".bdf") else mne.io.read_raw_edf
        return reader(path, preload=False, encoding=encoding, verbose="error")
    return mne.io.read_raw(path, preload=False, verbose="error")
