"""describe(), find_stores() and find_tables() on real stores and tables."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import zarr

from comodo.stores.errors import StoreNotFoundError
from comodo.stores.index import write_table
from comodo.stores.inspect import describe, describe_table, find_stores, find_tables, scan


def labelled_store(backend, layout, chunks=None):
    labels = ["walk"] * 10 + ["run"] * 7 + ["sit"] * 5
    table = pl.DataFrame({"window_id": np.arange(layout.N_ROWS), "label": labels})
    write_table(table, backend.url("ds", "windows.parquet"), **backend.storage_options)
    store = backend.create("ds/features/t.zarr", index="../../windows.parquet")
    return backend.fill(store, chunks)


def test_describe_reports_arrays_sizes_provenance_and_labels(backend, layout):
    store = labelled_store(backend, layout)
    info = describe(store.url, backend.storage_options)
    json.dumps(info)  # JSON-serialisable as is
    assert (info["n_rows"], info["chunk_rows"], info["n_chunks"]) == (22, 5, 5)
    assert info["percent_complete"] == 100.0 and info["stage"] == "features"
    assert info["provenance"] == layout.provenance().to_dict()
    assert info["label_counts"] == {"run": 7, "sit": 5, "walk": 10}
    assert info["index"] == backend.url("ds", "windows.parquet")
    arrays = {a["name"]: a for a in info["arrays"]}
    assert list(arrays) == list(layout.SPECS)
    frames = arrays["frames"]
    assert (frames["shape"], frames["dtype"], frames["chunks"]) == ([22, 3, 4], "float32", [5, 3, 4])
    assert frames["codecs"][0] == "bytes(endian=little)" and frames["codecs"][1].startswith("blosc(")
    assert frames["codecs"][2] == "crc32c"  # every array ends with its checksum
    assert frames["bytes_raw"] == 22 * 12 * 4 and frames["n_chunk_files"] == 5
    assert frames["bytes_logical"] == 22 * 12 * 4  # the last chunk's padding is not data
    assert 0 < frames["bytes_on_disk"] and frames["ratio"] == pytest.approx(
        frames["bytes_on_disk"] / (22 * 12 * 4), abs=1e-3
    )
    label_id = arrays["label_id"]
    assert label_id["codecs"] == ["bytes(endian=little)", "crc32c"]
    # 5 full chunk files (rows + a 4-byte checksum each) hold 22 rows written
    assert label_id["bytes_on_disk"] == 5 * (5 * 8 + 4)
    assert label_id["ratio"] == round(5 * (5 * 8 + 4) / (22 * 8), 3)


def test_describe_of_a_partial_store_counts_only_written_chunks(local, layout):
    store = labelled_store(local, layout, chunks=[0, 4])
    info = describe(store.url)
    assert (info["n_complete"], info["percent_complete"]) == (2, 40.0)
    assert all(a["n_chunk_files"] == 2 for a in info["arrays"])
    label_id = {a["name"]: a for a in info["arrays"]}["label_id"]
    assert label_id["bytes_logical"] == (5 + 2) * 8  # chunk 0 and the 2-row last chunk
    # two full 5-row chunk files, each with its 4-byte checksum, for 7 rows written
    assert label_id["ratio"] == round(2 * (5 * 8 + 4) / (7 * 8), 3)


def test_describe_without_index_has_no_label_counts(local):
    info = describe(local.fill(local.create()).url)
    assert info["index"] is None and info["label_counts"] is None


def test_find_stores_walks_any_depth_and_skips_other_zarr_and_tables(local, layout):
    labelled_store(local, layout)
    local.create("a/b/c/deep.zarr")
    zarr.open_group(local.url("plain.zarr"), mode="w").create_array("x", shape=(2,), dtype="f4")
    write_table(pl.DataFrame({"label": ["x", "y", "x"]}), local.url("a", "rejects.parquet"))
    assert find_stores(local.root) == [
        local.url("a/b/c/deep.zarr"), local.url("ds/features/t.zarr")
    ]
    assert find_tables(local.root) == [local.url("a/rejects.parquet"), local.url("ds/windows.parquet")]
    assert scan(local.url("a/b/c/deep.zarr")) == ([local.url("a/b/c/deep.zarr")], [])
    assert describe_table(local.url("a/rejects.parquet"))["label_counts"] == {"x": 2, "y": 1}


def test_find_stores_on_object_storage(backend, layout):
    labelled_store(backend, layout)
    assert find_stores(backend.root, backend.storage_options) == [backend.url("ds/features/t.zarr")]


def test_find_stores_under_a_missing_folder_raises_not_found(tmp_path):
    with pytest.raises(StoreNotFoundError, match="no folder or store at .*nope"):
        find_stores(str(tmp_path / "nope"))
