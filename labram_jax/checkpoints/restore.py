"""Reading and writing the `model` item: onto one device, onto a mesh, or from a conversion."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import orbax.checkpoint as ocp

from labram_jax.checkpoints.layout import META, MODEL, Located, locate
from labram_jax.checkpoints.model_spec import build_module


def build_model(meta: Mapping[str, Any]):
    """The Flax module a checkpoint's variables belong to, rebuilt from its model spec."""
    return build_module(meta["model_spec"])


def restore_model(path: str | os.PathLike[str] | Located, abstract: Any) -> tuple[Any, dict[str, Any]]:
    """`(variables, meta)`: the `model` item restored onto `abstract` (a tree of `jax.ShapeDtypeStruct`,
    with shardings where the caller wants them placed; default: the first local device)."""
    where = locate(path)
    abstract = jax.tree.map(_with_default_sharding, abstract)
    with ocp.CheckpointManager(where.directory) as manager:
        restored = manager.restore(where.step, args=ocp.args.Composite(**{MODEL: ocp.args.StandardRestore(abstract)}))
    return restored[MODEL], where.meta


def _with_default_sharding(x: Any) -> Any:
    if isinstance(x, jax.ShapeDtypeStruct) and getattr(x, "sharding", None) is None:
        device = jax.local_devices()[0]
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=jax.sharding.SingleDeviceSharding(device))
    return x


def restore_on_mesh(
    path: str | os.PathLike[str] | Located, mesh: jax.sharding.Mesh, rules: Sequence[tuple[str, Any]]
) -> tuple[Any, dict[str, Any], Any]:
    """`(variables, meta, module)` of the checkpoint at `path`, each array placed by the sharding rules."""
    from labram_jax.models import factory
    from labram_jax.train.sharding import abstract_with_shardings, shardings_of, unbox

    where = locate(path)
    module = build_model(where.meta)
    abstract = factory.abstract_variables(module)
    target = abstract_with_shardings(unbox(abstract), shardings_of(abstract, mesh, rules))
    variables, meta = restore_model(where, target)
    return variables, meta, module


def write_model(directory: str | os.PathLike[str], variables: Any, meta: Mapping[str, Any], step: int = 0) -> str:
    """Writes a `model` + `meta` checkpoint (conversion, exports) and returns its step directory."""
    directory = os.path.abspath(os.path.expanduser(os.fspath(directory)))
    with ocp.CheckpointManager(directory) as manager:
        manager.save(
            step,
            args=ocp.args.Composite(**{MODEL: ocp.args.StandardSave(variables), META: ocp.args.JsonSave(dict(meta))}),
            force=True,
        )
        manager.wait_until_finished()
    return os.path.join(directory, str(step))


def shape_mismatches(expected: Any, found: Any) -> list[str]:
    """Paths whose shapes differ between two trees of the same structure (or structural differences)."""
    e = {jax.tree_util.keystr(p): x.shape for p, x in jax.tree_util.tree_flatten_with_path(expected)[0]}
    f = {jax.tree_util.keystr(p): x.shape for p, x in jax.tree_util.tree_flatten_with_path(found)[0]}
    out = [f"{k}: missing in checkpoint" for k in e if k not in f]
    out += [f"{k}: not in the model" for k in f if k not in e]
    out += [f"{k}: model {e[k]} vs checkpoint {f[k]}" for k in e if k in f and e[k] != f[k]]
    return out
