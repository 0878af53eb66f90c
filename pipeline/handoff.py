"""Large arrays from pool workers to the calling process through files in memory.

Sending a 30-minute recording's 8.6 MB of resampled rows through the process pool's pipe
stalled its worker about 25 ms (a third of its compute) while the caller drained the pipe
64 KB at a time. Instead a worker writes the rows to a file in a temporary folder (in
``/dev/shm`` when it has room, else the system's temporary folder) and returns only the
path; the caller reads the file into one reused buffer and deletes it at once, so the
folder holds only what is in flight. A folder left by a killed stage is removed by the next
one (in ``/dev/shm`` it would hold memory until a reboot).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from comodo.stores.backends import pid_alive
from comodo.stores.errors import InputDataError

log = logging.getLogger(__name__)

PREFIX = "comodo-handoff-"
SHM = "/dev/shm"
SHM_MIN_FREE = 2 << 30  # use /dev/shm only with this much room


@contextmanager
def folder() -> Iterator[str]:
    """A fresh hand-over folder, removed (with anything left in it) on exit."""
    use_shm = os.path.isdir(SHM) and os.access(SHM, os.W_OK) and shutil.disk_usage(SHM).free > SHM_MIN_FREE
    base = SHM if use_shm else tempfile.gettempdir()
    remove_orphans(base)
    path = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=base)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def remove_orphans(base: str) -> int:
    """Delete hand-over folders in ``base`` whose process is gone; return how many."""
    removed = 0
    for name in os.listdir(base):
        pid = name[len(PREFIX):].split("-", 1)[0]
        if name.startswith(PREFIX) and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
            log.info("removed %s, left by a killed stage", os.path.join(base, name))
            removed += 1
    return removed


class Reader:
    """Reads hand-over files into one reused buffer: no fresh memory is touched per file
    (first-touch page faults cost more than the copy on a VM). A returned array is valid
    until the next ``read``."""

    def __init__(self) -> None:
        self.buffer = np.empty(0, np.uint8)

    def read(self, path: str, n_rows: int, n_channels: int) -> np.ndarray:
        """(n_rows, n_channels) float32 from ``path``, which is then deleted."""
        n_bytes = 4 * n_rows * n_channels
        if len(self.buffer) < n_bytes:
            self.buffer = np.empty(n_bytes, np.uint8)
        with open(path, "rb") as fh:
            got = fh.readinto(memoryview(self.buffer)[:n_bytes])
        os.remove(path)
        if got != n_bytes:
            raise InputDataError(f"hand-over file {path} holds {got} bytes, expected {n_bytes} "
                                 f"({n_rows} rows x {n_channels} float32); re-run the stage")
        return self.buffer[:n_bytes].view(np.float32).reshape(n_rows, n_channels)
