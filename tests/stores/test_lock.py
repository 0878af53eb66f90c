"""The write lock on every backend: one holder at a time, released at the end, stale ones taken over."""

from __future__ import annotations

import json
import time

import pytest

from comodo.stores import lock
from comodo.stores.errors import StoreLockedError


def test_a_second_writer_is_refused_until_the_first_releases(backend):
    url, options = backend.url("s.zarr"), backend.storage_options
    with lock.write_lock(url, options):
        refused = r"is being written by pid \d+ on host .* since .*Z; wait or remove the stale lock with "
        with pytest.raises(StoreLockedError, match=refused + "`comodo-store unlock "):
            lock.acquire(url, options)
    with lock.write_lock(url, options):  # released: the next writer gets it
        pass
    assert lock.unlock(url, options) == []


def test_a_dead_local_holders_lock_is_taken_over_and_a_foreign_one_is_not(backend):
    url, options = backend.url("s.zarr"), backend.storage_options
    filesystem = backend.filesystem()
    path = backend.fs_path("s.zarr.lock")
    dead = {"pid": 2 ** 22 + 1, "host": lock.HOST, "since": "T0", "token": "x"}
    filesystem.pipe_file(path, json.dumps(dead).encode())
    with lock.write_lock(url, options):  # pid 2**22+1 does not exist here
        pass
    filesystem.pipe_file(path, json.dumps({"pid": 1, "host": "elsewhere", "since": "T0"}).encode())
    with pytest.raises(StoreLockedError, match="by pid 1 on host elsewhere since T0"):
        lock.acquire(url, options)
    assert [h["host"] for h in lock.unlock(url, options)] == ["elsewhere"]


def test_the_whole_store_and_its_shards_or_two_splits_exclude_each_other(backend):
    url, options = backend.url("s.zarr"), backend.storage_options
    owns = r"which owns chunks this writer \({}\) would write; wait, run the shards of one split only"
    with lock.write_lock(url, options):
        with pytest.raises(StoreLockedError, match=r"being written as the whole store by pid \d+ .*"
                           + owns.format("shard 1/2")):
            lock.acquire(url, options, shard=(1, 2))
    assert not backend.filesystem().exists(backend.fs_path("s.zarr.shard-1-of-2.lock"))  # given back
    with lock.write_lock(url, options, shard=(0, 2)):
        with lock.write_lock(url, options, shard=(1, 2)):  # one split: distinct chunks
            with pytest.raises(StoreLockedError, match="being written as shard [01]/2 .*"
                               + owns.format("the whole store")):
                lock.acquire(url, options)
            with pytest.raises(StoreLockedError, match=owns.format("shard 2/3")):
                lock.acquire(url, options, shard=(2, 3))
    assert lock.unlock(url, options) == []


def test_a_dead_local_shard_writers_lock_does_not_block_the_whole_store(backend, caplog):
    url, options = backend.url("s.zarr"), backend.storage_options
    path = backend.fs_path("s.zarr.shard-0-of-2.lock")
    dead = {"pid": 2 ** 22 + 1, "host": lock.HOST, "since": "T0", "token": "x"}
    backend.filesystem().pipe_file(path, json.dumps(dead).encode())
    with caplog.at_level("WARNING"), lock.write_lock(url, options):
        assert not backend.filesystem().exists(path)
    assert "shard-0-of-2.lock of pid 4194305" in caplog.text and "no longer running" in caplog.text


def test_a_lease_not_renewed_for_its_term_is_taken_over_from_any_host(backend, caplog):
    url, options = backend.url("s.zarr"), backend.storage_options
    old = {"pid": 1, "host": "elsewhere", "since": "2026-01-01T00:00:00Z", "token": "x",
           "renewed": "2026-01-01T00:05:00Z", "lease_s": 600}
    backend.filesystem().pipe_file(backend.fs_path("s.zarr.lock"), json.dumps(old).encode())
    with caplog.at_level("WARNING"), lock.write_lock(url, options):
        pass
    assert "pid 1 on host elsewhere, not renewed since 2026-01-01T00:05:00Z (lease 600 s)" in caplog.text


def test_a_writer_renews_its_lease_so_it_is_not_taken_over(backend):
    url, options = backend.url("s.zarr"), backend.storage_options
    path = backend.fs_path("s.zarr.lock")
    with lock.write_lock(url, options, lease_s=1.0):  # renewed every 0.2 s
        first = json.loads(backend.filesystem().cat_file(path))
        time.sleep(2.5)  # more than the lease: only renewals keep it
        now = json.loads(backend.filesystem().cat_file(path))
        assert now["token"] == first["token"] and now["renewed"] > first["renewed"]
        with pytest.raises(StoreLockedError, match="is being written by pid"):
            lock.acquire(url, options)
    assert not backend.filesystem().exists(path)


def test_renewing_a_lock_that_was_taken_over_reports_it(backend, caplog):
    url, options = backend.url("s.zarr"), backend.storage_options
    holder = lock.acquire(url, options)
    other = {**holder, "token": "someone-else"}
    backend.filesystem().pipe_file(backend.fs_path("s.zarr.lock"), json.dumps(other).encode())
    with caplog.at_level("ERROR"):
        assert not lock.renew(url, holder, options)
    assert "was removed or taken over" in caplog.text
    kept = json.loads(backend.filesystem().cat_file(backend.fs_path("s.zarr.lock")))
    assert kept["token"] == "someone-else"  # the other writer's lock is left as it is
