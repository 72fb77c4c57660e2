"""grain input pipelines over TFDS data sources, producing batches in the `labram_jax.layout` layout.

Training / pre-training::

    from labram_jax.data import loaders
    src = loaders.open_tfds("demo/tuab", data_dir, "train")
    it = loaders.make_loader(src, batch_size=64, max_channels=23, max_patches=10, seed=0)
    batch = next(it)   # dict of numpy arrays, see below

Evaluation (never drops or duplicates an example; the same number of batches on every process)::

    it = loaders.make_eval_loader(src, batch_size=64, max_channels=23, max_patches=10)
    for batch in it:   # batch["valid"] marks real examples; batch["index"] is their index in `src`
        ...

Batches (`B` = batch size, `C` = max_channels, `A` = max_patches):

| key | shape | dtype | meaning |
|---|---|---|---|
| `eeg` | `(B, C, A, 200)` | float32 | µV; zeros in padded channels / patches |
| `channel_ids` | `(B, C)` | int32 | spatial-embedding rows; `PAD_CHANNEL_ID` (0) in padding |
| `channel_mask` | `(B, C)` | bool | real channels (first) |
| `patch_mask` | `(B, A)` | bool | real 1-s patches (first) |
| `label` | `(B,)` | int32 / float32 | class (-1 for unlabelled corpora); float32 for regression targets |
| `source` | `(B,)` | int32 | index of the dataset the example came from (mixtures) |
| `valid` | `(B,)` | bool | evaluation only: False for the padding examples of the last batch |
| `index` | `(B,)` | int64 | evaluation only: example index in the source (-1 for padding) |

Order of operations (training): per-process shard (`source[shard_index::shard_count]`: disjoint and
complete across processes) -> seeded global shuffle, reshuffled every epoch -> repeat -> patchify and pad
-> weighted mixture of several datasets (element level, so one batch can mix them) -> batch -> thread
prefetch -> optional multiprocess prefetch.

Resuming: the returned iterator has `get_state()` / `set_state()`; save it in the trainer's Orbax
`CheckpointManager` next to the model state::

    mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                            data=grain.checkpoint.CheckpointSave(it)))
    mngr.restore(step, args=ocp.args.Composite(state=..., data=grain.checkpoint.CheckpointRestore(it)))

and the restored iterator yields exactly the batches that would have come next (the state is a position
in an index-addressable pipeline, not a buffer).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import grain
import numpy as np

from labram_jax.channels import PAD_CHANNEL_ID
from labram_jax.data.mixture import mix
from labram_jax.layout import CHANNEL_IDS, CHANNEL_MASK, EEG, LABEL, PATCH_MASK, PATCH_SIZE

SOURCE, VALID, INDEX = "source", "valid", "index"

DataSource = Sequence[Mapping[str, Any]]
"""Anything with `__len__` and `__getitem__` returning records (a TFDS data source, a list of dicts):
`signal` `(C, T)` µV with T a multiple of 200, `channel_ids` `(C,)`, optional `label`."""


def open_tfds(name: str, data_dir: str | os.PathLike[str], split: str) -> DataSource:
    """`tfds.data_source(name, data_dir=..., split=..., download=False)` with an actionable error."""
    import tensorflow_datasets as tfds

    try:
        return tfds.data_source(name, data_dir=os.path.expanduser(os.fspath(data_dir)), split=split, download=False)
    except Exception as err:  # noqa: BLE001 - TFDS raises several types for a missing dataset
        base = name.split("/")[0]
        raise FileNotFoundError(
            f"cannot open TFDS dataset {name!r} split {split!r} in {data_dir} ({type(err).__name__}: {err}); "
            f"build it first: python -m tfds_builders.build {base} --data_dir={data_dir} ..."
        ) from err


class ToLayout:
    """Record -> padded example in the batch layout (picklable, for multiprocess prefetch).

    Args:
      max_channels: channel budget C; records with more channels raise (raise the budget or build the
        dataset with fewer channels).
      max_patches: patch budget A (seconds); longer records raise.
      source: dataset index written to `source`.
    """

    def __init__(self, max_channels: int, max_patches: int, source: int = 0):
        self.max_channels = int(max_channels)
        self.max_patches = int(max_patches)
        self.source = int(source)

    def __call__(self, record: Mapping[str, Any]) -> dict[str, np.ndarray]:
        signal = np.asarray(record["signal"], np.float32)
        ids = np.asarray(record["channel_ids"], np.int32)
        n_ch, length = signal.shape
        if length % PATCH_SIZE:
            raise ValueError(
                f"record of {length} samples is not a whole number of 200-sample patches "
                f"(recording {_text(record.get('recording_id'))}); rebuild with whole-second "
                "windows"
            )
        n_patches = length // PATCH_SIZE
        if n_ch > self.max_channels or n_patches > self.max_patches:
            raise ValueError(
                f"record with {n_ch} channels x {n_patches} patches exceeds the budget of "
                f"{self.max_channels} channels x {self.max_patches} patches (recording "
                f"{_text(record.get('recording_id'))}); raise max_channels / max_patches"
            )
        eeg = np.zeros((self.max_channels, self.max_patches, PATCH_SIZE), np.float32)
        eeg[:n_ch, :n_patches] = signal.reshape(n_ch, n_patches, PATCH_SIZE)
        channel_ids = np.full((self.max_channels,), PAD_CHANNEL_ID, np.int32)
        channel_ids[:n_ch] = ids
        channel_mask = np.zeros((self.max_channels,), bool)
        channel_mask[:n_ch] = True
        patch_mask = np.zeros((self.max_patches,), bool)
        patch_mask[:n_patches] = True
        label = np.asarray(record.get("label", -1))
        # Regression targets (float labels, eeg_labelled table mode) must not be truncated to integers.
        label = label.astype(np.float32) if np.issubdtype(label.dtype, np.floating) else label.astype(np.int32)
        return {
            EEG: eeg,
            CHANNEL_IDS: channel_ids,
            CHANNEL_MASK: channel_mask,
            PATCH_MASK: patch_mask,
            LABEL: label,
            SOURCE: np.int32(self.source),
        }


def _text(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def _default_shard(shard_index: int | None, shard_count: int | None) -> tuple[int, int]:
    if shard_index is None or shard_count is None:
        import jax  # only when the caller leaves sharding to JAX's process layout

        shard_index = jax.process_index() if shard_index is None else shard_index
        shard_count = jax.process_count() if shard_count is None else shard_count
    if not 0 <= shard_index < shard_count:
        raise ValueError(f"shard_index {shard_index} must be in [0, shard_count={shard_count})")
    return int(shard_index), int(shard_count)


def _seed(seed: int, i: int) -> int:
    # Distinct, well-mixed shuffle seeds per dataset from one user seed.
    return int(np.random.SeedSequence([int(seed), i]).generate_state(1)[0])


def _finish(ds: grain.MapDataset, read_threads: int, prefetch_batches: int, num_workers: int) -> grain.DatasetIterator:
    it_ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=prefetch_batches))
    if num_workers > 0:
        from absl import flags

        # grain's worker processes read absl flags; a plain script never parses them.
        if not flags.FLAGS.is_parsed():
            flags.FLAGS.mark_as_parsed()
        it_ds = it_ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
    return iter(it_ds)


def build_dataset(
    sources: DataSource | Sequence[DataSource],
    *,
    batch_size: int,
    max_channels: int,
    max_patches: int,
    seed: int = 0,
    shard_index: int | None = None,
    shard_count: int | None = None,
    weights: Sequence[float] | None = None,
    shuffle: bool = True,
    drop_remainder: bool = True,
    num_epochs: int | None = None,
) -> grain.MapDataset:
    """The batched `grain.MapDataset` behind `make_loader` (same arguments)."""
    sources = _as_list(sources)
    shard_index, shard_count = _default_shard(shard_index, shard_count)
    parts = []
    for i, src in enumerate(sources):
        ds = grain.MapDataset.source(src)[shard_index::shard_count]
        if len(ds) == 0:
            raise ValueError(f"dataset {i} has {len(src)} examples: nothing for shard {shard_index} of {shard_count}")
        if shuffle:
            ds = ds.shuffle(seed=_seed(seed, i))
        ds = ds.repeat(num_epochs)  # shuffle before repeat: each epoch gets its own order
        parts.append(ds.map(ToLayout(max_channels, max_patches, source=i)))
    return mix(parts, weights).batch(batch_size, drop_remainder=drop_remainder)


def make_loader(
    sources: DataSource | Sequence[DataSource],
    *,
    batch_size: int,
    max_channels: int,
    max_patches: int,
    seed: int = 0,
    shard_index: int | None = None,
    shard_count: int | None = None,
    weights: Sequence[float] | None = None,
    shuffle: bool = True,
    drop_remainder: bool = True,
    num_epochs: int | None = None,
    num_workers: int = 0,
    read_threads: int = 2,
    prefetch_batches: int = 4,
) -> grain.DatasetIterator:
    """An iterator of padded batches for training (see the module docstring for the layout).

    Args:
      sources: one data source or a list of them (TFDS `data_source`s or any sequence of records).
      batch_size: examples per batch on this process.
      max_channels, max_patches: the channel and patch budget every example is padded to.
      seed: shuffling seed; the same seed gives the same batches.
      shard_index, shard_count: this process's shard (default: `jax.process_index()` /
        `jax.process_count()`); shards are disjoint and together complete.
      weights: mixture weights, one per source (default uniform); ignored for a single source.
      shuffle: global shuffle of each source (per shard), different every epoch.
      drop_remainder: drop a last partial batch (only reachable with a finite `num_epochs`).
      num_epochs: passes over each source; None repeats forever.
      num_workers: multiprocess prefetch workers (0: none). They take seconds to start; worth it when
        the per-record work (decoding, padding) limits throughput.
      read_threads, prefetch_batches: thread-level prefetch of whole batches.

    Returns:
      A grain `DatasetIterator` with `get_state` / `set_state` (Orbax: `grain.checkpoint.CheckpointSave`).
    """
    ds = build_dataset(
        sources,
        batch_size=batch_size,
        max_channels=max_channels,
        max_patches=max_patches,
        seed=seed,
        shard_index=shard_index,
        shard_count=shard_count,
        weights=weights,
        shuffle=shuffle,
        drop_remainder=drop_remainder,
        num_epochs=num_epochs,
    )
    return _finish(ds, read_threads, prefetch_batches, num_workers)


class _EvalShard:
    """This process's examples of `source` padded to a common length (picklable data source).

    Position j < real count maps to `source[shard_index + j * shard_count]`; later positions repeat this
    shard's first example (real data, so models see no all-masked input) flagged `valid = False`.
    """

    def __init__(self, source: DataSource, shard_index: int, shard_count: int, length: int):
        self.source = source
        self.shard_index = shard_index
        self.shard_count = shard_count
        self.real = len(range(shard_index, len(source), shard_count))
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, j: int) -> dict[str, Any]:
        valid = j < self.real
        index = self.shard_index + j * self.shard_count if valid else (self.shard_index if self.real else 0)
        record = dict(self.source[index])
        record[VALID] = valid
        record[INDEX] = index if valid else -1
        return record


class _EvalLayout(ToLayout):
    def __call__(self, record: Mapping[str, Any]) -> dict[str, np.ndarray]:
        out = super().__call__(record)
        out[VALID] = np.bool_(record[VALID])
        out[INDEX] = np.int64(record[INDEX])
        return out


def eval_num_batches(num_examples: int, batch_size: int, shard_count: int) -> int:
    """Batches every process yields in evaluation: `ceil(ceil(n / shard_count) / batch_size)`."""
    return math.ceil(math.ceil(num_examples / shard_count) / batch_size)


def make_eval_loader(
    source: DataSource,
    *,
    batch_size: int,
    max_channels: int,
    max_patches: int,
    shard_index: int | None = None,
    shard_count: int | None = None,
    num_workers: int = 0,
    read_threads: int = 2,
    prefetch_batches: int = 4,
) -> grain.DatasetIterator:
    """One ordered pass over `source` for evaluation: nothing dropped, nothing counted twice.

    Each process gets the examples `shard_index::shard_count`, padded with `valid == False` examples so
    that every process yields the same number of full batches (`eval_num_batches`), which keeps
    collective steps in lock-step on multi-host runs. Accumulate metrics over `valid` examples only;
    `index` identifies each valid example in `source`.
    """
    shard_index, shard_count = _default_shard(shard_index, shard_count)
    if len(source) == 0:
        raise ValueError("cannot evaluate an empty data source")
    length = eval_num_batches(len(source), batch_size, shard_count) * batch_size
    ds = grain.MapDataset.source(_EvalShard(source, shard_index, shard_count, length))
    ds = ds.map(_EvalLayout(max_channels, max_patches)).batch(batch_size, drop_remainder=False)
    return _finish(ds, read_threads, prefetch_batches, num_workers)


def _as_list(sources: DataSource | Sequence[DataSource]) -> list[DataSource]:
    """A single source (records are mappings) or a list of sources."""
    if isinstance(sources, (list, tuple)) and sources and not isinstance(sources[0], Mapping):
        return list(sources)
    return [sources]  # type: ignore[list-item]
