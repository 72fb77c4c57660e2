"""When the loop logs, validates and saves: every cadence declared once, in steps."""

from __future__ import annotations

import dataclasses

import ml_collections


@dataclasses.dataclass(frozen=True)
class Cadences:
    """`due(kind, step)` for `log`, `evaluate` and `checkpoint`.

    Logging and checkpoints also happen at the last step, so a run always ends with its final metrics and
    a resumable save; validation with `eval.every_epochs = 0` never runs during training (the final
    evaluation of every split happens after it).
    """

    total_steps: int
    log: int
    evaluate: int
    checkpoint: int

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict, steps_per_epoch: int, total_steps: int) -> Cadences:
        every_epochs = config.eval.every_epochs
        return cls(
            total_steps=total_steps,
            log=max(1, config.log.every_steps),
            evaluate=int(every_epochs * steps_per_epoch) if every_epochs else 0,
            # 0 = once per epoch
            checkpoint=config.checkpoint.every_steps or steps_per_epoch,
        )

    def due(self, kind: str, step: int) -> bool:
        every = getattr(self, kind)
        if kind == "evaluate" and not every:
            return False
        return step == self.total_steps or (every > 0 and step % every == 0)
