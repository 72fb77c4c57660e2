"""What `plan` compiles for: a named TPU slice (compile-only devices from libtpu, no TPU attached), `cpu:N`
(N fake host devices) or `local` (this process's devices), with the memory and roofline figures of the kind.

The peak figures are per chip (one JAX device; v4 and v5p in megacore mode, as JAX runs them) from the
Cloud TPU system-architecture pages and the NVIDIA data sheets (dense bf16 matmul, HBM bandwidth); they
bound a step's time from below, they do not measure it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from typing import Any

GIB = 1024**3


@dataclasses.dataclass(frozen=True)
class DeviceKind:
    """One accelerator kind: memory per device and the peaks that bound a step's time."""

    name: str
    memory_bytes: int
    peak_flops: float
    """Dense bf16 matmul FLOP/s per device."""
    hbm_bytes_per_s: float


TPU_KINDS = {
    "v4": DeviceKind("TPU v4", 32 * GIB, 275e12, 1200e9),
    "v5e": DeviceKind("TPU v5 lite", 16 * GIB, 197e12, 819e9),
    "v5p": DeviceKind("TPU v5", 95 * GIB, 459e12, 2765e9),
    "v6e": DeviceKind("TPU v6 lite", 32 * GIB, 918e12, 1640e9),
}

GPU_KINDS = {  # matched against jax's device_kind, first match wins
    "H200": DeviceKind("NVIDIA H200", 141 * 10**9, 989e12, 4800e9),
    "H100": DeviceKind("NVIDIA H100 SXM", 80 * 10**9, 989e12, 3350e9),
    "A100-SXM4-80GB": DeviceKind("NVIDIA A100 80GB", 80 * 10**9, 312e12, 2039e9),
    "A100": DeviceKind("NVIDIA A100 40GB", 40 * 10**9, 312e12, 1555e9),
    "L4": DeviceKind("NVIDIA L4", 24 * 10**9, 121e12, 300e9),
}

# Slice name -> (kind, libtpu topology). v4 and v5p names count TensorCores (two per chip, one JAX device
# per chip in megacore mode); v5e and v6e names count chips.
_CUBE = {8: "2x2x1", 16: "2x2x2", 32: "2x2x4", 64: "2x4x4", 128: "4x4x4", 256: "4x4x8", 512: "4x8x8"}
_PLANE = {4: "2x2", 8: "2x4", 16: "4x4", 32: "4x8", 64: "8x8", 128: "8x16", 256: "16x16"}
TPU_SLICES: dict[str, tuple[str, str]] = {
    **{f"v4-{n}": ("v4", f"v4:{t}") for n, t in _CUBE.items()},
    **{f"v5p-{n}": ("v5p", f"v5p:{t}") for n, t in _CUBE.items()},
    **{f"v5e-{n}": ("v5e", f"v5e:{t}") for n, t in _PLANE.items()},
    **{f"v6e-{n}": ("v6e", f"v6e:{t}") for n, t in _PLANE.items()},
}
_MEGACORE = ("v4", "v5p")

COMPILE_ONLY_ENVIRONMENT = {
    "ALLOW_MULTIPLE_LIBTPU_LOAD": "1",
    "TPU_SKIP_MDS_QUERY": "1",
    "TPU_WORKER_HOSTNAMES": "localhost",
    "TPU_STDERR_LOG_LEVEL": "3",
    "TPU_MIN_LOG_LEVEL": "3",
}
"""libtpu's environment when it only compiles (set where unset)."""


class TargetError(ValueError):
    """An unknown or unusable target; the message lists what is known or what to install."""


@dataclasses.dataclass
class Target:
    """Devices to compile for and what is known of them."""

    name: str
    devices: list[Any]
    device_kind: str
    kind: DeviceKind | None
    capacity_bytes: int | None
    platform: str
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def is_estimate(self) -> bool:
        """XLA:CPU figures stand in for an accelerator's (memory layout, fusion and temporaries differ)."""
        return self.platform == "cpu"


def known_names() -> list[str]:
    return ["local", "cpu:N", *TPU_SLICES]


