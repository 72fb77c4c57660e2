"""The datasets a config names, opened as TFDS data sources, and the loaders of the training loop.

A dataset entry is `name/config[:split]` (e.g. `tuab/default:train`, `eeg_corpus/w4`, `demo/tuab:test`);
`config.data.train`, `config.data.validation` and `config.data.test` are comma-separated lists of them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections

from labram_jax import layout
from labram_jax.config_errors import ConfigError
from labram_jax.data import loaders

TRAIN_KEYS = (layout.EEG, layout.CHANNEL_IDS, layout.CHANNEL_MASK, layout.PATCH_MASK, layout.LABEL)
EVAL_KEYS = TRAIN_KEYS + (loaders.VALID, loaders.INDEX)

_MANUAL_DIR_HINT = {
    "tuab": "--manual_dir=<folder with TUAB's edf/ tree>",
    "tuev": "--manual_dir=<folder with TUEV's edf/ tree>",
    "eeg_corpus": "--manual_dir=<folder of your recordings>",
    "eeg_labelled": "--manual_dir=<folder of your recordings> (--events=DESC=CLASS,... --tmin=S --tmax=S | "
    "--table=labels.csv)",
}


def entries(value: str | Sequence[str], default_split: str) -> list[tuple[str, str]]:
    """`"a/x:train, b/y"` -> `[("a/x", "train"), ("b/y", default_split)]`."""
    items = value.split(",") if isinstance(value, str) else list(value)
    out = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        name, _, split = item.partition(":")
        out.append((name, split or default_split))
    return out


def build_command(name: str, data_dir: str) -> str:
    """The exact command that builds dataset `name` ("builder/config") into `data_dir`."""
    builder, _, cfg = name.partition("/")
    parts = ["python -m tfds_builders.build", builder]
    if cfg and not (builder in ("tuab", "tuev") and cfg == "default"):
        parts.append(f"--config={cfg}")
    if builder in _MANUAL_DIR_HINT:
        parts.append(_MANUAL_DIR_HINT[builder])
    parts.append(f"--data_dir={data_dir}")
    return " ".join(parts)


def open_source(name: str, split: str, data_dir: str, field: str) -> loaders.DataSource:
    """The data source, or a `ConfigError` saying which dataset is missing and how to build it."""
    root = os.path.expanduser(data_dir)
    builder_dir = os.path.join(root, *name.split("/"))
    if not os.path.isdir(builder_dir):
        raise ConfigError(
            f"{field}: dataset {name!r} is not built in data_dir {data_dir!r} (no {builder_dir}). "
            f"Build it with:\n  {build_command(name, data_dir)}\nor point --config.data.data_dir "
            "at the folder that holds it."
        )
    try:
        return loaders.open_tfds(name, root, split)
    except FileNotFoundError as err:
        raise ConfigError(f"{field}: {err}") from None


def sources(config: ml_collections.ConfigDict, which: str) -> list[tuple[str, loaders.DataSource]]:
    """`[(label, source)]` of `config.data.<which>` ("train", "validation" or "test")."""
    default_split = {"train": "train", "validation": "validation", "test": "test"}[which]
    return [
        (f"{name}:{split}", open_source(name, split, config.data.data_dir, f"config.data.{which}"))
        for name, split in entries(config.data.get(which, ""), default_split)
    ]


def local_batch_size(global_batch: int) -> int:
    return global_batch // jax.process_count()


def train_loader(config: ml_collections.ConfigDict, train: list[tuple[str, Any]]):
    data = config.data
    weights = list(data.weights) if data.weights else None
    return loaders.make_loader(
        [s for _, s in train],
        batch_size=local_batch_size(config.optim.batch_size),
        max_channels=data.max_channels,
        max_patches=data.max_patches,
        seed=config.seed,
        shard_index=jax.process_index(),
        shard_count=jax.process_count(),
        weights=weights,
        shuffle=data.shuffle,
        num_workers=data.num_workers,
    )


def eval_batch_size(config: ml_collections.ConfigDict) -> int:
    """`config.data.eval_batch_size`, or the reference's `int(1.5 * batch)`."""
    return config.data.eval_batch_size or int(1.5 * config.optim.batch_size)


def eval_loader(config: ml_collections.ConfigDict, source: Any, batch_size: int):
    data = config.data
    return loaders.make_eval_loader(
        source,
        batch_size=local_batch_size(batch_size),
        max_channels=data.max_channels,
        max_patches=data.max_patches,
        shard_index=jax.process_index(),
        shard_count=jax.process_count(),
    )


def steps_per_epoch(config: ml_collections.ConfigDict, train: list[tuple[str, Any]]) -> int:
    """`sum(len(dataset)) // batch_size`, as the reference's `len(dataset) // batch // world`."""
    total = sum(len(s) for _, s in train)
    steps = total // config.optim.batch_size
    if steps == 0:
        raise ConfigError(
            f"config.optim.batch_size={config.optim.batch_size} exceeds the {total} training "
            f"examples of config.data.train={config.data.train!r}; lower the batch size"
        )
    return steps
