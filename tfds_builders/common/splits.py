"""Reproducible subject-level splits.

The official TUAB split shuffles `list(set(subjects))` without a seed and the TUEV split seeds numpy but
draws from a set whose order depends on Python's string hashing (labram_reference.md sections 7.4, 7.5);
neither is reproducible. Here subject ids are sorted first and permuted with a fixed seed, so the same
files always give the same split, on any machine.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np


def split_subjects(
    subjects: Iterable[str], val_fraction: float, seed: int, strata: Mapping[str, str] | None = None
) -> tuple[list[str], list[str]]:
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


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Raises ValueError naming the flag when the held-out fractions leave no subject for training."""
    for flag, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"--{flag}={value:g} must be in [0, 1)")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"--val_fraction={val_fraction:g} + --test_fraction={test_fraction:g} must be below 1 "
            "(subjects must remain for training)"
        )


def split_subjects_three_way(
    subjects: Iterable[str], val_fraction: float, test_fraction: float, seed: int
) -> tuple[list[str], list[str], list[str]]:
    """Splits subject ids into `(train, validation, test)`, each sorted, disjoint, covering all subjects.

    For datasets without an official test set. The sorted unique ids are permuted with `seed`; the first
    `round(n * test_fraction)` go to test, the next `round(n * val_fraction)` to validation, the rest to
    train. A positive fraction always gets at least one subject, so that a requested split is never empty.

    Raises:
      ValueError: a fraction outside [0, 1), fractions summing to 1 or more, or too few subjects to give
        every requested split (and train) one subject; the message says how to fix it.
    """
    check_fractions(val_fraction, test_fraction)
    unique = sorted(set(subjects))
    n = len(unique)

    def count(fraction: float) -> int:
        return max(int(math.floor(n * fraction + 0.5)), 1) if fraction > 0 else 0

    n_test, n_val = count(test_fraction), count(val_fraction)
    if n - n_test - n_val < 1:
        needed = 1 + (test_fraction > 0) + (val_fraction > 0)
        raise ValueError(
            f"{n} subject(s) cannot be split into train/validation/test with --val_fraction={val_fraction:g} "
            f"and --test_fraction={test_fraction:g}: each requested split needs at least one subject "
            f"({needed} subjects needed). Add recordings of more subjects, set --val_fraction=0 and/or "
            "--test_fraction=0, or assign the splits yourself (a `split` column in a label table)"
        )
    order = [unique[i] for i in np.random.default_rng(seed).permutation(n)]
    test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    return sorted(train), sorted(val), sorted(test)
