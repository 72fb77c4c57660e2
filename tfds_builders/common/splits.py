"""Reproducible subject-level splits.

The official TUAB split shuffles `list(set(subjects))` without a seed and the TUEV split seeds numpy but
draws from a set whose order depends on Python's string hashing (labram_reference.md sections 7.4, 7.5);
neither is reproducible. Here subject ids are sorted first and permuted with a fixed seed, so the same
files always give the same split, on any machine.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np


def split_subjects(subjects: Iterable[str], val_fraction: float, seed: int,
                   strata: Mapping[str, str] | None = None) -> tuple[list[str], list[str]]:
    """Splits subject ids into `(train, validation)`, both sorted, disjoint, covering all subjects.

    Args:
      subjects: subject ids (duplicates ignored).
      val_fraction: share of subjects (per stratum) held out; the train part is the first
        `int(n * (1 - val_fraction))` of the permutation, as the official scripts take the first 80 %.
        When a stratum has two or more subjects and a positive fraction, both parts get at least one; a
        stratum of one subject goes to train.
      seed: seed of the permutation (numpy default_rng).
      strata: optional subject -> stratum (e.g. its label); each stratum is split separately, in sorted
        stratum order, so class proportions are kept (make_TUAB.py splits abnormal and normal subjects
        separately).
    """
    unique = sorted(set(subjects))
    groups: dict[str, list[str]] = {}
    for s in unique:
        groups.setdefault(strata[s] if strata else "", []).append(s)
    rng = np.random.default_rng(seed)
    train: list[str] = []
    val: list[str] = []
    for key in sorted(groups):
        members = groups[key]
        order = [members[i] for i in rng.permutation(len(members))]
        n_train = int(len(order) * (1.0 - val_fraction) + 1e-9)
        if val_fraction > 0 and len(order) >= 2:
            n_train = min(max(n_train, 1), len(order) - 1)
        elif len(order) == 1:
            n_train = 1  # a lone subject trains rather than forming a one-subject validation set
        train += order[:n_train]
        val += order[n_train:]
    return sorted(train), sorted(val)
