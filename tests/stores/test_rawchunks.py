"""Local chunks written and read as files (uncompressed or Blosc) hold exactly what zarr
writes/reads."""

from __future__ import annotations

from pathlib import Path

import fsspec
import numpy as np
import pytest
import zarr

from comodo.stores.backends import atomic_put
from comodo.stores.chunked import ArraySpec, ChunkedStore
from comodo.stores.errors import StoreIntegrityError
from comodo.stores.fs import WRITE_PIECE
from comodo.stores.provenance import Provenance
from comodo.stores.rawchunks import RawChunks, marked

SPECS = {"imu": ArraySpec((6,), "float32", "none"), "id": ArraySpec((), "int64", "none"),
         "z": ArraySpec((2,), "float16", "zstd"), "b": ArraySpec((3,), "float32", "blosc-lz4")}
N_ROWS, CHUNK_ROWS = 23, 5


def _rows() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"imu": rng.normal(size=(N_ROWS, 6)).astype(np.float32),
            "id": rng.integers(-5, 5, N_ROWS), "z": rng.normal(size=(N_ROWS, 2)).astype(np.float16),
            "b": np.repeat(rng.normal(size=(N_ROWS, 1)), 3, axis=1).astype(np.float32)}


def _fill(url: str) -> ChunkedStore:
    store = ChunkedStore.create(url, N_ROWS, CHUNK_ROWS, SPECS, Provenance("imu", "c", "i"))
    rows = _rows()
    for chunk in [4, 0, 2, 1, 3]:  # the partial last chunk first
        part = store.chunk_slice(chunk)
        store.write_chunk(chunk, {k: v[part] for k, v in rows.items()})
    return store


def _files(url: str) -> dict[str, bytes]:
    fs, root = fsspec.core.url_to_fs(url)
    return {p[len(root):].lstrip("/"): fs.cat_file(p) for p in sorted(fs.find(root))}


def test_files_written_directly_are_the_bytes_zarr_writes(tmp_path: Path) -> None:
    local = _fill(str(tmp_path / "s.zarr"))
    assert local.raw("imu") is not None and local.raw("id") is not None
    assert local.raw("z") is None  # zstd: through zarr
    assert local.raw("b") is not None and local.raw("b").blosc is not None  # Blosc: numcodecs here
    memory = _fill(f"memory://raw-{tmp_path.name}/s.zarr")  # every chunk through zarr's codecs
    assert memory.raw("imu") is None
    assert _files(str(tmp_path / "s.zarr")) == _files(memory.url)


def test_spans_read_directly_equal_zarr_reads(tmp_path: Path) -> None:
    store = _fill(str(tmp_path / "s.zarr"))
    arr = zarr.open_array(str(tmp_path / "s.zarr" / "imu"), mode="r")
    buffer = np.empty((N_ROWS, 6), np.float32)
    for lo, hi in [(0, 23), (3, 4), (4, 11), (5, 10), (20, 23), (7, 7), (0, 1)]:
        np.testing.assert_array_equal(store.read_span("imu", lo, hi, buffer), arr[lo:hi])
        np.testing.assert_array_equal(store.read_span("imu", lo, hi), arr[lo:hi])
    np.testing.assert_array_equal(store.read_chunk(4)["id"], _rows()["id"][20:])
    blosc = zarr.open_array(str(tmp_path / "s.zarr" / "b"), mode="r")
    for lo, hi in [(0, 23), (3, 4), (5, 10), (20, 23)]:  # whole chunks and parts of them
        np.testing.assert_array_equal(store.read_span("b", lo, hi), blosc[lo:hi])


def test_a_corrupt_compressed_chunk_is_named(tmp_path: Path) -> None:
    store = _fill(str(tmp_path / "s.zarr"))
    raw = store.raw("b")
    assert isinstance(raw, RawChunks)
    raw.path(2).write_bytes(b"not a blosc frame")
    with pytest.raises(StoreIntegrityError, match=r"c/2/0 does not decompress"):
        ChunkedStore.open(store.url).read_span("b", 10, 12)


def test_marker_listing_equals_the_marker_array(tmp_path: Path) -> None:
    store = ChunkedStore.create(str(tmp_path / "s.zarr"), N_ROWS, CHUNK_ROWS, SPECS,
                                Provenance("imu", "c", "i"))
    rows = _rows()
    for chunk in (1, 3):
        part = store.chunk_slice(chunk)
        store.write_chunk(chunk, {k: v[part] for k, v in rows.items()})
    reopened = ChunkedStore.open(str(tmp_path / "s.zarr"))
    listed = marked(reopened._marker())
    assert listed is not None
    assert listed.tolist() == np.asarray(reopened._marker()[:]).astype(bool).tolist()
    assert reopened.pending_chunks() == [0, 2, 4]


def test_a_missing_or_short_chunk_file_is_named(tmp_path: Path) -> None:
    store = _fill(str(tmp_path / "s.zarr"))
    raw = store.raw("imu")
    assert isinstance(raw, RawChunks)
    chunk_file = raw.path(1)
    chunk_file.write_bytes(chunk_file.read_bytes()[:40])
    with pytest.raises(StoreIntegrityError, match=r"c/1/0 ends .* bytes early"):
        ChunkedStore.open(store.url).read_span("imu", 0, 10)
    chunk_file.unlink()
    with pytest.raises(StoreIntegrityError, match=r"c/1/0 is missing"):
        ChunkedStore.open(store.url).read_chunk(1)


def test_a_file_larger_than_a_write_piece_is_written_whole(tmp_path: Path) -> None:
    data = np.random.default_rng(1).integers(0, 255, 3 * WRITE_PIECE + 17, dtype=np.uint8)
    path = tmp_path / "c" / "0"
    atomic_put(path, memoryview(data), bytes(WRITE_PIECE + 5))  # rows, then zero padding
    got = np.fromfile(path, np.uint8)
    assert got.size == data.size + WRITE_PIECE + 5
    assert np.array_equal(got[: data.size], data) and not got[data.size :].any()
    assert [p.name for p in path.parent.iterdir()] == ["0"]  # no temporary file left
