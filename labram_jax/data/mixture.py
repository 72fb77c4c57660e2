"""Weighted mixtures of datasets (pre-training mixes many corpora, and each batch may mix them).

The official code feeds pre-training corpora one after another (all of group 1, then group 2, ...), which
the maintainers tie to forgetting (labram_reference.md section 5.6). Here corpora are interleaved element by
element with `grain.MapDataset.mix`: deterministic, proportional to the weights at every prefix of the
stream (not only on average), and index-addressable, so the iterator state stays a single position and
resuming is exact. Records of different corpora can share a batch because every record is padded to the
same channel and patch budget beforehand (`labram_jax.data.loaders`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import grain
import numpy as np


def normalize_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    """Validated weights summing to 1 (uniform when None)."""
    if weights is None:
        return [1.0 / n] * n
    if len(weights) != n:
        raise ValueError(f"{len(weights)} mixture weights for {n} datasets; give one weight per dataset")
    w = [float(x) for x in weights]
    if any(not math.isfinite(x) or x < 0 for x in w) or sum(w) <= 0:
        raise ValueError(f"mixture weights must be finite, non-negative and not all zero, got {weights}")
    total = sum(w)
    return [x / total for x in w]


def mix(datasets: Sequence[grain.MapDataset], weights: Sequence[float] | None = None) -> grain.MapDataset:
    """Interleaves `datasets` so that dataset i supplies a `weights[i]` share of every stretch of the output.

    Repeat the inputs (`.repeat()`) before mixing for an endless stream: a finite mixture ends when its
    first input runs out at the requested proportion.
    """
    if len(datasets) == 1:
        return datasets[0]
    w = normalize_weights(weights, len(datasets))
    keep = [i for i, x in enumerate(w) if x > 0]
    return grain.MapDataset.mix([datasets[i] for i in keep], [w[i] for i in keep])


def proportions(source_ids: np.ndarray, n: int) -> np.ndarray:
    """Observed share of each dataset in a stream of `source` ids (for checks and logs)."""
    counts = np.bincount(np.asarray(source_ids).reshape(-1), minlength=n)
    return counts / max(counts.sum(), 1)
