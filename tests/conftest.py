"""Shared fixtures: the demo datasets (built once per session, ~10 s)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

# The suite runs on the CPU. With the `tpu` extra installed (CI installs it for the TPU plans of
# tests/test_plan.py), JAX would otherwise start libtpu as this host's accelerator in every process and
# subprocess: warnings, and a host-wide lock file that concurrent processes contend for.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# One persistent compilation cache for the session, shared by the pytest workers and every subprocess they
# start (the environment is inherited): many tests compile the same tiny train step again in a fresh process
# (resume, preemption, the distributed runs, the benchmarks' smoke runs), and XLA:CPU then loads the
# executable it compiled before instead of compiling it anew. The executables are the same, so no result
# changes; only programs that take over a second to compile are stored (JAX's default threshold).
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="labram-jax-test-xla-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory) -> str:
    from tfds_builders.build import build

    root = tmp_path_factory.mktemp("demo_data")
    for name in ("tuab", "tuev"):
        build("demo", str(root), config=name)
    return str(root)
