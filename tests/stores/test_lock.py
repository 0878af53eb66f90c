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
        with lock.write_lock(url, options, shard=(1, 2)):  # a shard's writer owns other chunks
            pass
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
