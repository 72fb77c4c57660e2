"""Checkpoints: the on-disk layout (`layout`), the versioned model spec in every checkpoint's meta
(`model_spec`), the Orbax managers of a training run (`managers`) and restoring models (`restore`).

    from labram_jax import checkpoints
    where = checkpoints.locate(path)            # workdir, manager dir or step dir -> one step, meta read once
    module = checkpoints.build_model(where.meta)
    variables, meta = checkpoints.restore_model(where, abstract)

`managers` (grain, the train state) is imported where a training run needs it, not here.
"""

from labram_jax.checkpoints.layout import (
    BEST_DIR,
    DATA,
    LATEST_DIR,
    META,
    MODEL,
    TRAIN,
    Located,
    best_step,
    json_default,
    locate,
    read_meta,
    resolve,
)
from labram_jax.checkpoints.model_spec import (
    FORMAT,
    KINDS,
    CheckpointError,
    backbone_params,
    make_meta,
    meta_for_spec,
    require_kind,
    spec_from_config,
    task_summary,
    upgrade_meta,
)
from labram_jax.checkpoints.restore import (
    build_model,
    restore_model,
    restore_on_mesh,
    shape_mismatches,
    write_model,
)

__all__ = [
    "BEST_DIR", "DATA", "FORMAT", "KINDS", "LATEST_DIR", "META", "MODEL", "TRAIN", "CheckpointError", "Located",
    "backbone_params", "best_step", "build_model", "json_default", "locate", "make_meta", "meta_for_spec", "read_meta",
    "require_kind", "resolve", "restore_model", "restore_on_mesh", "shape_mismatches", "spec_from_config",
    "task_summary", "upgrade_meta", "write_model",
]  # fmt: skip
