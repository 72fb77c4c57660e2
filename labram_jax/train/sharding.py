"""The device mesh, the logical-axis rules, and global batches assembled from each process's shard.

Parameters carry logical axis names (`labram_jax.logical_axes`); `config.sharding.rules` maps them to the
mesh axes `data`, `fsdp` and `tensor`. Batches are split over `data` x `fsdp` (FSDP shards the batch as
well as the parameters). Axis types are `Auto`: sharding propagates from the parameters and the batch
through GSPMD, and the models' `with_logical_constraint` hints stay hints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from labram_jax.config_errors import ConfigError

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")

DEFAULT_RULES = (
    ("batch", BATCH_AXES),
    ("embed", "fsdp"),
    ("mlp", "tensor"),
    ("heads", "tensor"),
    ("vocab", "tensor"),
    ("codebook", "tensor"),
    ("tokens", None),
)
"""Logical axis -> mesh axes. Unlisted logical axes are replicated."""


class ShardingConfigError(ConfigError):
    """A mesh or batch size that does not fit the devices; the message names the config field."""


def mesh_shape(mesh_config: ml_collections.ConfigDict, num_devices: int) -> tuple[int, int, int]:
    """Sizes of (data, fsdp, tensor); one of them may be -1 for "all remaining devices"."""
    sizes = [int(mesh_config.get(axis, 1)) for axis in MESH_AXES]
    unknown = [a for a, s in zip(MESH_AXES, sizes) if s == -1]
    if len(unknown) > 1 or any(s == 0 or s < -1 for s in sizes):
        raise ShardingConfigError(
            f"config.mesh = {dict(zip(MESH_AXES, sizes))}: sizes must be positive, with at "
            "most one -1 (all remaining devices)"
        )
    known = math.prod(s for s in sizes if s != -1)
    if unknown:
        if num_devices % known:
            raise ShardingConfigError(
                f"config.mesh: {known} devices on the fixed axes do not divide the {num_devices} devices"
            )
        sizes[MESH_AXES.index(unknown[0])] = num_devices // known
    if math.prod(sizes) != num_devices:
        raise ShardingConfigError(
            f"config.mesh = {dict(zip(MESH_AXES, sizes))} needs {math.prod(sizes)} devices but {num_devices} "
            f"are visible; set config.mesh.data=-1 to use them all"
        )
    return tuple(sizes)  # type: ignore[return-value]


def make_mesh(mesh_config: ml_collections.ConfigDict, devices: Sequence[Any] | None = None) -> Mesh:
    devices = list(devices) if devices is not None else jax.devices()
    shape = mesh_shape(mesh_config, len(devices))
    return jax.make_mesh(shape, MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES), devices=devices)


def rules_of(config: ml_collections.ConfigDict) -> tuple[tuple[str, Any], ...]:
    rules = config.get("sharding", {}).get("rules", None) if "sharding" in config else None
    return tuple((name, tuple(axes) if isinstance(axes, list) else axes) for name, axes in (rules or DEFAULT_RULES))


def data_parallelism(mesh: Mesh) -> int:
    return math.prod(mesh.shape[a] for a in BATCH_AXES)


def check_batch(batch_size: int, grad_accum_steps: int, mesh: Mesh, field: str = "config.optim.batch_size") -> None:
    """The global batch must split into accumulation steps, processes and data-parallel shards."""
    parallel = data_parallelism(mesh)
    if batch_size % grad_accum_steps:
        raise ShardingConfigError(
            f"{field}={batch_size} is not divisible by config.optim.grad_accum_steps={grad_accum_steps}"
        )
    micro = batch_size // grad_accum_steps
    if micro % parallel:
        raise ShardingConfigError(
            f"{field}={batch_size} gives micro-batches of {micro}, not divisible by the {parallel} data-parallel "
            f"shards (config.mesh.data x config.mesh.fsdp = {mesh.shape['data']} x {mesh.shape['fsdp']})"
        )
    if batch_size % jax.process_count():
        raise ShardingConfigError(f"{field}={batch_size} is not divisible by the {jax.process_count()} processes")


def shardings_of(abstract_boxed: Any, mesh: Mesh, rules: Sequence[tuple[str, Any]]) -> Any:
    """NamedShardings of a tree of logically partitioned (boxed) abstract values; unboxed leaves replicate.

    A dimension that the mesh axes of its rule do not divide is replicated instead (`divisible_spec`): Base's
    200-wide embedding on fsdp=16, say. `indivisible` lists where that happens."""
    shardings, shapes = _requested(abstract_boxed, mesh, rules)

    def even(sharding: NamedSharding, abstract: Any) -> NamedSharding:
        spec = divisible_spec(sharding.spec, abstract.shape, mesh)
        return sharding if spec == sharding.spec else NamedSharding(mesh, spec)

    return jax.tree.map(
        even,
        shardings,
        shapes,
        is_leaf=lambda x: isinstance(x, NamedSharding),
    )


def _requested(abstract_boxed: Any, mesh: Mesh, rules: Sequence[tuple[str, Any]]) -> tuple[Any, Any]:
    """`(the NamedShardings the logical axes and rules ask for, the unboxed abstract values)`."""
    shardings = nn.logical_to_mesh_sharding(nn.get_partition_spec(abstract_boxed), mesh, rules)
    return shardings, unbox(abstract_boxed)


def _axes_size(axes: Any, mesh: Mesh) -> int:
    if axes is None:
        return 1
    return math.prod(mesh.shape[a] for a in ((axes,) if isinstance(axes, str) else axes))


def divisible_spec(spec: PartitionSpec, shape: Sequence[int], mesh: Mesh) -> PartitionSpec:
    """`spec` with every dimension that its mesh axes do not divide evenly left unsharded."""
    return PartitionSpec(*(None if dim % _axes_size(a, mesh) else a for a, dim in zip(spec, shape)))


def indivisible(abstract_boxed: Any, mesh: Mesh, rules: Sequence[tuple[str, Any]]) -> list[tuple[str, tuple, Any]]:
    """`(variable path, shape, the spec its rules asked for)` of every variable `shardings_of` replicates in
    part because a dimension does not divide over its mesh axes."""
    specs, shapes = _requested(abstract_boxed, mesh, rules)
    found = []
    flat_specs = jax.tree_util.tree_leaves_with_path(specs, is_leaf=lambda x: isinstance(x, NamedSharding))
    for (path, sharding), shape in zip(flat_specs, jax.tree.leaves(shapes)):
        if divisible_spec(sharding.spec, shape.shape, mesh) != sharding.spec:
            found.append((jax.tree_util.keystr(path, simple=True, separator="/"), shape.shape, sharding.spec))
    return found


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) dimension over data x fsdp, the rest replicated."""
    return NamedSharding(mesh, PartitionSpec(BATCH_AXES))


def global_batch(local: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """One global array per key from this process's rows (`make_array_from_process_local_data`)."""
    sharding = batch_sharding(mesh)
    out = {}
    for key, value in local.items():
        value = np.asarray(value)
        global_shape = (value.shape[0] * jax.process_count(),) + value.shape[1:]
        out[key] = jax.make_array_from_process_local_data(sharding, value, global_shape)
    return out


def unbox(tree: Any) -> Any:
    """Strips the logical-partitioning boxes without applying sharding constraints (`nn.meta.unbox` applies
    them under a mesh context, which abstract values cannot take)."""

    def strip(x: Any) -> Any:
        if isinstance(x, nn.LogicallyPartitioned):
            return x.unbox(apply_constraint=False)
        return x.unbox() if isinstance(x, nn.meta.AxisMetadata) else x

    return jax.tree.map(strip, tree, is_leaf=lambda x: isinstance(x, nn.meta.AxisMetadata))


def abstract_with_shardings(abstract: Any, shardings: Any) -> Any:
    """`jax.ShapeDtypeStruct`s carrying `shardings`: an Orbax restore target placed on the mesh."""
    return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)
