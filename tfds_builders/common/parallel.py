"""An ordered, bounded parallel map over worker processes.

Builders process one recording per task. Results come back in submission order (so reports and logs are
deterministic) and at most `max_in_flight` tasks are submitted ahead of the consumer, so memory holds a
few recordings at a time whatever the corpus size. Workers are spawned, not forked: the parent may have
initialised threaded libraries (JAX, TFDS) that must not be forked.
"""

from __future__ import annotations

import collections
import concurrent.futures
import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def make_executor(workers: int) -> concurrent.futures.ProcessPoolExecutor | None:
    """A spawn-based process pool, or None for `workers <= 1` (run in this process)."""
    if workers <= 1:
        return None
    return concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def ordered_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    executor: concurrent.futures.Executor | None,
    max_in_flight: int | None = None,
) -> Iterator[R]:
    """Yields `fn(item)` for each item, in order, running up to `max_in_flight` items concurrently.

    `fn` must be a picklable module-level function when `executor` is a process pool. With no executor the
    items run one by one in this process.
    """
    if executor is None:
        for item in items:
            yield fn(item)
        return
    limit = max_in_flight or 2 * getattr(executor, "_max_workers", 2)
    pending: collections.deque[concurrent.futures.Future[R]] = collections.deque()
    iterator = iter(items)
    try:
        for item in iterator:
            pending.append(executor.submit(fn, item))
            if len(pending) >= limit:
                break
        while pending:
            result = pending.popleft().result()
            for item in iterator:
                pending.append(executor.submit(fn, item))
                break
            yield result
    finally:
        for future in pending:  # the consumer stopped early (strict mode, interrupt)
            future.cancel()
