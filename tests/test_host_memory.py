"""The entry points' allocator set-up: XLA:CPU's large per-step temporaries stop page-faulting."""

import json
import os
import subprocess
import sys

import pytest

from labram_jax import host_memory

# A jitted step with two 64 MiB temporaries (above glibc's mmap thresholds), run 4 times after a warm-up; prints
# what configure() did and the minor page faults per run.
PROBE = """
import json, resource, sys
from labram_jax import host_memory
how = host_memory.configure() if sys.argv[1] == "on" else "skipped"
import jax, jax.numpy as jnp
f = jax.jit(lambda x: jnp.sum(jnp.tanh(x @ x.T) @ x))
x = jnp.ones((4096, 16), jnp.float32) * 1e-3
f(x).block_until_ready()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    f(x).block_until_ready()
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 4
print(json.dumps({"how": how, "faults": faults, "tunables": __import__("os").environ.get("GLIBC_TUNABLES", "")}))
"""

TEMP_PAGES = 4096 * 4096 * 4 // 4096  # pages of one 4096^2 float32 temporary


def _probe(mode: str, **env) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(host_memory._glibc_version() is None or sys.platform != "linux", reason="glibc only")
def test_configure_stops_per_step_page_faults():
    env = {"GLIBC_TUNABLES": "", host_memory.ENV_SWITCH: ""}
    plain = _probe("off", **env)
    tuned = _probe("on", **env)
    # Without the set-up every run faults its temporaries in again, 4 KiB at a time.
    assert plain["faults"] > 0.5 * TEMP_PAGES
    assert tuned["faults"] < 0.05 * TEMP_PAGES, tuned
    if tuned["how"].startswith("kept"):  # re-executed with the tunable (transparent huge pages available)
        assert host_memory.HUGETLB in tuned["tunables"]
    else:
        assert tuned["how"] == "mallopt"


def test_switch_and_existing_tunables_are_respected():
    assert _probe("on", **{host_memory.ENV_SWITCH: "off", "GLIBC_TUNABLES": ""})["how"] == "off"
    if host_memory._glibc_version() is not None and sys.platform == "linux":
        mine = "glibc.malloc.hugetlb=0"
        got = _probe("on", **{host_memory.ENV_SWITCH: "", "GLIBC_TUNABLES": mine})
        assert got["how"].startswith("kept") and got["tunables"] == mine
