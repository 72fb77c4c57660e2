"""Host-memory set-up of our command-line entry points: keep XLA:CPU's per-step temporaries cheap.

XLA:CPU allocates each step's temporary buffer (about 2 GB for a Base fine-tuning step at batch 16) with
glibc `malloc` and frees it after the step. Blocks that large are always served by `mmap` and returned to
the kernel on `free`, so every step faults the whole buffer in again, 4 KiB at a time (~500k page faults,
about a quarter of the step on 2 cores). glibc's `mallopt` cannot keep them: the mmap threshold is capped at
32 MiB, and allocations from XLA's worker threads (non-main arenas) above 64 MiB are mmapped whatever the
settings. Measured on this project's 2-core CPU machines (Base fine-tune step, batch 16, median of 6 steps):

| setting                                                              | page faults/step | step   |
|----------------------------------------------------------------------|------------------|--------|
| glibc defaults                                                       | ~500k            | ~3.0 s |
| `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` (transparent huge pages)      | ~1.2k            | 2.3 s  |
| one arena, no mmap, no trimming (`mallopt` at start-up)              | 0                | 2.0 s  |
| both (what `configure()` sets up)                                    | 0                | 1.8 s  |

Huge pages alone still return and re-fault the buffer each step (2 MiB at a time, with the kernel's
compaction showing as ~0.9 s of system time); one arena alone keeps the memory but on 4 KiB pages. The
tunable is read when the process starts, so `configure()` re-executes the entry point once with it set,
then applies the `mallopt` settings before JAX starts any thread; where transparent huge pages are off it
applies the `mallopt` settings alone. `LABRAM_JAX_MALLOC=off` leaves the allocator alone; a
`GLIBC_TUNABLES` that already names `glibc.malloc.hugetlb` is respected. Only entry points call this
(never `import labram_jax`): re-executing a notebook or a test runner would be wrong.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import sys

ENV_SWITCH = "LABRAM_JAX_MALLOC"
HUGETLB = "glibc.malloc.hugetlb=1"
_THP_ENABLED = "/sys/kernel/mm/transparent_hugepage/enabled"
# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8


def _glibc_version() -> tuple[int, ...] | None:
    lib, version = platform.libc_ver()
    if lib != "glibc" or not version:
        return None
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        return None


def _thp_mode() -> str:
    """The kernel's transparent-huge-page mode: "always", "madvise", "never" ("" if unknown)."""
    try:
        with open(_THP_ENABLED) as f:
            text = f.read()
    except OSError:
        return ""
    start, end = text.find("["), text.find("]")
    return text[start + 1 : end] if 0 <= start < end else ""


def _single_arena() -> bool:
    """In-process fallback: one arena, no mmap, no trimming (freed memory stays in the process)."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    libc = ctypes.CDLL(name)
    # -1 as M_TRIM_THRESHOLD is SIZE_MAX inside glibc: never give the heap top back.
    return all(libc.mallopt(p, v) == 1 for p, v in ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, -1)))


def configure() -> str:
    """Sets up the allocator for a training / inference process; call it first thing in `__main__`.

    Returns what was done ("off", "kept+mallopt" after the re-execution, "mallopt", "unsupported"); does
    not return when it re-executes.
    """
    if os.environ.get(ENV_SWITCH, "").lower() in ("off", "0", "false"):
        return "off"
    version = _glibc_version()
    if sys.platform != "linux" or version is None:
        return "unsupported"
    if "glibc.malloc.hugetlb" in os.environ.get("GLIBC_TUNABLES", ""):
        return "kept+mallopt" if _single_arena() else "kept"
    if version >= (2, 35) and _thp_mode() in ("always", "madvise") and getattr(sys, "orig_argv", None):
        tunables = os.environ.get("GLIBC_TUNABLES", "")
        env = dict(os.environ, GLIBC_TUNABLES=f"{tunables}:{HUGETLB}" if tunables else HUGETLB)
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
    return "mallopt" if _single_arena() else "unsupported"
