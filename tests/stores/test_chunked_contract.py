"""The ChunkedStore contract, run on every backend: local folder, memory:// and s3:// (moto)."""

from __future__ import annotations

import numpy as np
import pytest

from comodo.stores.chunked import ChunkedStore
from comodo.stores.errors import (
    ProvenanceMismatchError,
    StoreError,
    StoreIntegrityError,
    StoreNotFoundError,
)
from comodo.stores.verify import expected_chunk_keys, list_files


def test_written_store_reads_back_every_array_in_its_dtype(backend, layout):
    backend.fill(backend.create())
    store = backend.open()
    want = layout.expected_arrays()
    assert store.is_complete()
    for name, values in want.items():
        got = np.concatenate([store.read_chunk(c, [name])[name] for c in range(store.n_chunks)])
        assert got.dtype == np.dtype(layout.SPECS[name].dtype)
        np.testing.assert_array_equal(got, values)


def test_reopen_keeps_layout_attrs_and_provenance(backend, layout):
    backend.create(attrs={"channels": ["ax", "ay"]}, index="../windows.parquet")
    store = backend.open()
    assert (store.n_rows, store.chunk_rows, store.n_chunks) == (22, 5, 5)
    assert store.names == list(layout.SPECS)
    assert store.index == "../windows.parquet"
    assert store.attrs["channels"] == ["ax", "ay"]
    assert store.provenance == layout.provenance()
    assert store.pending_chunks() == [0, 1, 2, 3, 4]


def test_every_chunk_gets_a_file_even_all_zero_ones_after_reopen(backend, layout):
    backend.fill(backend.create(), [0, 1])
    backend.fill(backend.open(mode="r+"))  # chunk 2 (all zeros) written through a reopened store
    files = list_files(backend.url("s.zarr"), backend.storage_options)
    store = backend.open()
    for name in layout.SPECS:
        keys = expected_chunk_keys(store, name)
        assert len(keys) == 5
        assert set(keys) <= set(files), f"{name}: missing {set(keys) - set(files)}"


def test_resume_writes_only_pending_chunks_and_ends_equal(backend, layout):
    backend.fill(backend.create(), [0, 3])
    args = (layout.N_ROWS, layout.CHUNK_ROWS, layout.SPECS, layout.provenance())
    store = ChunkedStore.open_or_create(
        backend.url("s.zarr"), *args, storage_options=backend.storage_options
    )
    assert store.pending_chunks() == [1, 2, 4]
    assert store.pending_chunks(shard=1, n_shards=2) == [2, 4]
    backend.fill(store)
    got = backend.open().read_rows("pooled", np.arange(layout.N_ROWS))
    np.testing.assert_array_equal(got, layout.expected_arrays()["pooled"])


def test_open_or_create_starts_over_when_the_config_changed(backend, layout):
    backend.fill(backend.create())
    args = (layout.N_ROWS, layout.CHUNK_ROWS, layout.SPECS, layout.provenance("cfg-b"))
    store = ChunkedStore.open_or_create(
        backend.url("s.zarr"), *args, storage_options=backend.storage_options
    )
    assert store.pending_chunks() == [0, 1, 2, 3, 4]
    assert backend.open().provenance.config_hash == "cfg-b"


def test_reader_asking_for_another_config_hash_is_refused_naming_both(backend):
    backend.fill(backend.create())
    with pytest.raises(ProvenanceMismatchError) as err:
        backend.open(expect={"config_hash": "cfg-b"})
    msg = str(err.value)
    assert "'cfg-a'" in msg and "'cfg-b'" in msg and backend.url("s.zarr") in msg
    assert backend.open(expect={"config_hash": "cfg-a", "model": "tiny"}).is_complete()


def test_opening_a_missing_store_names_the_path(backend):
    with pytest.raises(StoreNotFoundError, match="no store at .*nothing.zarr"):
        backend.open("nothing.zarr")


def test_iter_batches_covers_every_row_once_within_a_bounded_buffer(backend, layout):
    store = backend.fill(backend.create())
    want = layout.expected_arrays()
    batches = list(store.iter_batches(["pooled", "label_id"], batch_size=3, buffer_chunks=2))
    rows = np.concatenate([b["row"] for b in batches])
    assert sorted(rows.tolist()) == list(range(layout.N_ROWS))
    assert not np.array_equal(rows, np.arange(layout.N_ROWS))  # shuffled
    for batch in batches:
        assert len(batch["row"]) <= 3
        # only the 2 buffered chunks plus the previous buffer's leftover rows can mix
        assert len(set((batch["row"] // layout.CHUNK_ROWS).tolist())) <= 3
        np.testing.assert_array_equal(batch["pooled"], want["pooled"][batch["row"]])
        np.testing.assert_array_equal(batch["label_id"], want["label_id"][batch["row"]])


def test_iter_batches_on_a_row_subset_yields_exactly_that_subset(backend):
    store = backend.fill(backend.create())
    subset = np.array([21, 0, 7, 8, 13])
    batches = store.iter_batches(["frames"], batch_size=2, rows=subset, shuffle=False)
    rows = np.concatenate([b["row"] for b in batches])
    assert rows.tolist() == [0, 7, 8, 13, 21]


def test_read_rows_gives_random_rows_in_the_order_asked(backend, layout):
    store = backend.fill(backend.create())
    rows = np.array([21, 3, 3, 14, 0, 10])
    got = store.read_rows("frames", rows)
    np.testing.assert_array_equal(got, layout.expected_arrays()["frames"][rows])
    with pytest.raises(StoreError, match="rows out of range"):
        store.read_rows("frames", [22])


def test_reading_a_chunk_not_marked_complete_is_refused(backend):
    store = backend.fill(backend.create(), [0, 1])
    np.testing.assert_array_equal(store.read_rows("pooled", [9]).shape, (1, 6))
    with pytest.raises(StoreIntegrityError, match=r"not marked complete \(first: \[2\]\)"):
        store.read_rows("pooled", [10])
    with pytest.raises(StoreIntegrityError, match="incomplete"):
        next(store.iter_batches(["pooled"], batch_size=4))


def test_data_written_without_its_marker_is_rewritten_on_resume(backend, layout, tree_bytes):
    """A writer killed after a chunk's data but before its marker: resume rewrites it."""
    store = backend.fill(backend.create(), [0])
    store.array("pooled")[5:10] = np.full((5, 6), 7.0)  # torn chunk 1: data, no marker
    args = (layout.N_ROWS, layout.CHUNK_ROWS, layout.SPECS, layout.provenance())
    resumed = ChunkedStore.open_or_create(
        backend.url("s.zarr"), *args, storage_options=backend.storage_options
    )
    assert resumed.pending_chunks() == [1, 2, 3, 4]
    backend.fill(resumed)
    backend.fill(backend.create("ref.zarr"))
    ref = tree_bytes(backend.url("ref.zarr"), backend.storage_options)
    assert tree_bytes(backend.url("s.zarr"), backend.storage_options) == ref


def test_write_chunk_checks_every_shape_before_writing_anything(backend, layout):
    store = backend.create()
    data = layout.chunk_data(0, 5)
    data["label_id"] = data["label_id"][:4]
    with pytest.raises(StoreError, match=r"label_id: expected shape \(5,\), got \(4,\)"):
        store.write_chunk(0, data)
    assert list_files(backend.url("s.zarr"), backend.storage_options).keys().isdisjoint(
        {"pooled/c/0/0", "frames/c/0/0/0"}
    )
    with pytest.raises(StoreError, match="chunk 5 .* out of range"):
        store.write_chunk(5, layout.chunk_data(0, 5))
