"""TUH Abnormal EEG (TUAB) builder."""

from tfds_builders.tuab.tuab import LABEL_NAMES, Tuab, tuab_tasks

__all__ = ["LABEL_NAMES", "Tuab", "tuab_tasks"]
