"""Plain numeric CSV files (IMU exports) read by a small C parser, polars for the rest.

Parsing the CSV is most of the imu stage (PERF-NOTES: not the filter). An IMU export is a
header line and rows of decimal numbers; ``pipeline/_fastcsv.c`` reads such a body about
twice as fast as polars' reader on one thread (``python -m benchmarks bench_imu`` records
both), with the same float64 values bit for bit (correctly rounded; tested against polars).
``read`` returns None for any file it does not fully understand (quotes, text, inf, blank
lines, ragged rows, a header without the columns asked for) or when the extension was not
built (no C compiler at install time): the caller then reads it with polars, which decides
what an unusual file means and how its errors read.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from comodo.stores import fs

try:
    from comodo.pipeline import _fastcsv
except ImportError:  # built at install time when a C compiler is there (pyproject ext-modules)
    _fastcsv = None

log = logging.getLogger(__name__)

STATUS = {1: "a field that is not a plain number", 2: "a row with another number of fields",
          3: "more rows than the size bound"}
_local = threading.local()  # one reused file buffer per thread


def available() -> bool:
    return _fastcsv is not None


def _file_bytes(path: Path) -> memoryview:
    """The file's bytes in this thread's reused buffer (valid until the next call): no
    fresh memory is touched per file."""
    size = path.stat().st_size
    buffer: bytearray | None = getattr(_local, "buffer", None)
    if buffer is None or len(buffer) < size:
        buffer = _local.buffer = bytearray(max(size, 1 << 20))
    view = memoryview(buffer)[:size]
    with open(path, "rb", buffering=0) as fh:
        return view[:fs.read_fully(fh, view)]


def read(path: str | os.PathLike[str], columns: Sequence[str]) -> np.ndarray | None:
    """float64 (rows, len(columns)) of the named columns (Fortran order, as polars gives
    them), or None (module doc)."""
    if _fastcsv is None:
        return None
    data = _file_bytes(Path(path))
    end = bytes(data[: 1 << 16]).find(b"\n")
    if end < 0:
        return None
    try:
        names = bytes(data[:end]).decode("utf-8").rstrip("\r").split(",")
    except UnicodeDecodeError:
        return None
    if '"' in "".join(names) or len(set(names)) != len(names) or not set(columns) <= set(names):
        return None
    width = len(names)
    # one contiguous run per column (channels are filtered one by one), exactly sized: an
    # allocation the process's heap can serve again for the next file
    by_column = np.empty((width, _fastcsv.count_lines(data, end + 1)), np.float64)
    n_rows, status, row = _fastcsv.parse(data, end + 1, width, by_column, True)
    if status:
        log.debug("%s: data row %d has %s; reading it with polars", path, row + 1, STATUS[status])
        return None
    pick = [names.index(c) for c in columns]
    if pick == list(range(pick[0], pick[0] + len(pick))):
        return by_column[pick[0] : pick[0] + len(pick), :n_rows].T
    return by_column[pick, :n_rows].T
