"""Worker processes that end with the process that started them.

A DataLoader worker notices a dead parent only when its next queue read times out (every
5 s in torch); after a SIGKILL of a stage it would keep decoding for that long. On Linux a
worker asks the kernel to kill it when its parent dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(_worker_id: int | None = None) -> None:
    """Make this process receive SIGKILL when its parent exits (a DataLoader ``worker_init_fn``).

    A no-op where the kernel has no such request (macOS, Windows); there the loader's own
    watchdog ends the worker within seconds."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
