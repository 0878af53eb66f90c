"""Map a function over items in input order: in this process, a local process pool or dask.

``scheduler``: None -> ``workers`` local processes (``concurrent.futures``; in this process
when one worker suffices); "local-cluster" -> a dask.distributed LocalCluster of ``workers``
processes; "tcp://HOST:PORT" -> an existing dask.distributed scheduler. ``imap_ordered`` is
the one helper: results come back in input order with at most ``ahead`` items in flight, so
memory stays bounded however many items there are.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from comodo.pipeline.lifetime import die_with_parent
from comodo.pipeline.progress import progress

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def runs_in_process(workers: int, scheduler: str | None, n_items: int) -> bool:
    """Whether ``imap_ordered`` with these arguments runs everything in this process."""
    return scheduler is None and ((workers or default_workers()) == 1 or n_items <= 1)


def chunk_groups(chunks: Sequence[int], workers: int = 0, per_worker: int = 4) -> list[list[int]]:
    """Contiguous groups of chunks, ``per_worker`` per worker: a task opens its store once
    for a whole group instead of once per chunk."""
    n = (workers or default_workers()) * per_worker
    size = max(1, -(-len(chunks) // n))
    return [list(chunks[i : i + size]) for i in range(0, len(chunks), size)]


@contextmanager
def dask_client(scheduler: str, n: int) -> Iterator[Any]:
    """A dask.distributed Client: on a new LocalCluster of ``n`` single-threaded worker
    processes for "local-cluster", else connected to the scheduler at ``scheduler``."""
    from dask.distributed import Client, LocalCluster

    cluster = None
    if scheduler == "local-cluster":
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
    client = Client(cluster if cluster is not None else scheduler)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextmanager
def _submitter(n: int, scheduler: str | None, threads: bool) -> Iterator[Callable[..., Any]]:
    """``submit(fn, item) -> future`` on a fresh local pool (of threads or processes) or a
    dask client. A pool process dies with this one (``die_with_parent``): a killed stage
    leaves no worker reading or resampling behind."""
    if scheduler is None:
        context = multiprocessing.get_context("spawn")
        with ThreadPoolExecutor(n) if threads else ProcessPoolExecutor(
                n, mp_context=context, initializer=die_with_parent) as pool:
            yield pool.submit
        return
    with dask_client(scheduler, n) as client:
        yield lambda fn, item: client.submit(fn, item, pure=False)


def imap_ordered(fn: Callable[[T], R], items: Sequence[T], workers: int = 0,
                 scheduler: str | None = None, ahead: int = 0, threads: bool = False) -> Iterator[R]:
    """``fn(x) for x in items`` in input order, at most ``ahead`` (default 4 per worker)
    submitted and not yet yielded; what is still queued is cancelled when the caller stops.
    ``threads``: a local pool of threads instead of processes, for work that releases the
    GIL (polars, numpy, scipy's filters, file I/O): nothing to start, import or pickle."""
    n = workers or default_workers()
    if runs_in_process(workers, scheduler, len(items)):
        yield from map(fn, items)
        return
    with _submitter(n, scheduler, threads) as submit:
        window: deque[Any] = deque()
        todo = iter(items)
        try:
            for item in todo:
                window.append(submit(fn, item))
                if len(window) >= (ahead or 4 * n):
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        finally:
            for future in window:
                future.cancel()


def map_parallel(fn: Callable[[T], R], items: Sequence[T], workers: int = 0,
                 scheduler: str | None = None, desc: str = "work", unit: str = "item") -> list[R]:
    """``[fn(x) for x in items]`` spread over processes; results in input order."""
    stream = imap_ordered(fn, items, workers, scheduler)
    return list(progress(stream, desc=desc, total=len(items), unit=unit))


def iter_distributed(fn: Callable[[T], R], items: Sequence[T], scheduler: str, workers: int = 0,
                     ahead: int = 0) -> Iterator[R]:
    """``imap_ordered`` on a dask scheduler."""
    return imap_ordered(fn, items, workers, scheduler, ahead)


def map_threads(fn: Callable[[T], R], items: Sequence[T], workers: int = 0, desc: str = "work",
                unit: str = "item") -> list[R]:
    """``[fn(x) for x in items]`` on ``workers`` threads of this process (0: one per core):
    for work spent in file I/O, codecs and numpy copies, which release the GIL."""
    n = workers or default_workers()
    if n == 1 or len(items) <= 1:
        return [fn(x) for x in progress(items, desc=desc, total=len(items), unit=unit)]
    with ThreadPoolExecutor(n) as pool:
        return list(progress(pool.map(fn, items), desc=desc, total=len(items), unit=unit))
