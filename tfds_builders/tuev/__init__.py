"""TUH EEG Events (TUEV) builder."""

from tfds_builders.tuev.tuev import LABEL_NAMES, Tuev, read_rec, tuev_tasks

__all__ = ["LABEL_NAMES", "Tuev", "read_rec", "tuev_tasks"]
