"""One flipped byte in any chunk of any store kind: `comodo-store verify` and `comodo distill`
name the store, array and chunk in one line and exit 1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from comodo.cli.main import app as comodo_app
from comodo.cli.store import app as store_app
from comodo.pipeline.stages.imu import ImuConfig, _store_layout
from comodo.pipeline.training.synthetic import write_paired_stores
from comodo.stores.appender import RowAppender
from comodo.stores.chunked import ArraySpec, ChunkedStore
from comodo.stores.errors import StoreCorruptError
from comodo.stores.provenance import Provenance

from .test_distill_cli import _params

runner = CliRunner()
CHUNK_ROWS = 16
# (store, array): the imu stage's layout, the windows store, a float16 pooled store without a
# codec, and the features stage's layout (zstd pooled and frames, valid flags)
DAMAGED = [("imu.zarr", "imu"), ("windows.zarr", "imu"), ("features/t.zarr", "pooled"),
           ("features/f.zarr", "pooled"), ("features/f.zarr", "frames"), ("features/f.zarr", "valid")]


def _imu_store(root: Path) -> None:
    arrays, attrs = _store_layout(ImuConfig(chunk_rows=CHUNK_ROWS), ["ax", "ay"], ["g", "g"])
    appender = RowAppender(str(root / "imu.zarr"), CHUNK_ROWS, arrays, Provenance("imu", "a", "b"),
                           attrs=attrs)
    appender.append({"imu": np.random.default_rng(0).standard_normal((50, 2)).astype(np.float32)})
    appender.close()


def _features_store(root: Path, n_rows: int) -> None:
    arrays = {"pooled": ArraySpec((4,), "float16", "zstd"), "frames": ArraySpec((2, 4), "float16", "zstd"),
              "valid": ArraySpec((), "uint8", "zstd")}
    store = ChunkedStore.create(str(root / "features" / "f.zarr"), n_rows, CHUNK_ROWS, arrays,
                                Provenance("features", "a", "b"))
    rng = np.random.default_rng(1)
    for chunk in range(store.n_chunks):
        n = len(range(n_rows)[store.chunk_slice(chunk)])
        store.write_chunk(chunk, {"pooled": rng.standard_normal((n, 4)), "valid": np.ones(n, np.uint8),
                                  "frames": rng.standard_normal((n, 2, 4))})


@pytest.fixture
def stores(tmp_path: Path) -> Path:
    root = tmp_path / "data" / "ds"
    write_paired_stores(root, 64, n_channels=2, n_samples=16, teacher_dim=4, chunk_rows=CHUNK_ROWS,
                        teacher_key="t")
    _imu_store(root)
    _features_store(root, 64)
    return root


def flip_byte(store: Path, array: str, chunk: int) -> Path:
    """Flip the middle byte of ``array``'s chunk file for row chunk ``chunk``."""
    (path,) = [p for p in (store / array / "c" / str(chunk)).rglob("*") if p.is_file()] or [
        store / array / "c" / str(chunk)]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(("name", "array"), DAMAGED)
def test_verify_names_the_damaged_chunk_and_a_read_raises_a_named_error(stores, name, array):
    url = str(stores / name)
    key = flip_byte(stores / name, array, 1).relative_to(stores / name).as_posix()
    result = runner.invoke(store_app, ["verify", url])
    assert result.exit_code == 1
    problems = [line for line in result.stderr.splitlines() if line.startswith("problem:")]
    assert len(problems) == 1, result.stderr
    assert f"store {url}: array '{array}' chunk 1 (rows 16..31): chunk file {key} is damaged" in problems[0]
    assert "checksum" in problems[0]
    store = ChunkedStore.open(url)
    with pytest.raises(StoreCorruptError, match=rf"store {url}: array '{array}' chunk 1 \(rows 16\.\.31\)"):
        store.read(array)
    store.read_span(array, 0, 16)  # the other chunks still read


@pytest.mark.parametrize(("name", "array", "loaders"), [
    ("windows.zarr", "imu", 0), ("features/t.zarr", "pooled", 0), ("windows.zarr", "imu", 1)])
def test_distill_on_a_damaged_chunk_stops_with_one_line_naming_it(stores, tmp_path, name, array, loaders):
    flip_byte(stores / name, array, 1)
    params = _params(tmp_path, num_workers=loaders)  # 1: read in a DataLoader worker process
    result = runner.invoke(comodo_app, ["distill", "--dataset", "ds", "--params", params,
                                        "--run-name", "r1", "--device", "cpu"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: store "), result.stderr
    assert f"{name}: array '{array}' chunk 1 (rows 16..31) cannot be read" in lines[0]
