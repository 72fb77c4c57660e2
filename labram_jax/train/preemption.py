"""Preemption: SIGTERM (SLURM before a time limit or a requeue, spot and preemptible VMs) or a TPU
maintenance event saves a checkpoint at the next step boundary on every process, then stops the run; the
same command resumes it exactly.

One process: a SIGTERM handler sets a flag the loop reads after each step. Several processes: JAX's
distributed runtime receives the notice (SIGTERM, TPU maintenance) and its preemption sync point makes every
process stop at the same step (Orbax `reached_preemption`); no Python handler is installed there, so that
JAX's own notifier keeps the signal. A second SIGTERM while the checkpoint is written is ignored (the save
completes; Orbax writes each step to a temporary directory and renames it, so even a SIGKILL leaves the last
complete checkpoint intact).
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import jax


class Preempted(RuntimeError):
    """The run stopped at a preemption notice after saving `step`; the message says how to resume."""

    def __init__(self, stage: str, step: int, directory: str, cause: str):
        self.step = step
        super().__init__(
            f"[{stage}] preempted ({cause}) at step {step}: checkpoint saved in {directory}; run the same command "
            "again to resume from it"
        )


class PreemptionWatch:
    """`reached(step, manager)` is True at the step boundary where the run must save and stop."""

    def __init__(self) -> None:
        self.cause: str | None = None
        self._previous: Any = None
        self._installed = jax.process_count() == 1 and threading.current_thread() is threading.main_thread()
        if self._installed:
            self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        if self.cause is not None:
            print("SIGTERM again: ignored while the preemption checkpoint is written", file=sys.stderr, flush=True)
            return
        self.cause = "SIGTERM"

    def reached(self, step: int, manager: Any) -> bool:
        if jax.process_count() > 1:
            if manager.reached_preemption(step):
                self.cause = self.cause or "preemption notice"
                return True
            return False
        return self.cause is not None

    def close(self) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)
            self._installed = False
