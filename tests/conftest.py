"""Shared fixtures: the demo datasets (built once per session, ~10 s)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory) -> str:
    from tfds_builders.build import build

    root = tmp_path_factory.mktemp("demo_data")
    for name in ("tuab", "tuev"):
        build("demo", str(root), config=name)
    return str(root)
