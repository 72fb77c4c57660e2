"""Fine-tuning settings read from a labelled dataset's metadata (`config.task.kind = "auto"`).

An `eeg_labelled` dataset stores what it is (`task`: binary / multiclass / regression, `num_classes`,
`label_names`, `window_seconds`, `channels`) in its TFDS `metadata.json`. `resolve(config)` fills the
config's `"auto"` fields from it before any model is built, so one config (`configs/finetune_custom.py`)
fine-tunes on any such dataset; the resolved values land in the checkpoint's metadata like any other field.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import ml_collections

from labram_jax.config_errors import ConfigError
from labram_jax.train import datasets as train_data

AUTO = "auto"
NUM_OUTPUTS_AUTO = -1


def _version_key(name: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in name.split("."))
    except ValueError:
        return (-1,)


def dataset_metadata(name: str, data_dir: str) -> dict[str, Any]:
    """The `metadata.json` of dataset `name` ("builder/config") in `data_dir` (its newest version)."""
    root = os.path.join(os.path.expanduser(data_dir), *name.split("/"))
    versions = sorted(
        (d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "metadata.json")))
        if os.path.isdir(root)
        else [],
        key=_version_key,
    )
    if not versions:
        raise ConfigError(
            f"config.data.train: dataset {name!r} is not built in data_dir {data_dir!r} (no "
            f"{root}/<version>/metadata.json). Build it with:\n  "
            f"{train_data.build_command(name, data_dir)}"
        )
    with open(os.path.join(root, versions[-1], "metadata.json")) as f:
        return json.load(f)


def resolve(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy of `config` with `task.kind = "auto"`, `task.num_outputs = -1`, empty `task.class_names` and
    `data.max_channels` / `data.max_patches` = -1 taken from the first training (else test) dataset, and
    `data.train/validation/test` = `<config.dataset>:<split>` when all three are empty.

    Raises:
      ConfigError: the dataset has no task metadata (not an `eeg_labelled` dataset: set the fields by
        hand), or its windows are longer than the model's `max_patches` seconds.
    """
    task, data = config.get("task"), config.get("data")
    wants = (
        task is not None
        and (task.kind == AUTO or task.num_outputs == NUM_OUTPUTS_AUTO)
        or (data is not None and (data.max_channels == -1 or data.max_patches == -1))
    )
    dataset = config.get("dataset", "")
    fill_splits = bool(dataset) and not any(data.get(k, "") for k in ("train", "validation", "test"))
    if not (wants or fill_splits):
        return config
    config = config.copy_and_resolve_references()
    task, data = config.get("task"), config.data
    if fill_splits:
        for split in ("train", "validation", "test"):
            data[split] = f"{dataset}:{split}"
    if not wants:
        return config
    entries = train_data.entries(data.get("train", ""), "train") or train_data.entries(data.get("test", ""), "test")
    if not entries:
        raise ConfigError(
            "config.task.kind='auto' reads the task from the training dataset, but "
            "config.data.train and config.data.test are empty"
        )
    name = entries[0][0]
    meta = dataset_metadata(name, data.data_dir)
    field = f"the metadata of dataset {name!r}"
    if task.kind == AUTO or task.num_outputs == NUM_OUTPUTS_AUTO:
        if "task" not in meta:
            raise ConfigError(
                f"config.task.kind='auto' but {field} has no 'task' (only eeg_labelled datasets "
                "store one); set --config.task.kind and --config.task.num_outputs"
            )
        kind = meta["task"]
        if task.kind not in (AUTO, kind):
            raise ConfigError(f"config.task.kind={task.kind!r} but {field} says {kind!r}; use 'auto'")
        config.task.kind = kind
        names = list(meta.get("label_names") or ())
        config.task.num_outputs = {"binary": 1, "regression": 1}.get(kind, int(meta.get("num_classes", len(names))))
        if not config.task.class_names:
            config.task.class_names = tuple(names)
        if kind == "multiclass" and config.task.label_smoothing < 0:
            config.task.label_smoothing = 0.1
        if kind != "multiclass":
            config.task.label_smoothing = 0.0
    if config.task.label_smoothing < 0:
        config.task.label_smoothing = 0.0
    if data.max_patches == -1:
        seconds = float(meta.get("window_seconds", 0) or 0)
        if seconds <= 0 or not float(seconds).is_integer():
            raise ConfigError(
                f"config.data.max_patches=-1 but {field} has no whole-second 'window_seconds'; "
                "set --config.data.max_patches to the record length in seconds"
            )
        config.data.max_patches = int(seconds)
    if data.max_channels == -1:
        channels = meta.get("channels") or ()
        if not channels:
            raise ConfigError(
                f"config.data.max_channels=-1 but {field} lists no 'channels'; set --config.data.max_channels"
            )
        config.data.max_channels = len(channels)
    limit = int(config.model.max_patches)
    if config.data.max_patches > limit:
        raise ConfigError(
            f"records of {name!r} are {config.data.max_patches} s long but the model reads at most "
            f"{limit} s (config.model.max_patches, the {limit} rows of the official temporal embedding). Rebuild "
            f"the dataset with windows of at most {limit} s (eeg_labelled: --tmax - --tmin, or --window), e.g. "
            f"{math.ceil(config.data.max_patches / limit)} windows per trial."
        )
    return config
