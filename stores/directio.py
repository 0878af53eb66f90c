"""Chunk files written and read around the page cache (``O_DIRECT``).

A buffered write of a new file copies it into page-cache pages the kernel must first find
and map: on the VMs these stages are benchmarked on, that first touch cost 0.3-3 kernel
seconds per GB (varying with what the host had reclaimed), more than the disk takes to
store it (~1.5 GB/s). With ``O_DIRECT`` the disk reads the bytes from the caller's buffer:
about 0.05 CPU-seconds per GB. Worth it for a store that nothing reads right away
(``benchmarks/bench_imu.py`` measures both); a store the next stage reads at once is better
left in the page cache.

``put`` writes through a temporary file renamed over the target, as every store file is
written (``backends.atomic_put``). Buffers, offsets and lengths must be multiples of
``ALIGN`` for ``O_DIRECT``: aligned buffers (``aligned_empty``) are written as they are,
anything else through a reused aligned buffer of the calling thread. A file system that
refuses ``O_DIRECT`` makes ``put``/``read`` return None: the caller then uses plain I/O.
"""

from __future__ import annotations

import errno
import mmap
import os
import threading
from pathlib import Path

import numpy as np

from comodo.stores.backends import temp_path

ALIGN = 4096  # page size: a multiple of every block device's logical block size here
_local = threading.local()
_REFUSED = (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP)


def aligned_empty(shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised C-contiguous array whose data start on an ``ALIGN`` boundary."""
    dtype = np.dtype(dtype)
    n_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(n_bytes + ALIGN, np.uint8)
    skip = -raw.ctypes.data % ALIGN
    return raw[skip:skip + n_bytes].view(dtype).reshape(shape)


def _aligned(view: memoryview) -> bool:
    return np.frombuffer(view, np.uint8).ctypes.data % ALIGN == 0 and view.nbytes % ALIGN == 0


def _bounce(n_bytes: int) -> memoryview:
    """This thread's reused aligned buffer, of at least ``n_bytes``."""
    buffer: mmap.mmap | None = getattr(_local, "buffer", None)
    if buffer is None or len(buffer) < n_bytes:
        if buffer is not None:
            buffer.close()
        buffer = _local.buffer = mmap.mmap(-1, _round_up(n_bytes))  # page-aligned
    return memoryview(buffer)


def _round_up(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def put(path: Path, data: memoryview, size: int) -> bool | None:
    """Write ``data`` followed by zeros up to ``size`` bytes to ``path``; None when the file
    system refuses ``O_DIRECT`` (nothing is left behind then)."""
    data = data.cast("B") if data.format != "B" else data
    if data.nbytes == size and _aligned(data):
        source = data
    else:
        source = _bounce(_round_up(size))[:_round_up(size)]
        source[:data.nbytes] = data
        np.frombuffer(source, np.uint8)[data.nbytes:] = 0
    tmp = temp_path(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_DIRECT, 0o644)
    except OSError as err:
        if err.errno in _REFUSED:
            return None
        raise
    done = 0
    try:
        try:
            while done < source.nbytes:
                done += os.write(fd, source[done:])
            if source.nbytes != size:
                os.ftruncate(fd, size)  # the zeros written past the end to keep the length aligned
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if err.errno in _REFUSED and done == 0:
            return None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


def read(path: Path, offset: int, out: memoryview) -> int | None:
    """Read ``out.nbytes`` bytes of ``path`` from ``offset`` into ``out``; the number of bytes
    there were (fewer at the end of the file), or None when ``O_DIRECT`` is refused.
    ``FileNotFoundError`` is the caller's to name."""
    out = out.cast("B") if out.format != "B" else out
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError as err:
        if err.errno in _REFUSED:
            return None
        raise
    try:
        lo = offset // ALIGN * ALIGN
        hi = _round_up(offset + out.nbytes)
        straight = lo == offset and _aligned(out)
        target = out if straight else _bounce(hi - lo)[:hi - lo]
        got = 0
        try:
            while got < target.nbytes:
                more = os.preadv(fd, [target[got:]], lo + got)
                if not more:
                    break
                got += more
        except OSError as err:
            if err.errno in _REFUSED and got == 0:
                return None
            raise
    finally:
        os.close(fd)
    n = max(0, min(out.nbytes, got - (offset - lo)))
    if not straight:
        out[:n] = target[offset - lo:offset - lo + n]
    return n
