"""The embedded demo dataset: synthetic EEG written as real EDF files, built by the real TUAB/TUEV code.

`demo/tuab` and `demo/tuev` first write a TUAB- or TUEV-layout tree of EDF files (`synth.py`) under
`<data_dir>/downloads/demo_edf_<config>/` and then run exactly the file discovery, split and per-file
pipeline of the `tuab` / `tuev` builders on it. It needs no download and takes seconds, so a new user can
run every stage, and the tests use it.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from typing import Any

import tensorflow_datasets as tfds

from tfds_builders.common import EegBuilder, EegConfig
from tfds_builders.demo import synth
from tfds_builders.tuab.tuab import LABEL_NAMES as TUAB_LABELS, tuab_tasks
from tfds_builders.tuev.tuev import LABEL_NAMES as TUEV_LABELS, tuev_tasks


@dataclasses.dataclass(eq=False)
class DemoConfig(EegConfig):
    """Demo options on top of `EegConfig`.

    Attributes:
      kind: "tuab" or "tuev": which layout to write and which builder logic to run.
      train_subjects, eval_subjects: subjects in the official train / eval parts (TUAB: per class).
      seconds: length of each recording.
      sfreq: sampling rate of the written EDF files.
      seed: seed of the synthetic signals.
    """

    kind: str = "tuab"
    train_subjects: int = 16
    eval_subjects: int = 5
    seconds: float = 120.0
    sfreq: float = synth.SFREQ
    seed: int = 0


class Demo(EegBuilder):
    """Synthetic TUAB-like (normal/abnormal) or TUEV-like (six events) EEG, from real EDF files."""

    BUILDER_CONFIGS = [
        DemoConfig(name="tuab", kind="tuab", description="TUAB layout: 10-s windows, normal vs abnormal.",
                   window_seconds=10.0, split_seed=12345, seed=0),
        DemoConfig(name="tuev", kind="tuev", description="TUEV layout: 5-s event records, six classes.",
                   window_seconds=5.0, split_seed=4523, seed=1),
    ]

    def label_names(self) -> tuple[str, ...]:
        return TUAB_LABELS if self.builder_config.kind == "tuab" else TUEV_LABELS

    def event_mode(self) -> bool:
        return self.builder_config.kind == "tuev"

    def edf_root(self, dl_manager: tfds.download.DownloadManager) -> str:
        return os.path.join(str(dl_manager.download_dir), f"demo_edf_{self.builder_config.name}")

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        config: DemoConfig = self.builder_config
        root = self.edf_root(dl_manager)
        shutil.rmtree(root, ignore_errors=True)  # always the files these arguments describe
        writer = synth.write_tuab_tree if config.kind == "tuab" else synth.write_tuev_tree
        if config.kind not in ("tuab", "tuev"):
            raise ValueError(f"DemoConfig.kind must be 'tuab' or 'tuev', not {config.kind!r}")
        writer(root, train_subjects=config.train_subjects, eval_subjects=config.eval_subjects,
               seconds=config.seconds, sfreq=config.sfreq, seed=config.seed)
        make_tasks = tuab_tasks if config.kind == "tuab" else tuev_tasks
        splits, metadata = make_tasks(root, config)
        self._store_metadata(**metadata, edf_root=root)
        return self._split_dict(splits)
