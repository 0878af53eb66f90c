"""Chunk files written and read with O_DIRECT hold and return exactly the page-cache bytes."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from comodo.stores import directio
from comodo.stores.appender import RowAppender
from comodo.stores.chunked import ArraySpec, ChunkedStore
from comodo.stores.errors import StoreError, StoreIntegrityError
from comodo.stores.provenance import Provenance
from comodo.stores.rawchunks import RawChunks

# 6 float32 channels: 24-byte rows, so chunk edges fall between ALIGN boundaries
SPECS = {"imu": ArraySpec((6,), "float32", "none"), "id": ArraySpec((), "int64", "none")}
N_ROWS, CHUNK_ROWS = 2000, 700


@pytest.fixture(autouse=True)
def _needs_o_direct(tmp_path: Path) -> None:
    try:
        os.close(os.open(tmp_path / "probe", os.O_WRONLY | os.O_CREAT | os.O_DIRECT))
    except OSError as err:
        pytest.skip(f"the test folder's file system refuses O_DIRECT ({err})")
    os.remove(tmp_path / "probe")


def _rows() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {"imu": rng.normal(size=(N_ROWS, 6)).astype(np.float32), "id": rng.integers(0, 9, N_ROWS)}


def _fill(url: str, direct_io: bool) -> ChunkedStore:
    store = ChunkedStore.create(url, N_ROWS, CHUNK_ROWS, SPECS, Provenance("imu", "c", "i"),
                                direct_io=direct_io)
    rows = _rows()
    for chunk in (2, 0, 1):  # the partial last chunk first
        part = store.chunk_slice(chunk)
        store.write_chunk(chunk, {k: v[part] for k, v in rows.items()})
    return store


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("size", [4096, 8192, 5000, 100])
@pytest.mark.parametrize("aligned", [True, False])
def test_put_writes_the_data_then_zeros_and_leaves_no_temp_file(tmp_path: Path, size: int,
                                                                aligned: bool) -> None:
    data = directio.aligned_empty((size,), np.uint8) if aligned else np.empty(size + 1, np.uint8)[1:]
    data[:] = np.random.default_rng(size).integers(1, 255, size)
    cut = size if aligned else size - 7  # a short last chunk: zero-padded to ``size``
    assert directio.put(tmp_path / "f", memoryview(data[:cut]), size)
    assert (tmp_path / "f").read_bytes() == data[:cut].tobytes() + bytes(size - cut)
    assert os.listdir(tmp_path) == ["f"]


def test_read_at_any_offset_and_length_equals_the_file(tmp_path: Path) -> None:
    data = np.random.default_rng(0).integers(0, 255, 3 * 4096 + 50).astype(np.uint8)
    (tmp_path / "f").write_bytes(data.tobytes())
    aligned = directio.aligned_empty((8192,), np.uint8)
    for offset, n in [(0, 4096), (0, 8192), (4096, 4096), (1, 10), (4000, 200), (24, 9000),
                      (3 * 4096, 50), (3 * 4096 + 10, 40)]:
        out = aligned[:n] if n % 4096 == 0 else np.empty(n, np.uint8)
        assert directio.read(tmp_path / "f", offset, memoryview(out)) == n
        np.testing.assert_array_equal(out, data[offset:offset + n])
    out = np.empty(100, np.uint8)
    assert directio.read(tmp_path / "f", len(data) - 30, memoryview(out)) == 30  # the end


def test_a_direct_store_holds_the_bytes_of_a_page_cache_store(tmp_path: Path) -> None:
    direct, plain = _fill(str(tmp_path / "d.zarr"), True), _fill(str(tmp_path / "p.zarr"), False)
    assert isinstance(direct.raw("imu"), RawChunks) and direct.raw("imu").direct
    assert _files(tmp_path / "d.zarr") == _files(tmp_path / "p.zarr")
    reopened = ChunkedStore.open(direct.url, direct_io=True)
    buffer = np.empty((N_ROWS, 6), np.float32)
    for lo, hi in [(0, N_ROWS), (1, 699), (650, 1450), (1399, 1401), (1999, 2000)]:
        np.testing.assert_array_equal(reopened.read_span("imu", lo, hi, buffer), _rows()["imu"][lo:hi])
    np.testing.assert_array_equal(reopened.read_chunk(2)["id"], _rows()["id"][1400:])
    assert plain.raw("imu") is not None and not plain.raw("imu").direct


def test_a_short_chunk_is_named_when_read_around_the_cache(tmp_path: Path) -> None:
    store = _fill(str(tmp_path / "d.zarr"), True)
    chunk_file = store.raw("imu").path(1)
    chunk_file.write_bytes(chunk_file.read_bytes()[:5000])
    with pytest.raises(StoreIntegrityError, match=r"c/1/0 ends .* bytes early"):
        ChunkedStore.open(store.url, direct_io=True).read_span("imu", 0, 1000)


def test_a_file_system_refusing_o_direct_gets_page_cache_io(tmp_path: Path, monkeypatch) -> None:
    real_open = os.open

    def refusing(path, flags, *args, **kwargs):  # as a file system without O_DIRECT answers
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing)
    store = _fill(str(tmp_path / "d.zarr"), True)
    assert not store.raw("imu").direct  # fell back, once, for the rest of the store
    monkeypatch.setattr(os, "open", real_open)
    _fill(str(tmp_path / "p.zarr"), False)
    assert _files(tmp_path / "d.zarr") == _files(tmp_path / "p.zarr")


@pytest.mark.parametrize("direct_io", [True, False])
def test_rows_appended_behind_make_the_created_store(tmp_path: Path, direct_io: bool, monkeypatch) -> None:
    from comodo.stores import appender as appender_module

    monkeypatch.setattr(appender_module, "WRITE_BYTES", CHUNK_ROWS * 32)  # one chunk per write
    _fill(str(tmp_path / "made.zarr"), False)
    grown = RowAppender(str(tmp_path / "grown.zarr"), CHUNK_ROWS, SPECS, Provenance("imu", "c", "i"),
                        direct_io=direct_io)
    rows = _rows()
    for lo, hi in [(0, 300), (300, 1000), (1000, 1001), (1001, 2000)]:
        grown.append({k: v[lo:hi] for k, v in rows.items()})
    assert grown.close().is_complete()
    assert _files(tmp_path / "grown.zarr") == _files(tmp_path / "made.zarr")


def test_a_failed_write_behind_is_raised_and_abort_removes_the_store(tmp_path: Path, monkeypatch) -> None:
    from comodo.stores import appender as appender_module

    monkeypatch.setattr(appender_module, "WRITE_BYTES", CHUNK_ROWS * 32)
    grown = RowAppender(str(tmp_path / "grown.zarr"), CHUNK_ROWS, SPECS, Provenance("imu", "c", "i"),
                        direct_io=True)
    rows = _rows()
    (tmp_path / "grown.zarr" / "imu" / "c" / "1" / "0").mkdir(parents=True)  # chunk 1 can't be a file
    grown.append({k: v[:800] for k, v in rows.items()})  # chunk 0 written behind
    with pytest.raises(IsADirectoryError):
        grown.append({k: v[800:2000] for k, v in rows.items()})
        grown.close()
    grown.abort()
    assert not (tmp_path / "grown.zarr").exists()


def test_rows_appended_from_files_make_the_store_of_rows_appended_as_arrays(tmp_path: Path,
                                                                           monkeypatch) -> None:
    from comodo.stores import appender as appender_module

    monkeypatch.setattr(appender_module, "WRITE_BYTES", CHUNK_ROWS * 24)  # one chunk per write
    spec = {"imu": SPECS["imu"]}
    rows = _rows()["imu"]
    made = RowAppender(str(tmp_path / "made.zarr"), CHUNK_ROWS, spec, Provenance("imu", "c", "i"))
    grown = RowAppender(str(tmp_path / "grown.zarr"), CHUNK_ROWS, spec, Provenance("imu", "c", "i"))
    for k, (lo, hi) in enumerate([(0, 300), (300, 1000), (1000, 1001), (1001, 2000)]):
        made.append({"imu": rows[lo:hi]})
        rows[lo:hi].tofile(tmp_path / f"{k}.f32")
        with open(tmp_path / f"{k}.f32", "rb", buffering=0) as fh:
            grown.append_file(fh, hi - lo)
    made.close(), grown.close()
    assert _files(tmp_path / "grown.zarr") == _files(tmp_path / "made.zarr")
    short = RowAppender(str(tmp_path / "short.zarr"), CHUNK_ROWS, spec, Provenance("imu", "c", "i"))
    with open(tmp_path / "2.f32", "rb", buffering=0) as fh, pytest.raises(StoreError, match="2.f32 ended"):
        short.append_file(fh, 2)
    short.abort()
