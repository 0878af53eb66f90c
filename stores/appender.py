"""A new store filled by appending rows in order, for writers that learn the row count last.

The imu stage streams recordings one after another and knows the store's length only after
the last one. ``RowAppender`` collects rows until a chunk is full, grows the arrays by that
chunk (``zarr.Array.resize``), writes it and sets its completion marker. ``close`` writes the
last partial chunk and the store's attrs; until then the store carries the "being created"
attr, so no reader accepts a half-written store and ``open_or_create`` starts it over. The
finished store is the one ``ChunkedStore.create`` + ``write_chunk`` make from the same rows,
byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from comodo.stores import fs
from comodo.stores.chunked import MARKER, WRITE_CONFIG, ArraySpec, ChunkedStore, layout_attrs, new_group
from comodo.stores.errors import StoreError
from comodo.stores.provenance import Provenance


class RowAppender:
    """Append rows to a new store at ``url`` (replacing a store that is there), then ``close``."""

    def __init__(self, url: str, chunk_rows: int, arrays: Mapping[str, ArraySpec],
                 provenance: Provenance, index: str | None = None,
                 attrs: Mapping[str, Any] | None = None,
                 storage_options: Mapping[str, Any] | None = None):
        self.url, self.chunk_rows = str(url), chunk_rows
        self.layout = (arrays, provenance, index, attrs)  # for the attrs written at close
        self.options = dict(storage_options or {})
        self.group = new_group(url, 0, chunk_rows, arrays, storage_options)
        self.arrays = {name: self.group[name].with_config(WRITE_CONFIG) for name in arrays}
        self.marker = self.group[MARKER]
        # the next chunk's rows, filled in place: one copy of each row, into memory already in use
        self.pending = {name: np.empty((chunk_rows, *spec.row_shape), spec.dtype)
                        for name, spec in arrays.items()}
        self.n_pending = 0  # rows in ``pending``
        self.n_rows = 0  # rows written to chunk files

    def append(self, data: Mapping[str, np.ndarray]) -> None:
        """Add rows (the same number for every array); full chunks are written at once."""
        missing = set(self.arrays) - set(data)
        if missing:
            raise StoreError(f"append to {self.url}: need arrays {sorted(self.arrays)}, "
                             f"missing {sorted(missing)}")
        lengths = {name: len(data[name]) for name in self.arrays}
        if len(set(lengths.values())) != 1:
            raise StoreError(f"append to {self.url}: need as many rows for every array, got {lengths}")
        n, done = next(iter(lengths.values())), 0
        while done < n:
            take = min(n - done, self.chunk_rows - self.n_pending)
            for name, buffer in self.pending.items():
                buffer[self.n_pending : self.n_pending + take] = np.asarray(data[name])[done : done + take]
            self.n_pending, done = self.n_pending + take, done + take
            if self.n_pending == self.chunk_rows:
                self._flush(self.chunk_rows)

    def _flush(self, n: int) -> None:
        """Write the ``n`` pending rows as the next chunk and mark it complete."""
        lo, hi = self.n_rows, self.n_rows + n
        for name, arr in self.arrays.items():
            arr.resize((hi, *arr.shape[1:]))
            arr[lo:hi] = self.pending[name][:n]
        self.marker.resize((-(-hi // self.chunk_rows),))
        self.marker[lo // self.chunk_rows] = 1
        self.n_rows, self.n_pending = hi, 0

    def close(self) -> ChunkedStore:
        """Write the last rows and finish the store."""
        if self.n_pending:
            self._flush(self.n_pending)
        if not self.n_rows:
            self.marker[0] = 1  # an empty store has one (empty) chunk, complete
        self.group.attrs.put(layout_attrs(self.n_rows, self.chunk_rows, *self.layout))
        return ChunkedStore(self.url, self.group)

    def abort(self) -> None:
        """Remove the unfinished store (a failed stage leaves nothing half-written)."""
        filesystem, path = fs.filesystem(self.url, **self.options)
        if filesystem.exists(path):
            filesystem.rm(path, recursive=True)
