"""Where a checkpoint lives on disk and how a user's path is resolved to one step: `locate`.

A checkpoint is one step directory of an Orbax `CheckpointManager`, with these items:

| item    | written by            | content                                                                   |
|---------|-----------------------|---------------------------------------------------------------------------|
| `model` | training, conversion  | Flax variables, unboxed: `params` (+ `quantizer` for a tokenizer)         |
| `meta`  | training, conversion  | JSON: `format`, `kind`, `model_spec` (rebuilds the module), `step`, ...    |
| `train` | training only         | optimiser state, step, rng (resume)                                        |
| `data`  | training only         | the grain iterator state (resume)                                          |

A stage's workdir holds two managers: `checkpoints/` (latest N, everything needed to resume) and `best/`
(best N by the monitored validation metric; `model` and `meta` only). A converted checkpoint is a manager
directory with a single step 0. `locate` accepts any of these paths.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np

from labram_jax.checkpoints.model_spec import CheckpointError, upgrade_meta

MODEL, META, TRAIN, DATA = "model", "meta", "train", "data"
LATEST_DIR, BEST_DIR = "checkpoints", "best"


@dataclasses.dataclass(frozen=True)
class Located:
    """One checkpoint step: its manager directory, its step and its `meta` (in the current format)."""

    directory: str
    step: int
    meta: dict[str, Any]

    @property
    def path(self) -> str:
        return os.path.join(self.directory, str(self.step))


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


def locate(path: str | os.PathLike[str] | Located) -> Located:
    """The checkpoint `path` means, resolved once, with its `meta` read (no arrays) and brought to the
    current format (checkpoints of every earlier format load)."""
    if isinstance(path, Located):
        return path
    directory, step = resolve(path)
    meta = upgrade_meta(_read_json_item(os.path.join(directory, str(step))), where=f"{directory}/{step}")
    return Located(directory, step, meta)


def read_meta(path: str | os.PathLike[str] | Located) -> dict[str, Any]:
    """The `meta` item of the checkpoint `path` resolves to, in the current format."""
    return locate(path).meta
