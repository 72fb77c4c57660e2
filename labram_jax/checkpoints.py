"""The on-disk layout of every checkpoint: trained here, or converted from the official PyTorch weights.

A checkpoint is one step directory of an Orbax `CheckpointManager`, with these items:

| item    | written by            | content                                                                   |
|---------|-----------------------|---------------------------------------------------------------------------|
| `model` | training, conversion  | Flax variables, unboxed: `params` (+ `quantizer` for a tokenizer)         |
| `meta`  | training, conversion  | JSON: `format`, `kind`, `config` (enough to rebuild the model), `step`, ... |
| `train` | training only         | optimiser state, step, rng (resume)                                        |
| `data`  | training only         | the grain iterator state (resume)                                          |

`kind` is `tokenizer` (VQ-NSP), `pretrain` (masked EEG model, `LaBraMPretrain`) or `finetune`
(`LaBraMClassifier` with `meta["num_outputs"]` outputs). `meta["config"]` is the training config as a dict;
its `model` (and for a tokenizer its `tokenizer`) section rebuilds the module through `models.factory`.

A stage's workdir holds two managers: `checkpoints/` (latest N, everything needed to resume) and `best/`
(best N by the monitored validation metric; `model` and `meta` only). A converted checkpoint is a manager
directory with a single step 0. `resolve` accepts any of these paths.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

FORMAT = "labram_jax.checkpoint/1"
MODEL, META, TRAIN, DATA = "model", "meta", "train", "data"
KINDS = ("tokenizer", "pretrain", "finetune")
LATEST_DIR, BEST_DIR = "checkpoints", "best"


class CheckpointError(ValueError):
    """A path that is not a checkpoint, or a checkpoint of the wrong kind for the request."""


def make_meta(
    kind: str, config: ml_collections.ConfigDict | Mapping[str, Any], step: int, **extra: Any
) -> dict[str, Any]:
    """The `meta` item: what the checkpoint holds and the config that rebuilds its model."""
    if kind not in KINDS:
        raise ValueError(f"checkpoint kind {kind!r} is not one of {KINDS}")
    cfg = config.to_dict() if isinstance(config, ml_collections.ConfigDict) else dict(config)
    return json.loads(
        json.dumps({"format": FORMAT, "kind": kind, "config": cfg, "step": int(step), **extra}, default=json_default)
    )


def json_default(x: Any) -> Any:
    """`json.dump(..., default=json_default)`: numpy scalars and arrays, sets; anything else as text."""
    if isinstance(x, (np.integer, np.floating, np.bool_)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (tuple, set)):
        return list(x)
    return str(x)


def _steps(directory: str) -> list[int]:
    if not os.path.isdir(directory):
        return []
    return sorted(
        int(name)
        for name in os.listdir(directory)
        if name.isdigit() and os.path.isdir(os.path.join(directory, name, META))
    )


def _read_json_item(step_dir: str) -> dict[str, Any]:
    item = os.path.join(step_dir, META)
    for name in ("metadata", "meta.json"):
        path = os.path.join(item, name)
        if os.path.isfile(path):
            with open(path) as f:
                return json.load(f)
    files = [f for f in os.listdir(item) if not f.startswith("_")] if os.path.isdir(item) else []
    raise CheckpointError(f"{step_dir}: the `meta` item has no readable JSON (found {files})")


def resolve(path: str | os.PathLike[str]) -> tuple[str, int]:
    """`(manager directory, step)` of the checkpoint a user means by `path`.

    `path` may be a stage workdir (its best checkpoint when it has one, else its latest), a manager
    directory (its latest step, or the best one for a `best/` manager), or one step directory.
    """
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint path {path} does not exist")
    if os.path.isdir(os.path.join(path, META)) and os.path.basename(path).isdigit():
        return os.path.dirname(path), int(os.path.basename(path))
    for sub in (BEST_DIR, LATEST_DIR):
        if _steps(os.path.join(path, sub)):
            return resolve(os.path.join(path, sub))
    steps = _steps(path)
    if not steps:
        raise CheckpointError(
            f"{path} holds no labram_jax checkpoint: expected a stage workdir (with `{BEST_DIR}/` or "
            f"`{LATEST_DIR}/`), an Orbax manager directory with numbered steps, or one step directory. "
            "Official PyTorch weights must be converted first: python -m labram_jax.convert --checkpoint "
            "FILE.pth --out DIR"
        )
    if os.path.basename(path) == BEST_DIR:
        return path, best_step(path)
    return path, steps[-1]


def best_step(directory: str) -> int:
    """The step with the best `meta["monitor_value"]` (direction `meta["monitor_mode"]`) in a manager dir."""
    scored = []
    for step in _steps(directory):
        meta = _read_json_item(os.path.join(directory, str(step)))
        if meta.get("monitor_value") is not None:
            sign = -1.0 if meta.get("monitor_mode", "max") == "max" else 1.0
            scored.append((sign * float(meta["monitor_value"]), -step, step))
    if not scored:
        return _steps(directory)[-1]
    return min(scored)[2]


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The `meta` item of the checkpoint `path` resolves to (no arrays are read)."""
    directory, step = resolve(path)
    meta = _read_json_item(os.path.join(directory, str(step)))
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{directory}/{step}: unknown checkpoint format {meta.get('format')!r}; this version reads {FORMAT!r}"
        )
    return meta


