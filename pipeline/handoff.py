"""Large arrays from pool workers to the calling process through files in memory.

Sending a 30-minute recording's 8.6 MB of resampled rows through the process pool's pipe
stalled its worker about 25 ms (a third of its compute) while the caller drained the pipe
64 KB at a time. Instead a worker writes the rows to a file in a temporary folder (in
``/dev/shm`` when it has room, else the system's temporary folder) and returns only the
path; the caller reads the file (into one reused buffer, or straight into the store
appender's buffer: ``Reader.opened``) and at once moves it to the
folder's ``free/`` pool (at most ``KEEP_FREE`` files there, the rest deleted), from which
the next ``write`` takes it over and overwrites it: its memory pages are reused, not freed
and faulted in again (on this VM a fresh page costs more than the copy into it). The folder
holds only what is in flight plus the pool. A folder left by a killed stage is removed by
the next one (in ``/dev/shm`` it would hold memory until a reboot).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import numpy as np

from comodo.stores import fs
from comodo.stores.errors import InputDataError

log = logging.getLogger(__name__)

PREFIX = "comodo-handoff-"
SHM = "/dev/shm"
SHM_MIN_FREE = 2 << 30  # use /dev/shm only with this much room
FREE = "free"  # read files waiting to be overwritten
KEEP_FREE = 8


@contextmanager
def folder() -> Iterator[str]:
    """A fresh hand-over folder, removed (with anything left in it) on exit."""
    use_shm = os.path.isdir(SHM) and os.access(SHM, os.W_OK) and shutil.disk_usage(SHM).free > SHM_MIN_FREE
    base = SHM if use_shm else tempfile.gettempdir()
    remove_orphans(base)
    path = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base)
    os.mkdir(os.path.join(path, FREE))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def remove_orphans(base: str) -> int:
    """Delete hand-over folders in ``base`` whose process is gone; return how many."""
    removed = 0
    for name in os.listdir(base):
        pid = name[len(PREFIX):].split("-", 1)[0]
        if name.startswith(PREFIX) and pid.isdigit() and not fs.pid_alive(int(pid)):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
            log.info("removed %s, left by a killed stage", os.path.join(base, name))
            removed += 1
    return removed


def write(path: str, arrays: list[np.ndarray]) -> None:
    """Write the arrays' bytes end to end to ``path`` (in a ``folder()``), over a file
    taken from its free pool when there is one."""
    free = os.path.join(os.path.dirname(path), FREE)
    for name in sorted(os.listdir(free)) if os.path.isdir(free) else []:
        try:
            os.rename(os.path.join(free, name), path)  # atomic: one writer gets each file
            break
        except FileNotFoundError:
            continue  # another worker took it
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        size = sum(fs.write_fully(fd, np.ascontiguousarray(array)) for array in arrays)
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


class Reader:
    """Reads hand-over files into one reused buffer: no fresh memory is touched per file
    (first-touch page faults cost more than the copy on a VM). A returned array is valid
    until the next ``read``."""

    def __init__(self) -> None:
        self.buffer = np.empty(0, np.uint8)

    def read(self, path: str, n_rows: int, n_channels: int) -> np.ndarray:
        """(n_rows, n_channels) float32 from ``path``, which then goes to the free pool."""
        n_bytes = 4 * n_rows * n_channels
        if len(self.buffer) < n_bytes:
            self.buffer = np.empty(n_bytes, np.uint8)
        with self.opened(path, n_rows, n_channels) as fh:
            fs.read_fully(fh, memoryview(self.buffer)[:n_bytes])  # the size was checked
        return self.buffer[:n_bytes].view(np.float32).reshape(n_rows, n_channels)

    @contextmanager
    def opened(self, path: str, n_rows: int, n_channels: int) -> Iterator[BinaryIO]:
        """``open``, then ``close`` on exit (a file of the wrong size goes too)."""
        fh = self.open(path, n_rows, n_channels)
        try:
            yield fh
        finally:
            self.close(path, fh)

    def open(self, path: str, n_rows: int, n_channels: int) -> BinaryIO:
        """``path`` opened for reading (unbuffered) once it is known to hold ``n_rows``
        float32 rows of ``n_channels``; ``close`` then sends it to the free pool. A file
        of the wrong size goes there at once and fails."""
        n_bytes = 4 * n_rows * n_channels
        fh = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        got = os.fstat(fh.fileno()).st_size
        if got != n_bytes:
            self.close(path, fh)
            raise InputDataError(f"hand-over file {path} holds {got} bytes, expected {n_bytes} "
                                 f"({n_rows} rows x {n_channels} float32); re-run the stage")
        return fh

    def close(self, path: str, fh: BinaryIO) -> None:
        """Done with ``path``: closed, then to the free pool (for the next ``write``)."""
        fh.close()
        self._release(path)

    def _release(self, path: str) -> None:
        free = os.path.join(os.path.dirname(path), FREE)
        try:
            if len(os.listdir(free)) < KEEP_FREE:
                os.rename(path, os.path.join(free, os.path.basename(path)))
                return
        except FileNotFoundError:  # no pool (a file outside a folder())
            pass
        os.remove(path)