def resolve(name: str, memory_gib: float | None = None) -> Target:
    """The target `name` names; `memory_gib` overrides the memory per device (e.g. a GPU's, with cpu:N)."""
    if name in TPU_SLICES:
        target = _tpu_slice(name)
    elif re.fullmatch(r"cpu:\d+", name):
        target = _cpu(int(name.split(":")[1]))
    elif name == "local":
        target = _local()
    else:
        raise TargetError(
            f"--topology={name!r} is not a known target; known: local, cpu:N (N fake CPU devices), "
            + ", ".join(TPU_SLICES)
        )
    if memory_gib is not None:
        target.capacity_bytes = int(memory_gib * GIB)
        target.notes.append(f"device memory set by --memory_gib={memory_gib:g}")
    return target


def _tpu_slice(name: str) -> Target:
    kind_name, topology = TPU_SLICES[name]
    try:
        from jax.experimental import topologies
    except ImportError as err:  # pragma: no cover - jax always has it
        raise TargetError(str(err)) from err
    # A host without TPUs still loads libtpu to compile. Another JAX process on the host may hold libtpu's
    # lock file, which only matters for running on TPUs; the metadata-server and worker discovery libtpu
    # attempts at start-up would only warn.
    for key, value in COMPILE_ONLY_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    kwargs = {"chip_config_name": "megacore"} if kind_name in _MEGACORE else {}
    try:
        devices = list(topologies.get_topology_desc(topology_name=topology, platform="tpu", **kwargs).devices)
    except Exception as err:  # noqa: BLE001 - libtpu missing or refusing: say how to get it
        raise TargetError(
            f"--topology={name}: cannot describe TPU topology {topology!r} ({str(err).splitlines()[0][:200]}); "
            "TPU targets need libtpu: pip install -e '.[tpu]'"
        ) from err
    kind = TPU_KINDS[kind_name]
    return Target(name, devices, devices[0].device_kind, kind, kind.memory_bytes, "tpu")


def _cpu(n: int) -> Target:
    import jax

    if n < 1:
        raise TargetError("--topology=cpu:N needs N >= 1")
    devices = jax.devices("cpu")
    if len(devices) < n:
        raise TargetError(
            f"--topology=cpu:{n}: this process has {len(devices)} CPU devices; `python -m labram_jax.plan` sets "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={n} before JAX starts (set it yourself when "
            "planning from Python)"
        )
    total = _host_memory_bytes()
    notes = [
        "XLA:CPU estimates: an accelerator's fusion and temporaries differ; parameter, optimiser and batch bytes "
        "per device are exact for any backend with this mesh",
        f"device memory: the host's {total / GIB:.1f} GiB split over {n} fake devices (--memory_gib sets a GPU's)",
    ]
    return Target(f"cpu:{n}", devices[:n], devices[0].device_kind, None, total // n if total else None, "cpu", notes)


def _local() -> Target:
    import jax

    devices = jax.devices()
    first = devices[0]
    kind = _kind_of(first)
    capacity = None
    try:
        stats = first.memory_stats() or {}
        capacity = stats.get("bytes_limit")
    except Exception:  # noqa: BLE001 - some backends have no memory stats
        stats = {}
    if capacity is None and kind is not None:
        capacity = kind.memory_bytes
    notes = []
    if first.platform == "cpu":
        total = _host_memory_bytes()
        capacity = total // len(devices) if total else None
        notes.append("XLA:CPU estimates; device memory: the host's memory split over the devices")
    return Target("local", devices, first.device_kind, kind, capacity, first.platform, notes)


def _kind_of(device: Any) -> DeviceKind | None:
    if device.platform == "tpu":
        for kind in TPU_KINDS.values():
            if kind.name == device.device_kind:
                return kind
    if device.platform == "gpu":
        for key, kind in GPU_KINDS.items():
            if key in device.device_kind:
                return kind
    return None


def _host_memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def roofline_seconds(flops: float, bytes_accessed: float, kind: DeviceKind | None) -> float | None:
    """The step time the device's peaks allow: max(FLOPs / peak, bytes / bandwidth). A lower bound."""
    if kind is None or not math.isfinite(flops) or not math.isfinite(bytes_accessed):
        return None
    return max(flops / kind.peak_flops, bytes_accessed / kind.hbm_bytes_per_s)
