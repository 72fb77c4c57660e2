"""The loop's cadences: which steps log, validate and save."""

import ml_collections

from labram_jax.train.cadence import Cadences


def _config(log=3, every_epochs=0.5, every_steps=0):
    return ml_collections.ConfigDict(
        {
            "log": {"every_steps": log},
            "eval": {"every_epochs": every_epochs},
            "checkpoint": {"every_steps": every_steps},
        }
    )


def _steps(cadence: Cadences, kind: str) -> list[int]:
    return [s for s in range(1, cadence.total_steps + 1) if cadence.due(kind, s)]


def test_every_cadence_counts_in_steps_and_ends_at_the_last_step():
    cadence = Cadences.from_config(_config(), steps_per_epoch=4, total_steps=10)
    assert _steps(cadence, "log") == [3, 6, 9, 10]
    assert _steps(cadence, "evaluate") == [2, 4, 6, 8, 10]  # half an epoch of 4 steps
    assert _steps(cadence, "checkpoint") == [4, 8, 10]  # every_steps 0: once per epoch


def test_no_validation_during_training_when_every_epochs_is_zero():
    cadence = Cadences.from_config(_config(log=0, every_epochs=0, every_steps=5), steps_per_epoch=4, total_steps=10)
    assert _steps(cadence, "evaluate") == []
    assert _steps(cadence, "log") == list(range(1, 11))  # every_steps 0 logs every step
    assert _steps(cadence, "checkpoint") == [5, 10]
