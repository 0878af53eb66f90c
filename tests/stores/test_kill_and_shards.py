"""Writers in child processes: SIGKILL mid-write then resume, and two shard writers at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from comodo.stores import lock
from comodo.stores.chunked import ChunkedStore

WRITER = str(Path(__file__).with_name("store_writer.py"))


def writer(url: str, *args: str, options: dict | None = None) -> subprocess.Popen:
    cmd = [sys.executable, WRITER, url, "--storage-options", json.dumps(options or {}), *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 60) -> list[str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"writer failed ({proc.returncode}): {err[-2000:]}"
    return out.splitlines()


def assert_same_store(url: str, ref: str, layout, tree_bytes, options: dict | None = None) -> None:
    got = ChunkedStore.open(url, storage_options=options)
    assert got.is_complete()
    want = layout.expected_arrays()
    for name in layout.SPECS:
        np.testing.assert_array_equal(got.read_rows(name, np.arange(layout.N_ROWS)), want[name])
    files, ref_files = tree_bytes(url, options), tree_bytes(ref, options)
    assert sorted(files) == sorted(ref_files)
    assert files == ref_files, [k for k in files if files[k] != ref_files[k]]


@pytest.mark.timeout(120)
def test_sigkilled_writer_resumes_to_the_same_bytes(tmp_path, layout, tree_bytes):
    ref, url = str(tmp_path / "ref.zarr"), str(tmp_path / "killed.zarr")
    write_reference(ref, layout)
    proc = writer(url, "--delay", "0.4")
    assert proc.stdout is not None
    wrote = 0
    while wrote < 2:
        line = proc.stdout.readline()
        assert line, f"writer ended early: {proc.stderr.read() if proc.stderr else ''}"
        wrote += line.startswith("wrote ")
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    done = ChunkedStore.open(url).n_complete()
    assert 2 <= done < layout.N_CHUNKS, "the kill must land mid-way"
    lines = finish(writer(url))
    assert lines[0] == f"pending {layout.N_CHUNKS - done}"
    assert_same_store(url, ref, layout, tree_bytes)


def test_of_two_writers_started_at_once_one_proceeds_and_the_other_stops(tmp_path, layout):
    url = str(tmp_path / "s.zarr")
    procs = [writer(url, "--delay", "0.3") for _ in range(2)]
    results = [(p.wait(timeout=60), p.stdout.read(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    assert sorted(rc for rc, _, _ in results) == [0, 1]
    (_, out, _), = [r for r in results if r[0] == 0]
    (_, _, err), = [r for r in results if r[0] == 1]
    assert f"pending {layout.N_CHUNKS}" in out
    winner = next(p.pid for p in procs if p.returncode == 0)
    assert err.strip().splitlines() == [
        f"store {url} is being written by pid {winner} on host {lock.HOST} since "
        f"{err.split(' since ')[1].split(';')[0]}; wait or remove the stale lock with "
        f"`comodo-store unlock {url}`"]
    assert not Path(lock.lock_url(url)).exists()  # released by the writer that finished
    assert ChunkedStore.open(url).is_complete()


def test_a_killed_writers_lock_is_taken_over_and_partial_files_removed(tmp_path, layout, caplog):
    url = str(tmp_path / "s.zarr")
    ChunkedStore.create(url, layout.N_ROWS, layout.CHUNK_ROWS, layout.SPECS, layout.provenance())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    Path(lock.lock_url(url)).write_text(json.dumps(
        {"pid": int(dead.stdout), "host": lock.HOST, "since": "2026-01-01T00:00:00Z", "token": "x"}))
    partial = tmp_path / "s.zarr" / "pooled" / "c" / "0.abc.partial"
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"x")
    with caplog.at_level("WARNING"), lock.write_lock(url):
        assert json.loads(Path(lock.lock_url(url)).read_text())["pid"] == os.getpid()
        assert not partial.exists()
    assert "taking over the lock of pid" in caplog.text
    assert not Path(lock.lock_url(url)).exists()


def write_reference(url: str, layout, options: dict | None = None) -> None:
    """An uninterrupted single-process write, in this process."""
    args = (layout.N_ROWS, layout.CHUNK_ROWS, layout.SPECS, layout.provenance())
    store = ChunkedStore.create(url, *args, storage_options=options)
    layout.write(store, store.pending_chunks())


def run_two_shards(url: str, layout, options: dict | None = None) -> list[list[str]]:
    args = (layout.N_ROWS, layout.CHUNK_ROWS, layout.SPECS, layout.provenance())
    ChunkedStore.create(url, *args, storage_options=options)
    procs = [
        writer(url, "--shard", str(i), "--n-shards", "2", "--delay", "0.3", options=options)
        for i in range(2)
    ]
    return [finish(p) for p in procs]


def times(lines: list[str], key: str) -> float:
    return next(float(line.split()[1]) for line in lines if line.startswith(key + " "))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("where", ["local", "s3"])
def test_two_shard_writers_at_once_equal_one_writer(where, request, tmp_path, layout, tree_bytes):
    if where == "local":
        root, options = str(tmp_path), None
    else:
        server = request.getfixturevalue("s3_server")
        root, options = server.fresh_prefix(), server.storage_options
    ref, url = f"{root}/ref.zarr", f"{root}/sharded.zarr"
    write_reference(ref, layout, options)
    out = run_two_shards(url, layout, options)
    assert [lines[0] for lines in out] == ["pending 2", "pending 3"]  # chunks 0-1 and 2-4
    assert max(times(x, "start") for x in out) < min(times(x, "end") for x in out), "no overlap"
    assert_same_store(url, ref, layout, tree_bytes, options)


def test_local_chunk_files_are_replaced_never_rewritten_in_place(local, layout):
    """A reader holding the old chunk file keeps reading whole old bytes while it is rewritten."""
    store = local.fill(local.create(), [0])
    path = Path(local.url("s.zarr", "pooled", "c", "0", "0"))
    old_bytes, old_inode = path.read_bytes(), path.stat().st_ino
    with path.open("rb") as reader:
        store.write_chunk(0, {k: v + 1 for k, v in layout.chunk_data(0, 5).items()})
        assert reader.read() == old_bytes
    assert path.stat().st_ino != old_inode and path.read_bytes() != old_bytes
    assert not list(path.parent.glob("*.partial"))
