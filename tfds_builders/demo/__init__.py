"""Synthetic demo dataset written as real EDF files and built by the TUAB/TUEV builders."""

from tfds_builders.demo.demo import Demo, DemoConfig

__all__ = ["Demo", "DemoConfig"]
