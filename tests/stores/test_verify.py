"""verify(): a clean store passes; each kind of damage is reported naming store and array."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from comodo.stores.chunked import MARKER, ChunkedStore
from comodo.stores.errors import StoreIntegrityError, StoreNotFoundError
from comodo.stores.index import write_table
from comodo.stores.verify import index_url, verify


def with_index(backend, layout, n_rows: int | None = None, ids=None) -> str:
    n = layout.N_ROWS if n_rows is None else n_rows
    ids = np.arange(n) if ids is None else np.asarray(ids)
    table = pl.DataFrame({"window_id": ids, "label": [f"c{i % 3}" for i in range(n)]})
    write_table(table, backend.url("windows.parquet"), **backend.storage_options)
    store = backend.fill(backend.create("feats/s.zarr", index="../../windows.parquet"))
    return store.url


def test_clean_store_has_no_problems(backend, layout):
    url = with_index(backend, layout)
    report = verify(url, backend.storage_options)
    assert report.ok, report.problems
    assert (report.n_chunks, report.n_complete) == (5, 5)
    assert report.arrays == list(layout.SPECS)
    assert report.warnings == []


def test_deleted_chunk_file_is_named_with_its_array_and_chunk(backend):
    store = backend.fill(backend.create())
    fs = backend.filesystem()
    fs.rm(backend.fs_path("s.zarr", "frames/c/3/0/0"))
    report = verify(store.url, backend.storage_options)
    assert len(report.problems) == 1, report.problems
    problem = report.problems[0]
    assert store.url in problem and "array 'frames' chunk 3 (rows 15..19)" in problem
    assert "frames/c/3/0/0 is missing" in problem


def test_truncated_chunk_file_is_reported_as_damaged(local):
    store = local.fill(local.create())
    path = local.fs_path("s.zarr", "pooled/c/1/0")
    with open(path, "r+b") as fh:
        fh.truncate(7)
    report = verify(store.url)
    assert len(report.problems) == 1
    assert "array 'pooled' chunk 1 (rows 5..9): chunk file pooled/c/1/0 is damaged" in report.problems[0]


def test_uncompressed_chunk_of_the_wrong_length_is_reported(local):
    store = local.fill(local.create())
    with open(local.fs_path("s.zarr", "label_id/c/4"), "r+b") as fh:
        fh.truncate(12)
    problems = verify(store.url).problems
    assert len(problems) == 1 and "array 'label_id' chunk 4" in problems[0]


def test_nan_in_one_row_is_reported_naming_array_and_row(backend, layout):
    store = backend.create("nan.zarr")
    for chunk in range(store.n_chunks):
        rows = store.chunk_slice(chunk)
        data = layout.chunk_data(chunk, rows.stop - rows.start)
        if chunk == 3:
            data["frames"][2, 1, 0] = np.nan
        if chunk == 4:
            data["frames"][0, 0, 0] = np.inf
        store.write_chunk(chunk, data)
    problems = verify(store.url, backend.storage_options).problems
    assert len(problems) == 1, problems
    assert store.url in problems[0]
    assert "array 'frames' has NaN/inf values in 2 row(s), first at row 17 (chunk 3)" in problems[0]


def test_index_with_the_wrong_length_is_reported(backend, layout):
    url = with_index(backend, layout, n_rows=layout.N_ROWS - 2)
    problems = verify(url, backend.storage_options).problems
    assert len(problems) == 1
    assert "windows.parquet has 20 rows, the store has 22" in problems[0]


def test_index_whose_window_ids_are_not_the_row_numbers_is_reported(local, layout):
    ids = np.arange(layout.N_ROWS)
    ids[[4, 5]] = ids[[5, 4]]
    problems = verify(with_index(local, layout, ids=ids)).problems
    assert len(problems) == 1 and "window_id is not 0..21: row 4 holds 5" in problems[0]


def test_missing_index_file_is_reported(local):
    store = local.fill(local.create(index="../windows.parquet"))
    problems = verify(store.url).problems
    assert len(problems) == 1 and "no table at" in problems[0]
    assert index_url(store) == local.url("windows.parquet")


def test_unfinished_chunks_and_other_schema_versions_are_reported(local):
    store = local.fill(local.create(), [0, 1])
    prov = dict(store.group.attrs["provenance"], schema_version=0)
    zarr_group = ChunkedStore.open(store.url, mode="r+").group
    zarr_group.attrs["provenance"] = prov
    report = verify(store.url)
    text = "\n".join(report.problems)
    assert "3/5 chunks are not marked complete in '_complete' (first: [2, 3, 4])" in text
    assert "schema_version is 0, this comodo reads 1" in text
    assert "chunk file" not in text  # unfinished chunks are reported once, by their markers
    assert MARKER not in report.arrays
    with pytest.raises(StoreIntegrityError, match="failed verification with"):
        report.raise_if_failed()


def test_leftover_temp_file_is_a_warning_not_a_problem(local):
    store = local.fill(local.create())
    with open(local.fs_path("s.zarr", "pooled/c/0.somehost-1-abc.partial"), "wb") as fh:
        fh.write(b"junk")
    report = verify(store.url)
    assert report.ok and len(report.warnings) == 1 and "temporary files" in report.warnings[0]


def test_verifying_a_path_without_a_store_raises_not_found(local):
    with pytest.raises(StoreNotFoundError, match="no store at"):
        verify(local.url("absent.zarr"))


def test_many_missing_chunks_are_listed_up_to_a_limit_then_counted(local, layout, tmp_path):
    spec = {"x": layout.SPECS["frames"]}
    store = ChunkedStore.create(str(tmp_path / "many.zarr"), 30, 1, spec, layout.provenance())
    for chunk in range(30):
        store.write_chunk(chunk, {"x": np.ones((1, 3, 4))})
    for chunk in range(25):
        (tmp_path / "many.zarr" / "x" / "c" / str(chunk) / "0" / "0").unlink()
    problems = verify(store.url).problems
    assert len(problems) == 21
    assert "chunk 19 (rows 19..19)" in problems[19]
    assert problems[20].endswith("array 'x': 5 more like the above")


def test_an_array_without_a_checksum_is_reported(local):
    """A store written before every array carried crc32c: verify names the array and the stage."""
    import zarr.codecs

    store = local.fill(local.create())
    group = ChunkedStore.open(store.url, mode="r+").group
    old = group["pooled"]
    values = old[:]
    group.create_array("pooled", shape=old.shape, chunks=old.chunks, dtype=old.dtype, fill_value=0,
                       compressors=[zarr.codecs.ZstdCodec(level=3)], overwrite=True)[:] = values
    problems = verify(store.url).problems
    assert len(problems) == 1, problems
    assert f"store {store.url}: array pooled has no crc32c checksum" in problems[0]
    assert f"re-run stage '{store.provenance.stage}'" in problems[0]
