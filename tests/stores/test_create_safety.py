"""create / open_or_create never destroy what is not theirs, and recover an interrupted create."""

from __future__ import annotations

import pytest
import zarr

from comodo.stores.chunked import CREATING, ArraySpec, ChunkedStore
from comodo.stores.errors import StoreError, StoreIntegrityError


def layout_args(layout, config_hash: str = "cfg-a") -> tuple:
    return (layout.N_ROWS, layout.CHUNK_ROWS, layout.SPECS, layout.provenance(config_hash))


def test_interrupted_create_is_refused_by_readers_and_redone_by_writers(local, layout):
    url = local.url("s.zarr")
    zarr.open_group(url, mode="w", zarr_format=3, attributes={CREATING: True})
    with pytest.raises(StoreIntegrityError, match="creation was interrupted"):
        ChunkedStore.open(url)
    store = ChunkedStore.open_or_create(url, *layout_args(layout))
    assert store.pending_chunks() == [0, 1, 2, 3, 4]
    assert CREATING not in ChunkedStore.open(url).attrs


def test_open_or_create_refuses_a_foreign_zarr_group_and_keeps_it(local, layout):
    url = local.url("foreign.zarr")
    zarr.open_group(url, mode="w").create_array("x", shape=(3,), dtype="f4")[:] = 1.0
    with pytest.raises(StoreIntegrityError, match="not written by comodo"):
        ChunkedStore.open_or_create(url, *layout_args(layout))
    assert zarr.open_array(url + "/x", mode="r")[:].tolist() == [1.0, 1.0, 1.0]


def test_create_refuses_a_non_empty_folder_that_is_not_a_store(local, layout, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(StoreError, match="refusing to create a store at .*notes"):
        ChunkedStore.create(str(tmp_path / "notes"), *layout_args(layout))
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"


def test_create_replaces_an_existing_store(local, layout):
    local.fill(local.create())
    store = local.create(config_hash="cfg-b")
    assert store.pending_chunks() == [0, 1, 2, 3, 4]
    assert local.open().provenance.config_hash == "cfg-b"


def test_the_marker_name_is_reserved(local, layout):
    specs = {"_complete": layout.SPECS["pooled"]}
    with pytest.raises(StoreError, match="'_complete' is reserved"):
        ChunkedStore.create(local.url("s.zarr"), 4, 2, specs, layout.provenance())


@pytest.mark.parametrize("change", ["codec", "row_shape", "dtype"])
def test_open_or_create_starts_over_when_an_array_layout_changed(local, layout, change):
    local.fill(local.create(), [0, 1])
    spec = layout.SPECS["frames"]
    new = {
        "codec": ArraySpec(spec.row_shape, spec.dtype, codec="zstd"),
        "row_shape": ArraySpec((3, 5), spec.dtype, codec=spec.codec),
        "dtype": ArraySpec(spec.row_shape, "float16", codec=spec.codec),
    }[change]
    specs = {**layout.SPECS, "frames": new}
    args = (layout.N_ROWS, layout.CHUNK_ROWS, specs, layout.provenance())
    assert ChunkedStore.open_or_create(local.url("s.zarr"), *args).pending_chunks() == [0, 1, 2, 3, 4]
