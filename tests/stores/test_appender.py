"""RowAppender on every backend: rows appended in uneven pieces make the created store's bytes."""

from __future__ import annotations

import numpy as np
import pytest

from comodo.stores.appender import RowAppender
from comodo.stores.chunked import ChunkedStore
from comodo.stores.errors import StoreError, StoreIntegrityError


def _files(backend, name: str) -> dict[str, bytes]:
    fs = backend.filesystem()
    root = backend.fs_path(name)
    return {path[len(root):]: fs.cat_file(path) for path in sorted(fs.find(root))}


def _appender(backend, layout, name: str) -> RowAppender:
    return RowAppender(backend.url(name), layout.CHUNK_ROWS, layout.SPECS, layout.provenance(),
                       index="../windows.parquet", attrs={"channels": ["a"]},
                       storage_options=backend.storage_options)


def test_appended_rows_make_the_bytes_of_a_created_and_filled_store(backend, layout):
    backend.fill(backend.create("made.zarr", index="../windows.parquet", attrs={"channels": ["a"]}))
    rows = layout.expected_arrays()
    appender = _appender(backend, layout, "grown.zarr")
    for lo, hi in [(0, 3), (3, 4), (4, 4), (4, 13), (13, 22)]:  # pieces across chunk edges
        appender.append({name: values[lo:hi] for name, values in rows.items()})
    store = appender.close()
    assert (store.n_rows, store.n_chunks, store.is_complete()) == (22, 5, True)
    assert _files(backend, "grown.zarr") == _files(backend, "made.zarr")


def test_an_unfinished_appended_store_is_refused_and_abort_removes_it(backend, layout):
    appender = _appender(backend, layout, "grown.zarr")
    rows = layout.expected_arrays()
    appender.append({name: values[:12] for name, values in rows.items()})
    with pytest.raises(StoreIntegrityError, match="never finished"):
        ChunkedStore.open(backend.url("grown.zarr"), storage_options=backend.storage_options)
    appender.abort()
    assert not backend.filesystem().exists(backend.fs_path("grown.zarr"))


def test_append_refuses_missing_arrays_and_ragged_rows(backend, layout):
    appender = _appender(backend, layout, "grown.zarr")
    rows = layout.expected_arrays()
    with pytest.raises(StoreError, match="need arrays"):
        appender.append({"pooled": rows["pooled"][:2]})
    ragged = {name: values[:2] for name, values in rows.items()} | {"label_id": np.zeros(3, np.int64)}
    with pytest.raises(StoreError, match="as many rows for every array"):
        appender.append(ragged)
