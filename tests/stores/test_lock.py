"""The write lock on every backend: one holder at a time, released at the end, stale ones taken over."""

from __future__ import annotations

import json

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
