"""Map a function over items on all cores with dask.distributed, in input order.

``scheduler``: None -> a pool of ``workers`` local processes (in-process when one worker
suffices); "local-cluster" -> a dask.distributed LocalCluster sized to the machine;
"tcp://HOST:PORT" -> an existing dask.distributed scheduler. ``iter_parallel`` streams
results back in input order with a bounded number in flight, for stages whose results are
large and consumed one after another (the imu stage appends them to its store).

The local pool is started once per process and kept for later calls: a fresh worker
imports what its tasks need (0.15 s for an imu-stage worker, more for numpy + polars +
zarr), which a stage would otherwise pay on every call (dask's multiprocessing scheduler
starts a new pool per ``compute``; a LocalCluster also moves results over TCP with several
copies, 3x slower on 20 h of IMU here). Workers do not re-run the launching script (a
console script's CLI) unless a task is defined there. While the pool starts, the calling
process works through items from the back of the list. A worker imports with the garbage
collector off and freezes what it imported after its first item. Items travel in batches
so per-task overhead stays small; one progress bar counts items.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import sys
import types
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from comodo.pipeline.progress import progress

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
_POOL: tuple[int, dict[str, str], bool, ProcessPoolExecutor] | None = None
_END: Any = object()


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _apply_batch(fn: Callable[[T], R], batch: Sequence[T]) -> list[R]:
    return [_call(fn, item) for item in batch]


_FIRST_TASK = False  # True in a pool worker until its first item is done


def _worker_init() -> None:
    """A pool worker imports its first task's modules with the cyclic garbage collector
    off; once that task is done, everything still alive (modules, caches) is frozen out
    of later collections (``gc.freeze``): full collections then skip the imported
    libraries, and so does the one at the worker's exit (0.17 s per worker after the imu
    stage's imports)."""
    global _FIRST_TASK
    gc.disable()
    _FIRST_TASK = True


def _call(fn: Callable[[T], R], item: T) -> R:
    global _FIRST_TASK
    try:
        return fn(item)
    finally:
        if _FIRST_TASK:
            _FIRST_TASK = False
            gc.freeze()
            gc.enable()


