"""Shared fixtures: the demo datasets (built once per session, ~10 s)."""

from __future__ import annotations

import os

import pytest

# The suite runs on the CPU. With the `tpu` extra installed (CI installs it for the TPU plans of
# tests/test_plan.py), JAX would otherwise start libtpu as this host's accelerator in every process and
# subprocess: warnings, and a host-wide lock file that concurrent processes contend for.
os.environ.setdefault("JAX_PLATFORMS", "cpu")


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory) -> str:
    from tfds_builders.build import build

    root = tmp_path_factory.mktemp("demo_data")
    for name in ("tuab", "tuev"):
        build("demo", str(root), config=name)
    return str(root)
