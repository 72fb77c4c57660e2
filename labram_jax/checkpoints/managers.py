"""Orbax managers of a stage's workdir: the latest checkpoints (resume) and the best ones (selection).

Layout and items are defined in `labram_jax.checkpoints.layout`. `checkpoints/` keeps the last
`config.checkpoint.keep` steps with everything a resume needs (model, optimiser, step, rng, data iterator);
`best/` keeps the `config.checkpoint.keep_best` best steps by the monitored validation metric (model and
meta only). Saves are asynchronous; Orbax writes each step to a temporary directory and renames it when
complete, so a run killed mid-save resumes from the previous complete step.
"""

from __future__ import annotations

import math
import os
from typing import Any

import grain
import ml_collections
import orbax.checkpoint as ocp

from labram_jax.checkpoints import layout
from labram_jax.train.state import TrainState


def _model_item(state: TrainState) -> dict[str, Any]:
    return {"params": state.params, **state.extra}


def _train_item(state: TrainState) -> dict[str, Any]:
    return {"step": state.step, "opt_state": state.opt_state, "rng": state.rng}


class RunCheckpoints:
    def __init__(self, workdir: str, config: ml_collections.ConfigDict, monitor: tuple[str, str] | None):
        ck = config.checkpoint
        self.monitor = monitor
        self.latest = ocp.CheckpointManager(
            os.path.join(workdir, layout.LATEST_DIR),
            options=ocp.CheckpointManagerOptions(
                max_to_keep=ck.keep, create=True, enable_async_checkpointing=ck.async_save
            ),
        )
        self.best = None
        if monitor is not None and ck.keep_best > 0:
            name, mode = monitor
            self.best = ocp.CheckpointManager(
                os.path.join(workdir, layout.BEST_DIR),
                options=ocp.CheckpointManagerOptions(
                    max_to_keep=ck.keep_best,
                    create=True,
                    enable_async_checkpointing=ck.async_save,
                    best_fn=lambda metrics: metrics[name],
                    best_mode=mode,
                ),
            )

    def latest_step(self) -> int | None:
        return self.latest.latest_step()

    def save(self, state: TrainState, step: int, data_iterator: Any, meta: dict[str, Any]) -> None:
        self.latest.save(
            step,
            args=ocp.args.Composite(
                **{
                    layout.MODEL: ocp.args.StandardSave(_model_item(state)),
                    layout.TRAIN: ocp.args.StandardSave(_train_item(state)),
                    layout.DATA: grain.checkpoint.CheckpointSave(data_iterator),
                    layout.META: ocp.args.JsonSave(meta),
                }
            ),
            force=True,
        )

    def save_best(self, state: TrainState, step: int, meta: dict[str, Any], value: float) -> bool:
        """Offers `step` to the best manager; non-finite values are never "best"."""
        if self.best is None or value is None or not math.isfinite(value):
            return False
        self.best.save(
            step,
            args=ocp.args.Composite(
                **{
                    layout.MODEL: ocp.args.StandardSave(_model_item(state)),
                    layout.META: ocp.args.JsonSave(meta),
                }
            ),
            metrics={self.monitor[0]: value},
            force=True,
        )
        return True

    def restore(self, abstract: TrainState, data_iterator: Any, step: int | None = None) -> TrainState:
        """The state (placed as `abstract`'s shardings) and the data iterator's position at `step`."""
        step = self.latest.latest_step() if step is None else step
        restored = self.latest.restore(
            step,
            args=ocp.args.Composite(
                **{
                    layout.MODEL: ocp.args.StandardRestore(_model_item(abstract)),
                    layout.TRAIN: ocp.args.StandardRestore(_train_item(abstract)),
                    layout.DATA: grain.checkpoint.CheckpointRestore(data_iterator),
                }
            ),
        )
        model, train = restored[layout.MODEL], restored[layout.TRAIN]
        extra = {k: v for k, v in model.items() if k != "params"}
        return TrainState(
            step=train["step"], params=model["params"], opt_state=train["opt_state"], extra=extra, rng=train["rng"]
        )

    def restore_best_model(self, abstract: TrainState) -> tuple[int, dict[str, Any]] | None:
        """`(step, {"params", ...})` of the best checkpoint, or None when there is none."""
        if self.best is None:
            return None
        self.best.wait_until_finished()
        step = self.best.best_step()
        if step is None:
            return None
        restored = self.best.restore(
            step, args=ocp.args.Composite(**{layout.MODEL: ocp.args.StandardRestore(_model_item(abstract))})
        )
        return step, restored[layout.MODEL]

    def wait(self) -> None:
        self.latest.wait_until_finished()
        if self.best is not None:
            self.best.wait_until_finished()

    def close(self) -> None:
        self.latest.close()
        if self.best is not None:
            self.best.close()