def _batches(items: Sequence[T], n: int) -> list[list[T]]:
    size = max(1, -(-len(items) // n))
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def chunk_groups(chunks: Sequence[int], workers: int = 0, per_worker: int = 4) -> list[list[int]]:
    """Contiguous groups of chunks, ``per_worker`` per worker: a task opens its store once
    for a whole group instead of once per chunk."""
    return _batches(chunks, (workers or default_workers()) * per_worker)


def runs_in_process(workers: int, scheduler: str | None, n_items: int) -> bool:
    """Whether ``map_parallel`` with these arguments runs everything in this process."""
    return scheduler is None and ((workers or default_workers()) == 1 or n_items <= 1)


def map_parallel(fn: Callable[[T], R], items: Sequence[T], workers: int = 0,
                 scheduler: str | None = None, desc: str = "work", unit: str = "item") -> list[R]:
    """``[fn(x) for x in items]`` spread over processes; results in input order."""
    n = workers or default_workers()
    if runs_in_process(workers, scheduler, len(items)):
        return [fn(x) for x in progress(items, desc=desc, total=len(items), unit=unit)]
    if scheduler is None:
        return _map_multiprocessing(fn, items, n, desc, unit)
    return _map_distributed(fn, items, n, scheduler, desc, unit)


def map_threads(fn: Callable[[T], R], items: Sequence[T], workers: int = 0, desc: str = "work",
                unit: str = "item") -> list[R]:
    """``[fn(x) for x in items]`` on ``workers`` threads of this process (0: one per core),
    results in input order: for work that spends its time in file I/O and numpy copies,
    which release the GIL. Nothing is pickled and no process starts (a spawned worker's
    imports cost more than the windows stage's work on 20 h of IMU)."""
    n = workers or default_workers()
    if n == 1 or len(items) <= 1:
        return [fn(x) for x in progress(items, desc=desc, total=len(items), unit=unit)]
    bar = progress(range(len(items)), desc=desc, total=len(items), unit=unit)
    with ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(fn, x) for x in items]
        try:
            results = []
            for future in futures:
                results.append(future.result())
                next(bar, None)
            return results
        finally:
            for future in futures:
                future.cancel()


def iter_parallel(fn: Callable[[T], R], items: Sequence[T], workers: int = 0, ahead: int = 0,
                  desc: str = "work", unit: str = "item") -> Iterator[R]:
    """``fn(x) for x in items`` on the local pool, yielded in input order, with at most
    ``ahead`` (default 8 per worker) items submitted and not yet yielded: the results held
    here stay bounded whatever the number of items. Until the first worker result is back
    (a fresh pool is starting), this process takes the latest items that no worker has
    started; after that it only consumes, leaving the cores to the workers."""
    n = workers or default_workers()
    if runs_in_process(workers, None, len(items)):
        yield from (fn(x) for x in progress(items, desc=desc, total=len(items), unit=unit))
        return
    pool = local_pool(n, _in_main(fn, items))
    limit = max(1, ahead or 8 * n)
    bar = progress(range(len(items)), desc=desc, total=len(items), unit=unit)
    window: deque[_Slot[T, R]] = deque()
    todo: Iterator[Any] = iter(items)
    starting = True  # until a worker has finished an item
    try:
        while True:
            while len(window) < limit and (item := next(todo, _END)) is not _END:
                window.append(_Slot(item, pool.submit(_call, fn, item)))
            if not window:
                return
            head = window[0]
            while not head.ready():
                starting = starting and not any(slot.future.done() for slot in window)
                if not (starting and _take_one(fn, window)):
                    wait([head.future], return_when=FIRST_COMPLETED)
            window.popleft()
            next(bar, None)
            yield head.result()
    except BrokenProcessPool:
        shutdown_local_pool()  # a worker died (killed, out of memory): the next call starts afresh
        raise
    finally:
        for slot in window:
            slot.future.cancel()


class _Slot(Generic[T, R]):
    """One item in flight: its future, or its result once this process computed it."""

    def __init__(self, item: T, future: Future):
        self.item, self.future = item, future
        self.local: list[R] = []

    def ready(self) -> bool:
        return bool(self.local) or self.future.done()

    def result(self) -> R:
        return self.local[0] if self.local else self.future.result()


def _take_one(fn: Callable[[T], R], window: deque[_Slot[T, R]]) -> bool:
    """Compute the latest item in ``window`` that no worker has started; False if none."""
    for slot in reversed(window):
        if not slot.local and slot.future.cancel():
            slot.local.append(fn(slot.item))
            return True
    return False


def local_pool(n: int, with_main: bool = False) -> ProcessPoolExecutor:
    """The process's pool of ``n`` spawned workers, started on first use and kept while
    ``n``, ``with_main`` and the environment (credentials, endpoints, thread limits) stay
    the same. Workers run the parent's ``__main__`` first only ``with_main`` (for tasks
    defined there): otherwise each would import the console script's CLI or the launching
    script's modules before its first task."""
    global _POOL
    env = dict(os.environ)
    if _POOL is not None and _POOL[:3] == (n, env, with_main):
        return _POOL[3]
    shutdown_local_pool()
    pool = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init)
    with _worker_env(max(1, default_workers() // n)), _main_kept(with_main):
        for _ in range(n):  # spawn every worker now, while the limits are in the environment
            pool.submit(os.getpid)
    _POOL = (n, env, with_main, pool)
    return pool


def _in_main(fn: Callable[..., Any], items: Sequence[Any]) -> bool:
    """Whether the task or its items (the first one's type) are defined in ``__main__``."""
    return "__main__" in (getattr(fn, "__module__", None), type(items[0]).__module__ if items else None)


@contextmanager
def _main_kept(keep: bool) -> Iterator[None]:
    """Unless ``keep``, ``__main__`` is an empty module while workers are spawned, so the
    spawn start method tells them no main module to re-run."""
    if keep:
        yield
        return
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


# libraries that start a thread per core on import: a pool of n workers on c cores gives
# each c / n (polars' CSV reader on 2 threads in each of 2 workers spent a third more CPU)
THREAD_LIMITS = ("POLARS_MAX_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# glibc keeps freed memory for the next allocation instead of unmapping it: a worker
# allocating ~50 MB of arrays per recording otherwise faults every page in again (a third of
# its CPU was kernel time; with these, per-recording page faults fell from ~400 to ~90)
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


@contextmanager
def _worker_env(threads: int) -> Iterator[None]:
    """Set the thread-count and malloc variables that the user has not set, for processes
    spawned inside the block; this process's environment is left as it was."""
    wanted = dict.fromkeys(THREAD_LIMITS, str(threads)) | MALLOC_ENV
    added = [name for name in wanted if name not in os.environ]
    os.environ.update({name: wanted[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def shutdown_local_pool() -> None:
    global _POOL
    if _POOL is not None:
        _POOL[3].shutdown(wait=True, cancel_futures=True)
        _POOL = None


def _map_multiprocessing(fn: Callable[[T], R], items: Sequence[T], n: int, desc: str, unit: str
                         ) -> list[R]:
    """Batches go to the local pool in order; meanwhile this process takes batches that no
    worker has started yet from the back (while a fresh pool is still starting, or when it
    is short of hands), until workers and caller meet."""
    batches = _batches(items, n * 8)
    pool = local_pool(n, _in_main(fn, items))
    bar = progress(range(len(items)), desc=desc, total=len(items), unit=unit)
    results: list[list[R] | None] = [None] * len(batches)
    futures = []
    try:
        futures = [pool.submit(_apply_batch, fn, b) for b in batches]
        for i in reversed(range(len(batches))):
            if not futures[i].cancel():
                break
            results[i] = _apply_batch(fn, batches[i])
            for _ in batches[i]:
                next(bar, None)
        pending = {f: i for i, f in enumerate(futures) if results[i] is None}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                i = pending.pop(future)
                results[i] = future.result()
                for _ in batches[i]:
                    next(bar, None)
    except BrokenProcessPool:
        shutdown_local_pool()  # a worker died (killed, out of memory): the next call starts afresh
        raise
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return [r for batch in results for r in batch]  # type: ignore[union-attr]


@contextmanager
def dask_client(scheduler: str, n: int) -> Iterator[object]:
    """A dask.distributed Client: on a new LocalCluster of ``n`` single-threaded worker
    processes for "local-cluster", else connected to the scheduler at ``scheduler``."""
    from dask.distributed import Client, LocalCluster

    cluster = None
    if scheduler == "local-cluster":
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
    client = Client(cluster if cluster is not None else scheduler)  # type: ignore[arg-type]
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def iter_distributed(fn: Callable[[T], R], items: Sequence[T], scheduler: str, workers: int = 0,
                     ahead: int = 0) -> Iterator[R]:
    """``fn(x) for x in items`` on a dask cluster, yielded in input order as they finish,
    with at most ``ahead`` (default 4 per worker) tasks submitted and not yet yielded."""
    n = workers or default_workers()
    with dask_client(scheduler, n) as client:
        limit = ahead or 4 * n
        futures: list = []
        for item in items:
            futures.append(client.submit(fn, item, pure=False))  # type: ignore[attr-defined]
            if len(futures) >= limit:
                yield futures.pop(0).result()
        while futures:
            yield futures.pop(0).result()


def _map_distributed(fn: Callable[[T], R], items: Sequence[T], n: int, scheduler: str, desc: str,
                     unit: str) -> list[R]:
    from dask.distributed import as_completed

    with dask_client(scheduler, n) as client:
        batches = _batches(items, n * 4)
        futures = [client.submit(_apply_batch, fn, b, pure=False) for b in batches]  # type: ignore[attr-defined]
        position = {f.key: i for i, f in enumerate(futures)}
        results: list[list[R] | None] = [None] * len(batches)
        bar = progress(range(len(items)), desc=desc, total=len(items), unit=unit)
        for future in as_completed(futures):
            i = position[future.key]
            results[i] = future.result()
            for _ in batches[i]:
                next(bar, None)
        return [r for batch in results for r in batch]  # type: ignore[union-attr]
