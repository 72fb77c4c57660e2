"""Any folder of recordings as a pre-training corpus.

Pass the folder as manual_dir; it is searched recursively for every format MNE reads (EDF/EDF+/BDF,
BrainVision .vhdr, EEGLAB .set, Neuroscan .cnt, FIF, GDF), so a BIDS tree works as is. Each recording keeps
its own channel set: every channel whose name maps to the electrode vocabulary is kept (`EEG FP1-REF`,
`Fc5.`, `Cz..` are recognised), the rest are dropped and listed in the report. Windows of
`window_seconds` every `stride_seconds`; records are unlabelled (`label == -1`).

Build one dataset per corpus (one `--data_dir` each, or one data_dir per corpus config) and mix them at
training time with `labram_jax.data.loaders.make_loader(..., weights=...)`.

Configs: `w4` (4-s windows, 4-s stride: 64-channel montages within the official 256-token budget),
`w8` (8 s: 32 channels), `w4s1` (4-s windows every second, as VQ-NSP training reads data), each also with
`_notch60`. Any other window follows the same grammar, `w<seconds>[s<stride seconds>][_notch60]` (e.g.
`w2s1`, `w16`): `EegCorpus.config_from_name` builds it. `val_fraction` defaults to 0 (everything in
`train`); a custom `EegConfig` can hold subjects out.
"""

from __future__ import annotations

import re
from typing import Any

import tensorflow_datasets as tfds

from labram_jax.data.open_raw import find_recordings
from labram_jax.data.recording import FileTask, default_ids
from tfds_builders.common import EegBuilder, EegConfig, split_subjects

_CONFIG_NAME = re.compile(r"^w(\d+(?:\.\d+)?)(?:s(\d+(?:\.\d+)?))?(_notch60)?$")


def _config(name: str, window: float, stride: float, notch: float) -> EegConfig:
    return EegConfig(
        name=name,
        notch_hz=notch,
        window_seconds=window,
        stride_seconds=stride,
        val_fraction=0.0,
        split_seed=0,
        description=f"{window:g}-s windows every {stride:g} s, {notch:g} Hz notch",
    )


def _configs() -> list[EegConfig]:
    out = []
    for name, window, stride in (("w4", 4.0, 4.0), ("w8", 8.0, 8.0), ("w4s1", 4.0, 1.0)):
        for suffix, notch in (("", 50.0), ("_notch60", 60.0)):
            out.append(_config(name + suffix, window, stride, notch))
    return out


class EegCorpus(EegBuilder):
    """A folder of EEG recordings cut into fixed windows, each with its own channel set (unlabelled)."""

    BUILDER_CONFIGS = _configs()
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Pass the folder of recordings (searched recursively; EDF/BDF/BrainVision/EEGLAB/CNT/FIF/GDF) as --manual_dir."
    )

    @staticmethod
    def config_from_name(name: str) -> EegConfig:
        """The config a name of the form `w<seconds>[s<stride seconds>][_notch60]` describes."""
        match = _CONFIG_NAME.match(name)
        if match is None:
            raise ValueError(
                f"eeg_corpus config {name!r} is not of the form w<seconds>[s<stride>][_notch60], "
                "e.g. w4, w2s1, w16_notch60"
            )
        window = float(match.group(1))
        stride = float(match.group(2)) if match.group(2) else window
        if window < 1 or window != int(window) or stride <= 0 or stride * 200 != round(stride * 200):
            raise ValueError(
                f"eeg_corpus config {name!r}: the window must be a whole number of seconds "
                "(the model's patches are 1 s) and the stride a positive multiple of 5 ms"
            )
        return _config(name, window, stride, 60.0 if match.group(3) else 50.0)

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        splits, metadata = corpus_tasks(str(dl_manager.manual_dir), self.builder_config)
        self._store_metadata(**metadata)
        return self._split_dict(splits)


def corpus_tasks(root: str, config: EegConfig) -> tuple[dict[str, list[FileTask]], dict[str, Any]]:
    """Every recording under `root` as an unlabelled fixed-window task, split by subject
    (`config.val_fraction`), and the metadata describing the split."""
    files = find_recordings(root)
    if not files:
        raise FileNotFoundError(
            f"no recordings (EDF, BDF, .vhdr, .set, .cnt, .fif, .gdf) under {root}; "
            "pass the corpus folder as --manual_dir"
        )
    ids = {str(p): default_ids(p, root) for p in files}
    train_subjects, val_subjects = split_subjects((s for _, s in ids.values()), config.val_fraction, config.split_seed)
    val_set = set(val_subjects)
    splits: dict[str, list[FileTask]] = {"train": []}
    if val_set:
        splits["validation"] = []
    for p in files:
        recording_id, subject_id = ids[str(p)]
        split = "validation" if subject_id in val_set else "train"
        splits[split].append(
            FileTask(
                path=str(p),
                display_path=str(p.relative_to(root)),
                split=split,
                recording_id=recording_id,
                subject_id=subject_id,
                label=-1,
                montage=None,
                preprocess=config.preprocess(),
                window_seconds=config.window_seconds,
                stride_seconds=config.stride_seconds,
            )
        )
    metadata = dict(
        subjects={"train": train_subjects, "validation": val_subjects},
        split_seed=config.split_seed,
        val_fraction=config.val_fraction,
        window_seconds=config.window_seconds,
        stride_seconds=config.stride_seconds,
    )
    return splits, metadata
