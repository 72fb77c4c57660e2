"""TUH EEG Events (TUEV): six event classes, one 5-s record per annotated event.

Input layout (TUH EEG Events v2.0.0, pass the folder containing `edf/` as manual_dir):
`edf/train/<subject>/<subject>_<n>.edf` and `edf/eval/<id>/<name>.edf`, each with a sibling `.rec` file.

As make_TUEV.py (labram_reference.md section 7.5): `.rec` rows `channel, start_s, stop_s, label` with
label 1..6 -> class label - 1 (SPSW, GPED, PLED, EYEM, ARTF, BCKG); the recording is preprocessed whole;
each row becomes a record of 2 s before the event onset + 1 s + 2 s after (1000 samples), context wrapped
circularly around the recording ends; rows repeating the same second on several channels give several
records. 23 referential channels in the official order. Splits: official `eval` -> `test`; 20 % of the
official training subjects -> `validation` (seed 4523 as the official script, but on sorted subject ids
so the split is reproducible; the lists are stored in the metadata).

Subjects are the folder directly under `edf/{train,eval}` (equal to the file-name prefix in `train`).
Events whose span is not one second are cut to the same 5-s context from their onset (the official code
would fail on them); rows that do not parse, carry a label outside 1..6 or start outside the recording are
counted as `bad_event` in the report.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tensorflow_datasets as tfds

from labram_jax.channels import TUH_CHANNELS
from labram_jax.data.recording import Event, FileTask
from labram_jax.data.report import SkipReason
from tfds_builders.common import EegBuilder, EegConfig, find_root, split_subjects, tuh_configs

LABEL_NAMES = ("spsw", "gped", "pled", "eyem", "artf", "bckg")


def read_rec(path: str | os.PathLike[str]) -> tuple[list[Event], int]:
    """Parses a TUEV `.rec` file: returns `(events, number of rejected rows)`."""
    events, bad = [], 0
    with open(path, encoding="latin-1") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                channel, start, stop, label = (float(v) for v in line.split(",")[:4])
            except ValueError:
                bad += 1
                continue
            if not (1 <= label <= len(LABEL_NAMES)) or label != int(label) or stop < start:
                bad += 1
                continue
            events.append(Event(start=start, stop=stop, label=int(label) - 1, channel=int(channel)))
    return events, bad


def tuev_tasks(root: str | os.PathLike[str], config: EegConfig) -> tuple[dict[str, list[FileTask]], dict[str, Any]]:
    """The files of a TUEV tree as event tasks per split, and the split metadata."""
    root = Path(root)
    found: dict[str, list[Path]] = {
        official: sorted(p for p in (root / "edf" / official).rglob("*") if p.suffix.lower() == ".edf")
        for official in ("train", "eval")
    }
    if not found["train"] and not found["eval"]:
        raise FileNotFoundError(
            f"no EDF files under {root}/edf/{{train,eval}}/; pass the TUH EEG Events "
            "folder that contains 'edf/' as --manual_dir"
        )

    def subject(p: Path, official: str) -> str:
        parts = p.relative_to(root / "edf" / official).parts
        return parts[0] if len(parts) > 1 else p.name.split("_")[0]

    train_subjects, val_subjects = split_subjects(
        (subject(p, "train") for p in found["train"]), config.val_fraction, config.split_seed
    )
    val_set = set(val_subjects)

    def task(p: Path, official: str, split: str) -> FileTask:
        rec = p.with_suffix(".rec")
        events, bad, skip = None, 0, None
        if rec.is_file():
            events, bad = read_rec(rec)
        else:
            skip = (SkipReason.MISSING_ANNOTATIONS, f"no {rec.name} next to the EDF file")
        rel = p.relative_to(root)
        return FileTask(
            path=str(p),
            display_path=str(rel),
            split=split,
            recording_id=str(rel.with_suffix("")).replace(os.sep, "/"),
            subject_id=subject(p, official),
            montage=TUH_CHANNELS,
            preprocess=config.preprocess(),
            events=tuple(events) if events is not None else None,
            bad_events=bad,
            context_before=2.0,
            context_after=2.0,
            skip=skip,
        )

    splits: dict[str, list[FileTask]] = {"train": [], "validation": [], "test": []}
    for p in found["train"]:
        split = "validation" if subject(p, "train") in val_set else "train"
        splits[split].append(task(p, "train", split))
    splits["test"] = [task(p, "eval", "test") for p in found["eval"]]
    metadata = {
        "subjects": {
            "train": train_subjects,
            "validation": val_subjects,
            "test": sorted({subject(p, "eval") for p in found["eval"]}),
        },
        "split_seed": config.split_seed,
        "val_fraction": config.val_fraction,
        "channels": list(TUH_CHANNELS),
        "context_seconds": [2.0, 1.0, 2.0],
    }
    return splits, metadata


class Tuev(EegBuilder):
    """TUH EEG Events: 5-s records (2 s + 1-s event + 2 s) of 23 channels, six event classes."""

    BUILDER_CONFIGS = tuh_configs(window_seconds=5.0, split_seed=4523)
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Request TUH EEG Events (v2.0.0) at https://isip.piconepress.com/projects/nedc/html/tuh_eeg/ and pass "
        "the folder that contains 'edf/' (with edf/train and edf/eval, .edf and .rec files) as --manual_dir."
    )

    def label_names(self) -> tuple[str, ...]:
        return LABEL_NAMES

    def event_mode(self) -> bool:
        return True

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        splits, metadata = tuev_tasks(find_root(dl_manager.manual_dir, "edf"), self.builder_config)
        self._store_metadata(**metadata)
        return self._split_dict(splits)
