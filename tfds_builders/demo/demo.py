"""The embedded demo dataset: synthetic EEG written as real EDF files, built by the real builders' code.

`demo/tuab` and `demo/tuev` first write a TUAB- or TUEV-layout tree of EDF files (`synth.py`) under
`<data_dir>/downloads/demo_edf_<config>/` and then run exactly the file discovery, split and per-file
pipeline of the `tuab` / `tuev` builders on it. `demo/corpus` writes a folder of unlabelled recordings (the
same kinds of signals and events, several times more of them) and builds it with the `eeg_corpus` code: the
pre-training corpus beside the two small labelled sets, as LaBraM's setting has it. It needs no download and
takes seconds, so a new user can run every stage, and the tests use it.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from typing import Any

import tensorflow_datasets as tfds

from tfds_builders.common import EegBuilder, EegConfig
from tfds_builders.demo import synth
from tfds_builders.eeg_corpus import corpus_tasks
from tfds_builders.tuab.tuab import LABEL_NAMES as TUAB_LABELS
from tfds_builders.tuab.tuab import tuab_tasks
from tfds_builders.tuev.tuev import LABEL_NAMES as TUEV_LABELS
from tfds_builders.tuev.tuev import tuev_tasks


@dataclasses.dataclass(eq=False)
class DemoConfig(EegConfig):
    """Demo options on top of `EegConfig`.

    Attributes:
      kind: "tuab", "tuev" or "corpus": which layout to write and which builder logic to run.
      train_subjects, eval_subjects: subjects in the official train / eval parts (TUAB: per class); for
        `corpus`, `train_subjects` is the number of recordings (one subject each) and `val_fraction` of them
        form the validation split.
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
    """Synthetic TUAB-like (normal/abnormal) or TUEV-like (six events) EEG and an unlabelled corpus, from real
    EDF files."""

    VERSION = tfds.core.Version("2.0.0")
    RELEASE_NOTES = {
        "1.0.0": "First release.",
        "2.0.0": "Signals that vary patch to patch (states, rhythm bursts, transients); smaller labelled sets; "
        "the unlabelled `corpus` config.",
    }

    BUILDER_CONFIGS = [
        # Small labelled sets (a few hundred records) and a corpus several times larger: what pre-training
        # can add shows when labels are few.
        DemoConfig(
            name="tuab",
            kind="tuab",
            description="TUAB layout: 10-s windows, normal vs abnormal.",
            window_seconds=10.0,
            split_seed=12345,
            seed=0,
            train_subjects=6,
            eval_subjects=10,
        ),
        DemoConfig(
            name="tuev",
            kind="tuev",
            description="TUEV layout: 5-s event records, six classes.",
            window_seconds=5.0,
            split_seed=4523,
            seed=1,
            train_subjects=8,
            eval_subjects=8,
        ),
        DemoConfig(
            name="corpus",
            kind="corpus",
            description="Unlabelled corpus: 10-s windows for pre-training.",
            window_seconds=10.0,
            split_seed=7,
            seed=2,
            train_subjects=48,
            seconds=150.0,
            val_fraction=0.1,
        ),
    ]
    KINDS = ("tuab", "tuev", "corpus")

    def label_names(self) -> tuple[str, ...] | None:
        return {"tuab": TUAB_LABELS, "tuev": TUEV_LABELS}.get(self.builder_config.kind)

    def event_mode(self) -> bool:
        return self.builder_config.kind == "tuev"

    def edf_root(self, dl_manager: tfds.download.DownloadManager) -> str:
        return os.path.join(str(dl_manager.download_dir), f"demo_edf_{self.builder_config.name}")

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        config: DemoConfig = self.builder_config
        if config.kind not in self.KINDS:
            raise ValueError(f"DemoConfig.kind must be one of {self.KINDS}, not {config.kind!r}")
        root = self.edf_root(dl_manager)
        shutil.rmtree(root, ignore_errors=True)  # always the files these arguments describe
        if config.kind == "corpus":
            synth.write_corpus_tree(
                root, recordings=config.train_subjects, seconds=config.seconds, sfreq=config.sfreq, seed=config.seed
            )
            splits, metadata = corpus_tasks(root, config)
        else:
            writer = synth.write_tuab_tree if config.kind == "tuab" else synth.write_tuev_tree
            writer(
                root,
                train_subjects=config.train_subjects,
                eval_subjects=config.eval_subjects,
                seconds=config.seconds,
                sfreq=config.sfreq,
                seed=config.seed,
            )
            make_tasks = tuab_tasks if config.kind == "tuab" else tuev_tasks
            splits, metadata = make_tasks(root, config)
        self._store_metadata(**metadata, edf_root=root)
        return self._split_dict(splits)
