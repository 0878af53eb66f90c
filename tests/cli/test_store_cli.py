"""`comodo-store` ls / inspect / verify: exit codes, stdout results, stderr problems."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from comodo.cli.store import app
from comodo.stores.chunked import ArraySpec, ChunkedStore
from comodo.stores.index import write_table
from comodo.stores.provenance import Provenance

runner = CliRunner()
SPECS = {"pooled": ArraySpec((4,), "float16"), "label_id": ArraySpec((), "int64")}


def make_store(root: Path, name: str, n_rows: int = 12, chunks: list[int] | None = None) -> str:
    """data/<name>/windows.parquet + data/<name>/features/t.zarr, 3 chunks of 4 rows."""
    labels = ["walk", "run", "walk"] * (n_rows // 3)
    table = pl.DataFrame({"window_id": np.arange(n_rows), "label": labels})
    write_table(table, str(root / name / "windows.parquet"))
    url = str(root / name / "features" / "t.zarr")
    prov = Provenance("features", "cfg-1", "in-1", details={"model": "tiny"})
    store = ChunkedStore.create(url, 12, 4, SPECS, prov, index="../../windows.parquet")
    for chunk in range(3) if chunks is None else chunks:
        store.write_chunk(chunk, {"pooled": np.full((4, 4), chunk + 0.5), "label_id": np.ones(4)})
    return url


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path / "data"


def test_without_arguments_it_lists_its_commands():
    result = runner.invoke(app, [])
    assert "inspect" in result.output and "verify" in result.output and "ls" in result.output


def test_verify_clean_store_exits_0_and_says_ok(data_dir):
    url = make_store(data_dir, "ds")
    result = runner.invoke(app, ["verify", url])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"ok {url} (3/3 chunks, arrays: pooled, label_id)")
    assert "problem" not in result.stderr


def test_verify_exits_1_naming_every_problem_on_stderr(data_dir):
    url = make_store(data_dir, "ds")
    (Path(url) / "pooled" / "c" / "1" / "0").unlink()
    write_table(pl.DataFrame({"window_id": np.arange(10)}), str(data_dir / "ds" / "windows.parquet"))
    result = runner.invoke(app, ["verify", url])
    assert result.exit_code == 1
    problems = [line for line in result.stderr.splitlines() if line.startswith("problem: ")]
    assert len(problems) == 2, result.stderr
    assert "array 'pooled' chunk 1 (rows 4..7): chunk file pooled/c/1/0 is missing" in problems[0]
    assert "windows.parquet has 10 rows, the store has 12" in problems[1]
    assert "2 problem(s) in 1 of 1 store(s)" in result.stderr
    assert result.stdout == ""


def test_verify_of_a_folder_checks_every_store_in_it(data_dir):
    make_store(data_dir, "a")
    make_store(data_dir, "b", chunks=[0])
    result = runner.invoke(app, ["verify", "data", "--json"])
    assert result.exit_code == 1
    reports = {Path(r["url"]).parts[1]: r for r in json.loads(result.stdout)}
    assert reports["a"]["ok"] and not reports["b"]["ok"]
    assert "2/3 chunks are not marked complete" in reports["b"]["problems"][0]


def test_verify_of_a_missing_path_is_one_error_line_and_exit_1(data_dir):
    result = runner.invoke(app, ["verify", "nowhere"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: no folder or store at nowhere")


def test_inspect_json_has_arrays_completeness_provenance_and_labels(data_dir):
    make_store(data_dir, "ds", chunks=[0, 2])
    result = runner.invoke(app, ["inspect", "--json"])  # default PATH: data
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    (store,) = out["stores"]
    assert store["url"] == "data/ds/features/t.zarr"
    assert store["percent_complete"] == pytest.approx(66.67)
    assert store["provenance"]["config_hash"] == "cfg-1"
    assert store["provenance"]["details"] == {"model": "tiny"}
    assert store["label_counts"] == {"run": 4, "walk": 8}
    pooled = store["arrays"][0]
    assert {k: pooled[k] for k in ("name", "shape", "dtype", "chunks")} == {
        "name": "pooled", "shape": [12, 4], "dtype": "float16", "chunks": [4, 4]
    }
    assert pooled["codecs"] == ["bytes(endian=little)", "zstd(level=3, checksum=False)", "crc32c"]
    assert pooled["bytes_on_disk"] > 0 and pooled["bytes_raw"] == 96 and pooled["ratio"] > 0
    assert [t["url"] for t in out["tables"]] == ["data/ds/windows.parquet"]


def test_inspect_renders_a_table_per_store_with_provenance_and_labels(data_dir):
    make_store(data_dir, "ds")
    result = runner.invoke(app, ["inspect"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "data/ds/features/t.zarr" in text and "pooled" in text and "(12, 4)" in text
    assert "3/3 complete (100.0%)" in text
    assert "config_hash=cfg-1" in text and 'model: "tiny"' in text
    assert "labels (2): run=4, walk=8" in text


def test_ls_prints_one_line_per_store(data_dir):
    make_store(data_dir, "a")
    make_store(data_dir, "b", chunks=[1])
    result = runner.invoke(app, ["ls"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].split() == ["data/a/features/t.zarr", "12", "rows", "100.0%", "complete", "features"]
    assert lines[1].split()[3] == "33.3%"
    listed = json.loads(runner.invoke(app, ["ls", "--json"]).stdout)
    assert listed[1] == {"url": "data/b/features/t.zarr", "n_rows": 12, "percent_complete": 33.33,
                         "stage": "features"}


def test_inspect_of_one_table_or_one_store_shows_just_that(data_dir):
    url = make_store(data_dir, "ds")
    table = json.loads(runner.invoke(app, ["inspect", "data/ds/windows.parquet", "--json"]).stdout)
    assert table == {"stores": [], "tables": [{
        "url": "data/ds/windows.parquet", "kind": "table", "n_rows": 12,
        "columns": ["window_id", "label"], "label_counts": {"run": 4, "walk": 8},
    }]}
    store = json.loads(runner.invoke(app, ["inspect", url, "--json"]).stdout)
    assert [s["url"] for s in store["stores"]] == [url] and store["tables"] == []


def test_unlock_removes_a_stale_lock_and_says_whose(data_dir):
    url = make_store(data_dir, "s.zarr")
    lock_file = Path(f"{url}.lock")
    lock_file.write_text(json.dumps({"pid": 4242, "host": "elsewhere", "since": "2026-01-01T00:00:00Z"}))
    result = runner.invoke(app, ["unlock", url])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == (f"removed {lock_file} (pid 4242 on host elsewhere since "
                                     "2026-01-01T00:00:00Z)")
    assert not lock_file.exists()
    assert runner.invoke(app, ["unlock", url]).stdout.strip() == f"{url} has no write lock"
