"""Map a function over items on all cores with dask.distributed, in input order.

``scheduler``: None -> a LocalCluster sized to the machine (or in-process when one worker
suffices); "tcp://HOST:PORT" -> an existing dask scheduler. Items travel in batches so
per-task overhead stays small; one progress bar counts finished items.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import TypeVar

from comodo.pipeline.progress import progress

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _apply_batch(fn: Callable[[T], R], batch: Sequence[T]) -> list[R]:
    return [fn(item) for item in batch]


def _batches(items: Sequence[T], n: int) -> list[list[T]]:
    size = max(1, -(-len(items) // n))
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def map_parallel(fn: Callable[[T], R], items: Sequence[T], workers: int = 0,
                 scheduler: str | None = None, desc: str = "work", unit: str = "item") -> list[R]:
    """``[fn(x) for x in items]`` spread over processes; results in input order."""
    n = workers or default_workers()
    if scheduler is None and (n == 1 or len(items) <= 1):
        return [fn(x) for x in progress(items, desc=desc, total=len(items), unit=unit)]
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
    client = Client(cluster if cluster is not None else scheduler)
    try:
        batches = _batches(items, n * 4)
        futures = [client.submit(_apply_batch, fn, b, pure=False) for b in batches]
        position = {f.key: i for i, f in enumerate(futures)}
        results: list[list[R] | None] = [None] * len(batches)
        bar = progress(range(len(items)), desc=desc, total=len(items), unit=unit)
        for future in as_completed(futures):
            i = position[future.key]
            results[i] = future.result()
            for _ in batches[i]:
                next(bar, None)
        return [r for batch in results for r in batch]  # type: ignore[union-attr]
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
