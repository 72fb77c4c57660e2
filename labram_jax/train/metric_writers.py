"""Scalar metrics to `<workdir>/metrics.jsonl` and TensorBoard (`<workdir>/tensorboard/`).

Each `write` appends one JSON object `{"step": int, "split": str, **scalars}` and flushes, so the file is
complete up to the last call even if the run is killed. TensorBoard tags are `"<split>/<name>"`.

Non-finite values: JSON has no NaN/Infinity, so `nan`, `inf` and `-inf` are written as `null` (the file
stays valid, strict JSON) and `read_metrics` turns `null` back into `nan`; the sign of an infinity is lost,
which is acceptable since any non-finite metric means the same thing (a diverged or undefined value).
TensorBoard gets no point for them: a single `nan` would wreck the y-axis of a curve.

Resume: the file is opened in append mode, so a resumed run continues the same file, and it re-logs the
steps between its last checkpoint and the crash. `read_metrics` keeps, for each `(split, step)`, only the
last record in the file, i.e. the one of the run that continued. A record replaces, not merges with, an
earlier one of the same `(split, step)`, so log all scalars of one split and step in a single `write`.

Only one process should write (`enabled=False` on the others); a disabled writer touches no file.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import Self

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
_RESERVED = ("step", "split")


class MetricWriter:
    """Appends scalars to `metrics.jsonl` and TensorBoard; a no-op when `enabled` is false."""

    def __init__(self, workdir: str, enabled: bool = True) -> None:
        self.workdir = workdir
        self.enabled = enabled
        self._file: Any = None
        self._tb: Any = None
        if not enabled:
            return
        os.makedirs(workdir, exist_ok=True)
        # Imported here so processes that never write do not pay for tensorboardX's import.
        from tensorboardX import SummaryWriter

        # Held open for the writer's lifetime (closed by `close`); reopening per write would cost a syscall pair.
        self._file = open(os.path.join(workdir, METRICS_FILE), "a", encoding="utf-8")  # noqa: SIM115
        self._tb = SummaryWriter(logdir=os.path.join(workdir, TENSORBOARD_DIR))

    def write(self, step: int, split: str, scalars: Mapping[str, float]) -> None:
        """Log `scalars` of `split` at `step` (non-finite values: JSON `null`, skipped in TensorBoard)."""
        if not self.enabled:
            return
        if self._file is None:
            raise RuntimeError("MetricWriter is closed")
        clash = [name for name in scalars if name in _RESERVED]
        if clash:
            raise ValueError(f"scalar names {clash} clash with the record keys {_RESERVED}")
        step = int(step)
        # float() also accepts numpy and jax scalars, which json cannot encode.
        values = {name: float(value) for name, value in scalars.items()}
        record: dict[str, Any] = {"step": step, "split": split}
        record.update({n: (v if math.isfinite(v) else None) for n, v in values.items()})
        self._file.write(json.dumps(record, allow_nan=False) + "\n")
        self._file.flush()
        for name, value in values.items():
            if math.isfinite(value):
                self._tb.add_scalar(f"{split}/{name}", value, global_step=step)
        self._tb.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_metrics(workdir: str) -> list[dict[str, Any]]:
    """Records of `<workdir>/metrics.jsonl`, the last one per `(split, step)`, sorted by step.

    `null` values come back as `nan`. An unreadable line (a write cut short by a crash) is skipped with
    a warning. Records of the same step keep their order in the file. A missing file gives `[]`.
    """
    path = os.path.join(workdir, METRICS_FILE)
    if not os.path.exists(path):
        return []
    latest: dict[tuple[str, int], tuple[int, dict[str, Any]]] = {}
    with open(path, encoding="utf-8") as f:
        for position, line in enumerate(f):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                warnings.warn(f"{path}:{position + 1}: skipping an unreadable line", stacklevel=2)
                continue
            record = {k: (math.nan if v is None else v) for k, v in record.items()}
            latest[(record["split"], int(record["step"]))] = (position, record)
    ordered = sorted(latest.values(), key=lambda item: (int(item[1]["step"]), item[0]))
    return [record for _, record in ordered]
