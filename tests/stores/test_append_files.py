"""Rows handed to the appender in files (the imu stage's hand-over files) are copied into
plain chunk files in the kernel, and make the bytes of the same rows appended as arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from comodo.stores import appender as appender_module
from comodo.stores.appender import RowAppender
from comodo.stores.chunked import ArraySpec
from comodo.stores.errors import StoreError
from comodo.stores.provenance import Provenance
from comodo.stores.rawchunks import RawChunks

CHUNK_ROWS = 100
SPEC = {"imu": ArraySpec((6,), "float32", "none")}
PIECES = [(0, 30), (30, 130), (130, 131), (131, 131), (131, 420), (420, 555)]  # across chunk edges


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _appender(path: Path) -> RowAppender:
    return RowAppender(str(path), CHUNK_ROWS, SPEC, Provenance("imu", "c", "i"))


def _rows() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(555, 6)).astype(np.float32)


def _give(appender: RowAppender, path: Path, n_rows: int, done: list[int], k: int) -> None:
    """``path``'s rows to ``appender``, which closes the file and notes ``k`` when done."""
    fh = open(path, "rb", buffering=0)  # noqa: SIM115 - closed when handed back
    appender.append_file(fh, n_rows, on_done=lambda: (fh.close(), done.append(k)))


def _hand_over(tmp_path: Path, rows: np.ndarray, pieces: list[tuple[int, int]]) -> list[Path]:
    paths = []
    for k, (lo, hi) in enumerate(pieces):
        paths.append(tmp_path / f"{k}.f32")
        rows[lo:hi].tofile(paths[-1])
    return paths


@pytest.mark.parametrize("chunks_per_write", [1, 3])
def test_rows_in_files_make_the_store_of_rows_appended_as_arrays(tmp_path: Path, monkeypatch,
                                                                 chunks_per_write: int) -> None:
    monkeypatch.setattr(appender_module, "WRITE_BYTES", chunks_per_write * CHUNK_ROWS * 24)
    sent = []
    real = RawChunks.write_from
    monkeypatch.setattr(RawChunks, "write_from", lambda self, c, r: (sent.append(c), real(self, c, r)))
    rows = _rows()
    made, grown = _appender(tmp_path / "made.zarr"), _appender(tmp_path / "grown.zarr")
    done: list[int] = []
    for k, ((lo, hi), path) in enumerate(zip(PIECES, _hand_over(tmp_path, rows, PIECES))):
        made.append({"imu": rows[lo:hi]})
        _give(grown, path, hi - lo, done, k)
    made.close(), grown.close()
    assert _files(tmp_path / "grown.zarr") == _files(tmp_path / "made.zarr")
    assert sorted(done) == list(range(len(PIECES)))  # each file handed back once, when written
    assert sorted(sent) == [0, 1, 2, 3, 4, 5]  # every chunk copied from the files


def test_rows_in_files_and_arrays_mix(tmp_path: Path) -> None:
    rows = _rows()
    made, grown = _appender(tmp_path / "made.zarr"), _appender(tmp_path / "grown.zarr")
    paths = _hand_over(tmp_path, rows, PIECES)
    done: list[int] = []
    for k, ((lo, hi), path) in enumerate(zip(PIECES, paths)):
        made.append({"imu": rows[lo:hi]})
        if k % 2:
            grown.append({"imu": rows[lo:hi]})
        else:
            _give(grown, path, hi - lo, done, k)
    made.close(), grown.close()
    assert _files(tmp_path / "grown.zarr") == _files(tmp_path / "made.zarr")
    assert sorted(done) == [0, 2, 4]


def test_abort_hands_back_every_file_and_a_short_one_is_named(tmp_path: Path) -> None:
    rows = _rows()
    paths = _hand_over(tmp_path, rows, PIECES)
    given_up = _appender(tmp_path / "given_up.zarr")
    done: list[int] = []
    for k, ((lo, hi), path) in enumerate(zip(PIECES[:3], paths)):
        _give(given_up, path, hi - lo, done, k)
    given_up.abort()
    assert sorted(done) == [0, 1, 2] and not (tmp_path / "given_up.zarr").exists()
    short = _appender(tmp_path / "short.zarr")
    _give(short, paths[1], 150, done, 9)  # it holds 100 rows
    with pytest.raises(StoreError, match=r"1\.f32 ended 1200 bytes early"):
        short.close()
    short.abort()
    assert done[-1] == 9


def test_an_empty_file_is_handed_back_at_once(tmp_path: Path) -> None:
    (tmp_path / "empty.f32").write_bytes(b"")
    grown, done = _appender(tmp_path / "grown.zarr"), []
    _give(grown, tmp_path / "empty.f32", 0, done, 7)
    assert done == [7]
    grown.close()