def model_config(meta: Mapping[str, Any]) -> ml_collections.ConfigDict:
    """The training config stored in a checkpoint, as a ConfigDict."""
    return ml_collections.ConfigDict(meta["config"])


def restore_model(path: str | os.PathLike[str], abstract: Any) -> tuple[Any, dict[str, Any]]:
    """`(variables, meta)`: the `model` item restored onto `abstract` (a tree of `jax.ShapeDtypeStruct`,
    with shardings where the caller wants them placed; default: the first local device)."""
    directory, step = resolve(path)
    meta = read_meta(os.path.join(directory, str(step)))
    abstract = jax.tree.map(_with_default_sharding, abstract)
    with ocp.CheckpointManager(directory) as manager:
        restored = manager.restore(step, args=ocp.args.Composite(**{MODEL: ocp.args.StandardRestore(abstract)}))
    return restored[MODEL], meta


def _with_default_sharding(x: Any) -> Any:
    if isinstance(x, jax.ShapeDtypeStruct) and getattr(x, "sharding", None) is None:
        device = jax.local_devices()[0]
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=jax.sharding.SingleDeviceSharding(device))
    return x


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


def build_model(meta: Mapping[str, Any]):
    """The Flax module a checkpoint's variables belong to, rebuilt from its `meta`."""
    from labram_jax.models import (
        factory,  # models import jax-heavy modules; keep this module light
    )

    config = model_config(meta)
    kind = meta["kind"]
    if kind == "tokenizer":
        return factory.tokenizer_model(config)
    if kind == "pretrain":
        return factory.pretrain_model(config)
    if kind == "finetune":
        return factory.classifier_model(config, int(meta["num_outputs"]))
    raise CheckpointError(f"unknown checkpoint kind {kind!r}; expected one of {KINDS}")


def backbone_params(params: Any, kind: str) -> Any:
    """The neural Transformer inside a checkpoint's params: `student.backbone` of a pre-training model
    (ref. §6.2: only `student.` weights are kept), `backbone` of a fine-tuned one."""
    if kind == "pretrain":
        return params["student"]["backbone"]
    if kind == "finetune":
        return params["backbone"]
    raise CheckpointError(f"a {kind!r} checkpoint holds no neural Transformer backbone")


def require_kind(meta: Mapping[str, Any], path: Any, *kinds: str, purpose: str = "") -> None:
    """Raises a `CheckpointError` naming the path and the kinds accepted when `meta["kind"]` is not one."""
    if meta.get("kind") not in kinds:
        raise CheckpointError(
            f"{path} is a {meta.get('kind')!r} checkpoint; {purpose or 'this'} needs "
            f"{' or '.join(repr(k) for k in kinds)}"
        )
