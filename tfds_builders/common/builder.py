"""The base TFDS builder of every EEG dataset here: features, parallel per-file processing, build report.

A subclass lists its input files as `FileTask`s per split in `_split_generators` and returns
`{split: self._generate_examples(tasks)}`. This base class then

* runs `labram_jax.data.recording.process_file` on the tasks, in `workers` spawned processes with at most
  a few recordings in flight (memory stays bounded whatever the corpus size);
* collects every file's `FileReport` and writes `build_report.json` next to the array_record shards once
  the build has succeeded;
* in strict mode raises `BuildError` naming the first file that had to be skipped (or lost windows);
* writes array_record by default (TFDS builds it without TensorFlow).

Records (see `labram_jax.data.recording`): `signal` `(C, T)` float32 µV at 200 Hz, `channel_ids` `(C,)`
int32, `label` (class index, or float32 for regression datasets), `recording_id`, `subject_id`, `start`
(sample at 200 Hz), and `event_channel` for TUEV-style event datasets. Dataset-level facts (subjects of
each split, seeds, preprocessing, label names) are in the TFDS metadata (`metadata.json`,
`builder.info.metadata`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from labram_jax.data.preprocess import PreprocessConfig
from labram_jax.data.recording import FileTask, process_file
from labram_jax.data.report import BuildError, BuildReport
from tfds_builders.common.parallel import make_executor, ordered_map

REPORT_NAME = "build_report.json"


@dataclasses.dataclass(eq=False)
class EegConfig(tfds.core.BuilderConfig):
    """Options shared by the EEG builders.

    Attributes:
      notch_hz: mains notch (50 Hz as the reference, also for TUH; 60 Hz for US recordings; None: off).
      window_seconds: record length for fixed-window datasets.
      stride_seconds: distance between window starts (None: the window, i.e. no overlap).
      val_fraction: share of training subjects held out as the `validation` split.
      split_seed: seed of the subject permutation.
    """

    notch_hz: float | None = 50.0
    window_seconds: float = 10.0
    stride_seconds: float | None = None
    val_fraction: float = 0.2
    split_seed: int = 12345

    def preprocess(self) -> PreprocessConfig:
        return PreprocessConfig(notch_hz=self.notch_hz)


def tuh_configs(window_seconds: float, split_seed: int) -> list[EegConfig]:
    """The two configs of the TUH builders: the reference's 50 Hz notch, and 60 Hz for US mains."""
    return [
        EegConfig(
            name="default",
            description="Reference preprocessing (50 Hz notch, as the official code).",
            notch_hz=50.0,
            window_seconds=window_seconds,
            split_seed=split_seed,
        ),
        EegConfig(
            name="notch60",
            description="60 Hz notch for the US mains of TUH recordings.",
            notch_hz=60.0,
            window_seconds=window_seconds,
            split_seed=split_seed,
        ),
    ]


def record_features(
    label_names: Sequence[str] | None, event_mode: bool, regression: bool = False
) -> tfds.features.FeaturesDict:
    """The TFDS feature spec of the records (variable channels and length: one spec for all datasets).

    `label` is a ClassLabel when `label_names` are given, a float32 scalar for a regression target
    (`regression=True`), else int64 (-1 for unlabelled corpora).
    """
    if regression and label_names:
        raise ValueError("a regression dataset has no label names")
    label: Any = tfds.features.ClassLabel(names=list(label_names)) if label_names else np.int64
    if regression:
        label = np.float32
    features: dict[str, Any] = {
        # Two unknown dimensions need byte encoding; raw bytes also keep serialisation cheap.
        "signal": tfds.features.Tensor(shape=(None, None), dtype=np.float32, encoding=tfds.features.Encoding.BYTES),
        "channel_ids": tfds.features.Tensor(shape=(None,), dtype=np.int32),
        "label": label,
        "recording_id": tfds.features.Text(),
        "subject_id": tfds.features.Text(),
        "start": np.int64,
    }
    if event_mode:
        features["event_channel"] = np.int64
    return tfds.features.FeaturesDict(features)


class EegBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base class; see the module docstring. Extra constructor arguments:

    Args:
      workers: processes that read and preprocess files in parallel (1: in this process).
      strict: raise on the first skipped file or window instead of reporting it.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}

    def __init__(self, *, workers: int = 1, strict: bool = False, **kwargs: Any):
        kwargs.setdefault("file_format", "array_record")
        self._workers = max(1, int(workers))
        self._strict = bool(strict)
        self._report: BuildReport | None = None
        self._executor = None
        super().__init__(**kwargs)

    # What a subclass (or config) declares.
    def label_names(self) -> Sequence[str] | None:
        return None

    def event_mode(self) -> bool:
        return False

    def regression(self) -> bool:
        """True when `label` is a float regression target."""
        return False

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=(self.__doc__ or "").strip().split("\n")[0],
            features=record_features(self.label_names(), self.event_mode(), self.regression()),
            metadata=tfds.core.MetadataDict(),
            homepage="https://github.com/935963004/LaBraM",
        )

    @property
    def report(self) -> BuildReport | None:
        """The report of the last build run by this builder object (None before one)."""
        return self._report

    def report_path(self) -> str:
        return os.path.join(str(self.data_dir), REPORT_NAME)

    def download_and_prepare(self, *args: Any, **kwargs: Any) -> None:
        """TFDS's build, plus the process pool's lifetime and the report written next to the data."""
        self._report = BuildReport(f"{self.name}/{self.builder_config.name}", config=_config_dict(self.builder_config))
        self._executor = make_executor(self._workers)
        try:
            super().download_and_prepare(*args, **kwargs)
        except Exception as err:
            if self._report.files:  # keep what was learnt about the files: it usually explains the failure
                failed = os.path.join(
                    str(self._data_dir_root),
                    f"{self.name}-{self.builder_config.name}-{REPORT_NAME.replace('.json', '.failed.json')}",
                )
                self._report.write(failed)
                err.add_note(f"report of the files processed so far: {failed}")
            raise
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None
        if self._report.files:  # empty when the dataset already existed and nothing was built
            self._report.write(self.report_path())

    def _store_metadata(self, **entries: Any) -> None:
        """Facts stored with the dataset in metadata.json (readable with builder.info.metadata)."""
        self.info.metadata.update(entries)
        self.info.metadata.setdefault("preprocess", self.builder_config.preprocess().as_dict())
        if self.label_names():
            self.info.metadata.setdefault("label_names", list(self.label_names()))

    def _generate_examples(self, tasks: Sequence[FileTask]) -> Iterator[tuple[str, dict[str, Any]]]:
        """Runs the per-file pipeline over `tasks` and yields the records; fills the report."""
        assert self._report is not None, "call download_and_prepare()"
        seen: set[str] = set()
        first_entry = len(self._report.files)
        for report, records in ordered_map(process_file, tasks, self._executor):
            self._report.add(report)
            if self._strict and report.problems():
                raise BuildError(
                    f"strict build of {self.name} stopped at {report.path}: {report.problems()[0]} "
                    "(fix or remove the file, or build without --strict to skip it and list it in "
                    f"{REPORT_NAME})"
                )
            for key, example in records:
                if key in seen:
                    raise BuildError(
                        f"duplicate record key {key!r} from {report.path}: two input files "
                        "have the same recording id; rename one of them"
                    )
                seen.add(key)
                yield key, example
        if not seen:
            entries = self._report.files[first_entry:]
            reasons = sorted({f"{f.path}: {f.reason or 'windows skipped'} {f.detail}".strip() for f in entries})
            raise BuildError(
                f"no record could be made from the {len(tasks)} file(s) of one split of {self.name}; first "
                f"problems: {reasons[:5]}"
            )

    def _split_dict(self, splits: dict[str, list[FileTask]]) -> dict[str, Any]:
        """TFDS split generators for the splits that have files (an empty split cannot be written)."""
        return {name: self._generate_examples(tasks) for name, tasks in splits.items() if tasks}


def _config_dict(config: tfds.core.BuilderConfig) -> dict[str, Any]:
    return {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if f.name not in ("release_notes", "supported_versions", "tags", "version")
    }


def find_root(manual_dir: os.PathLike[str] | str, marker: str) -> str:
    """The folder holding `marker` (e.g. 'edf'): `manual_dir` itself or a folder up to two levels below
    (so both `.../tuh_eeg_abnormal/v3.0.0` and its parent work)."""
    manual_dir = str(manual_dir)
    level = [manual_dir]
    for _ in range(3):  # manual_dir, its children, its grandchildren
        for c in level:
            if os.path.isdir(os.path.join(c, marker)):
                return c
        level = [
            os.path.join(c, d)
            for c in level
            if os.path.isdir(c)
            for d in sorted(os.listdir(c))
            if os.path.isdir(os.path.join(c, d))
        ]
    raise FileNotFoundError(
        f"no '{marker}' folder in {manual_dir} or below it; pass --manual_dir=<the folder that contains '{marker}/'>"
    )
