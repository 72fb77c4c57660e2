"""TUH Abnormal EEG Corpus (TUAB): normal (0) vs abnormal (1), 10-s windows of the 23 TUH channels.

Input layout (TUH Abnormal v3.0.0, pass the folder containing `edf/` as manual_dir):
`edf/{train,eval}/{normal,abnormal}/01_tcp_ar/<subject>_s<session>_t<token>.edf`.

As make_TUAB.py (labram_reference.md section 7.4): the 23 referential channels in the official order
(`labram_jax.channels.TUH_CHANNELS`), preprocessing of section 7.1, non-overlapping 10-s windows
(`floor(T / 2000)` per file), label from the folder. Splits: official `eval` -> `test`; official `train`
subjects -> `train` / `validation` 80/20, separately for normal and abnormal subjects, but reproducibly
(sorted ids, fixed seed; the subject lists are stored in the dataset's metadata).

Deviations, on purpose: a subject with both normal and abnormal recordings is split once (stratum "mixed"),
so validation never shares a subject with train (the official per-class split can leak such subjects);
extra channels that map to the vocabulary (e.g. an `EEG OZ-REF`) are dropped and reported rather than
making the file fail the official "exactly 23 channels" check.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tensorflow_datasets as tfds

from labram_jax.channels import TUH_CHANNELS
from labram_jax.data.recording import FileTask
from tfds_builders.common import EegBuilder, EegConfig, find_root, split_subjects, tuh_configs

LABEL_NAMES = ("normal", "abnormal")


def tuab_tasks(root: str | os.PathLike[str], config: EegConfig) -> tuple[dict[str, list[FileTask]], dict[str, Any]]:
    """The files of a TUAB tree as tasks per split, and the metadata describing the split.

    Returns:
      `({"train": [...], "validation": [...], "test": [...]}, metadata)`; metadata holds the sorted subject
      ids of each split and the seed.
    """
    root = Path(root)
    found: dict[str, list[tuple[Path, int]]] = {"train": [], "eval": []}
    for official in ("train", "eval"):
        for label, cls in enumerate(LABEL_NAMES):
            folder = root / "edf" / official / cls
            found[official] += [(p, label) for p in sorted(folder.rglob("*")) if p.suffix.lower() == ".edf"]
    if not found["train"] and not found["eval"]:
        raise FileNotFoundError(
            f"no EDF files under {root}/edf/{{train,eval}}/{{normal,abnormal}}/; pass the "
            "TUH Abnormal folder that contains 'edf/' as --manual_dir"
        )

    def subject(p: Path) -> str:
        return p.name.split("_")[0]

    labels_of: dict[str, set[int]] = {}
    for p, label in found["train"]:
        labels_of.setdefault(subject(p), set()).add(label)
    strata = {s: ("mixed" if len(ls) > 1 else LABEL_NAMES[next(iter(ls))]) for s, ls in labels_of.items()}
    train_subjects, val_subjects = split_subjects(labels_of, config.val_fraction, config.split_seed, strata)
    val_set = set(val_subjects)

    def task(p: Path, label: int, split: str) -> FileTask:
        return FileTask(
            path=str(p),
            display_path=str(p.relative_to(root)),
            split=split,
            recording_id=p.stem,
            subject_id=subject(p),
            label=label,
            montage=TUH_CHANNELS,
            preprocess=config.preprocess(),
            window_seconds=config.window_seconds,
            stride_seconds=config.stride_seconds,
        )

    splits: dict[str, list[FileTask]] = {"train": [], "validation": [], "test": []}
    for p, label in found["train"]:
        split = "validation" if subject(p) in val_set else "train"
        splits[split].append(task(p, label, split))
    splits["test"] = [task(p, label, "test") for p, label in found["eval"]]
    metadata = {
        "subjects": {
            "train": train_subjects,
            "validation": val_subjects,
            "test": sorted({subject(p) for p, _ in found["eval"]}),
        },
        "split_seed": config.split_seed,
        "val_fraction": config.val_fraction,
        "channels": list(TUH_CHANNELS),
        "window_seconds": config.window_seconds,
    }
    return splits, metadata


class Tuab(EegBuilder):
    """TUH Abnormal EEG: 10-s windows of 23 channels at 200 Hz in µV, label normal/abnormal."""

    BUILDER_CONFIGS = tuh_configs(window_seconds=10.0, split_seed=12345)
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Request TUH Abnormal (v3.0.0) at https://isip.piconepress.com/projects/nedc/html/tuh_eeg/ and pass "
        "the folder that contains 'edf/' (with edf/train and edf/eval) as --manual_dir."
    )

    def label_names(self) -> tuple[str, ...]:
        return LABEL_NAMES

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        splits, metadata = tuab_tasks(find_root(dl_manager.manual_dir, "edf"), self.builder_config)
        self._store_metadata(**metadata)
        return self._split_dict(splits)
