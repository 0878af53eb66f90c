"""A new store filled by appending rows in order, for writers that learn the row count last.

The imu stage streams recordings one after another and knows the store's length only after
the last one. ``RowAppender`` copies rows into a buffer of about ``WRITE_BYTES`` of whole
chunks, writes them (uncompressed local chunks as plain files, ``comodo.stores.rawchunks``;
others in one zarr call, which stores the chunks concurrently) and then sets their
completion markers. The arrays grow ahead of the rows (doubling, at most
``GROW_CHUNKS`` chunks at a time) so that metadata is rewritten rarely. ``close`` cuts the
arrays to the rows received, writes the last partial chunk and the store's attrs; until
then the store carries the "being created" attr, so no reader accepts a half-written store,
and ``open_or_create`` starts it over. The finished store is the one
``ChunkedStore.create`` + ``write_chunk`` make from the same rows, byte for byte.

Plain chunk files are written by one background thread from one of two buffers while the
caller fills the other (the imu stage's process then keeps reading its workers' rows while
the disk writes); ``direct_io`` writes them with ``O_DIRECT`` (``comodo.stores.directio``).
An error of the writing thread is raised by the next ``append``, ``close`` or ``abort``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO

import numpy as np

from comodo.stores import fs
from comodo.stores.chunked import MARKER, WRITE_CONFIG, ArraySpec, ChunkedStore, layout_attrs, new_group
from comodo.stores.directio import aligned_empty
from comodo.stores.errors import StoreError
from comodo.stores.provenance import Provenance
from comodo.stores.rawchunks import Markers, RawChunks

GROW_CHUNKS = 256  # most chunks added to the arrays' shape at once
WRITE_BYTES = 16 << 20  # rows buffered before a write: zarr writes several chunks per call


class RowAppender:
    """Append rows to a new store at ``url`` (replacing a store that is there), then ``close``."""

    def __init__(self, url: str, chunk_rows: int, arrays: Mapping[str, ArraySpec],
                 provenance: Provenance, index: str | None = None,
                 attrs: Mapping[str, Any] | None = None,
                 storage_options: Mapping[str, Any] | None = None, direct_io: bool = False):
        self.url, self.chunk_rows, self.specs = str(url), chunk_rows, dict(arrays)
        self.layout = (arrays, provenance, index, attrs)  # for the attrs written at close
        self.options = dict(storage_options or {})
        self.group = new_group(url, 0, chunk_rows, arrays, storage_options)
        self.arrays = {name: self.group[name].with_config(WRITE_CONFIG) for name in arrays}
        self.marker = self.group[MARKER]
        self.markers = Markers(self.marker)
        self.raw = {name: RawChunks.of(arr, direct_io) for name, arr in self.arrays.items()}
        row_bytes = sum(int(np.prod(spec.row_shape, dtype=np.int64)) * np.dtype(spec.dtype).itemsize
                        for spec in self.specs.values())
        self.write_rows = chunk_rows * max(1, WRITE_BYTES // max(1, row_bytes * chunk_rows))
        # two reused (aligned) buffers per array, one filled while the other is written: rows
        # are copied in once, and no fresh memory is touched per write (first-touch page
        # faults cost more than the copy on a VM)
        self.behind = all(raw is not None for raw in self.raw.values())  # all plain files
        self.spare = self._buffers() if self.behind else None
        self.buffers = self._buffers()
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="appender") if self.behind else None
        self.pending: Future | None = None
        self.n_pending = 0  # rows in the buffers
        self.n_rows = 0  # rows written to disk: always a multiple of chunk_rows until close
        self.capacity = 0  # rows the arrays' shape holds now (>= n_rows)

    def _buffers(self) -> dict[str, np.ndarray]:
        return {name: aligned_empty((self.write_rows, *spec.row_shape), spec.dtype)
                for name, spec in self.specs.items()}

    def append(self, data: Mapping[str, np.ndarray]) -> None:
        """Rows for every array (same count); full chunks are written as they complete."""
        blocks = {name: np.asarray(data[name]) for name in self.specs if name in data}
        if set(blocks) != set(self.specs):
            raise StoreError(f"append to {self.url}: need arrays {sorted(self.specs)}, got {sorted(data)}")
        counts = {len(b) for b in blocks.values()}
        for name, block in blocks.items():
            if tuple(block.shape[1:]) != tuple(self.specs[name].row_shape) or len(counts) != 1:
                raise StoreError(f"append to {self.url}/{name}: rows of shape "
                                 f"{self.specs[name].row_shape}, as many for every array, expected; "
                                 f"got {block.shape}")
        def copy(done: int, take: int) -> None:
            for name, block in blocks.items():
                self.buffers[name][self.n_pending:self.n_pending + take] = block[done:done + take]

        self._fill(counts.pop(), copy)

    def append_file(self, fh: BinaryIO, n_rows: int) -> None:
        """Append ``n_rows`` rows of the store's one array read from ``fh`` (their C-order
        bytes) straight into the buffer, not through an array of their own."""
        if len(self.specs) != 1:
            raise StoreError(f"append_file to {self.url}: the store has arrays {sorted(self.specs)}, "
                             "not one")
        (name,) = self.specs

        def copy(done: int, take: int) -> None:
            view = memoryview(self.buffers[name][self.n_pending:self.n_pending + take]).cast("B")
            got = fs.read_fully(fh, view)
            if got < view.nbytes:
                raise StoreError(f"append_file to {self.url}: {getattr(fh, 'name', 'the file')} ended "
                                 f"{view.nbytes - got} bytes before its {n_rows} rows")

        self._fill(n_rows, copy)

    def _fill(self, n: int, copy: Callable[[int, int], None]) -> None:
        """Move ``n`` rows into the buffers, ``copy(done, take)`` putting rows ``done ..
        done + take`` at ``n_pending``; full buffers are written as they fill."""
        done = 0
        while done < n:
            take = min(n - done, self.write_rows - self.n_pending)
            copy(done, take)
            self.n_pending += take
            done += take
            if self.n_pending == self.write_rows:
                self._flush()

    def _flush(self) -> None:
        """Write the buffered rows as the next chunks (whole ones, but for the last rows at
        ``close``)."""
        n = self.n_pending
        lo, hi = self.n_rows, self.n_rows + n
        if hi > self.capacity:
            grow = min(max(1, self.capacity // self.chunk_rows), GROW_CHUNKS) * self.chunk_rows
            self._resize(max(hi, self.capacity + grow))
        if self.behind:
            self._wait()  # the spare buffer is written: swap, and write this one behind
            self.pending = self.writer.submit(self._write, self.buffers, lo, n)
            self.buffers, self.spare = self.spare, self.buffers
        else:
            for name, arr in self.arrays.items():
                arr[lo:hi] = self.buffers[name][:n]
            self.markers.set(range(lo // self.chunk_rows, -(-hi // self.chunk_rows)))
        self.n_pending -= n
        self.n_rows = hi

    def _write(self, buffers: dict[str, np.ndarray], lo: int, n: int) -> None:
        """The chunk files of rows ``lo .. lo + n`` from ``buffers``, then their markers."""
        for name, raw in self.raw.items():
            for start in range(0, n, self.chunk_rows):
                raw.write((lo + start) // self.chunk_rows,
                          buffers[name][start:min(n, start + self.chunk_rows)])
        self.markers.set(range(lo // self.chunk_rows, -(-(lo + n) // self.chunk_rows)))  # after the data

    def _wait(self) -> None:
        """Until the write in flight is done; raises its error."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def _stop(self) -> None:
        if self.writer is not None:
            self.writer.shutdown()
            self.writer = None

    def _resize(self, n_rows: int) -> None:
        self._wait()  # no chunk or marker write in flight while the metadata change
        for arr in self.arrays.values():
            arr.resize((n_rows, *arr.shape[1:]))
        self.marker.resize((max(1, -(-n_rows // self.chunk_rows)),))
        self.capacity = n_rows

    def close(self) -> ChunkedStore:
        """Write the last rows, mark every chunk complete and finish the store."""
        self._resize(self.n_rows + self.n_pending)  # drops the chunks grown ahead, never written
        if self.n_pending:
            self._flush()
        self._wait()
        self._stop()
        if not self.n_rows:
            self.markers.set(range(1))  # an empty store has one (empty) chunk, complete
        self.group.attrs.put(layout_attrs(self.n_rows, self.chunk_rows, *self.layout))
        return ChunkedStore(self.url, self.group)

    def abort(self) -> None:
        """Remove the unfinished store (a failed stage leaves nothing half-written)."""
        try:
            self._wait()
        except Exception:  # noqa: BLE001 - the store is removed whatever the write did
            pass
        self._stop()
        filesystem, path = fs.filesystem(self.url, **self.options)
        if filesystem.exists(path):
            filesystem.rm(path, recursive=True)
