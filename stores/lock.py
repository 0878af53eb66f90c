"""One writer per store: a lock object beside the store, taken by every writing stage.

The lock of ``<store>`` is ``<store>.lock`` (``<store>.shard-i-of-n.lock`` for the writer
of shard i of n, which owns distinct chunks): a small JSON file naming the holder's pid,
host and start time. On local disk it is created with ``O_CREAT | O_EXCL``, so of two
writers starting at once exactly one gets it; on object storage it is a lease object put
when absent and read back, so that the writer whose token is there owns it. A second writer
stops at once with a ``StoreLockedError`` naming the holder. The holder renews its lock
(``renewed``) every ``lease_s / 5`` seconds while it writes. A lock left by a dead process of
this host (a killed run), or one not renewed for its ``lease_s`` (a writer on another node
that was killed or lost its machine), is taken over with a warning; any other stale lock is
removed with ``comodo-store unlock <store>``. Lock files without ``renewed`` never expire.

A store is written whole or by the shards of one split (i of n, same n): the whole-store
lock and a shard lock, or shard locks of different n, own overlapping chunks. A writer that
has taken its lock therefore looks for live locks of another kind and, finding one, gives
its own back and stops; of two such writers starting at once neither proceeds.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from comodo.stores import fs
from comodo.stores.backends import local_path, remove_temp_files
from comodo.stores.errors import StoreLockedError

log = logging.getLogger(__name__)

HOST = socket.gethostname()
LEASE_S = 600.0  # a lock not renewed for this long is stale (its holder renews it every fifth)
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def lock_url(url: str, shard: tuple[int, int] = (0, 1)) -> str:
    i, n = shard
    return f"{str(url).rstrip('/')}.lock" if n == 1 else f"{str(url).rstrip('/')}.shard-{i}-of-{n}.lock"


def _now() -> str:
    return datetime.now(timezone.utc).strftime(TIME_FORMAT)


def _holder(lease_s: float) -> dict[str, Any]:
    since = _now()
    return {"pid": os.getpid(), "host": HOST, "since": since, "token": uuid.uuid4().hex,
            "renewed": since, "lease_s": lease_s}


def _expired(holder: Mapping[str, Any]) -> bool:
    """Whether ``holder`` was last renewed more than its ``lease_s`` ago (never without one)."""
    try:
        renewed = datetime.strptime(str(holder["renewed"]), TIME_FORMAT).replace(tzinfo=timezone.utc)
        lease_s = float(holder["lease_s"])
    except (KeyError, TypeError, ValueError):
        return False
    return (datetime.now(timezone.utc) - renewed).total_seconds() > lease_s


def _read(filesystem: Any, path: str) -> dict[str, Any] | None:
    """The holder recorded in a lock file; None when it is gone; {} when unreadable (a
    writer between creating and filling it, or a damaged file)."""
    for _ in range(5):
        try:
            data = filesystem.cat_file(path)
        except FileNotFoundError:
            return None
        try:
            return dict(json.loads(data))
        except ValueError:
            time.sleep(0.05)
    return {}


def _create(filesystem: Any, path: str, holder: dict[str, Any], local: bool) -> bool:
    """Create the lock file only if absent; True when this writer now holds it."""
    body = json.dumps(holder).encode()
    if local:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        return True
    if filesystem.exists(path):  # object storage: a lease put when absent, then read back
        return False
    filesystem.pipe_file(path, body)
    return (_read(filesystem, path) or {}).get("token") == holder["token"]


def _split_of(lock_path: str) -> tuple[int, int]:
    """(i, n) of a shard lock file's name; (0, 1) for the whole-store lock."""
    name = lock_path.rsplit("/", 1)[-1]
    if ".shard-" not in name:
        return (0, 1)
    try:
        i, n = name.rsplit(".shard-", 1)[1][: -len(".lock")].split("-of-")
        return int(i), int(n)
    except ValueError:  # not a name this module writes: treated as the whole store's
        return (0, 1)


def _other_kinds(filesystem: Any, path: str, shard: tuple[int, int]) -> list[str]:
    """The lock files of the same store whose writers may own chunks of ``shard``: the
    whole-store lock for a shard, any shard lock for the whole store, shard locks of another
    split for a shard."""
    base = path[: -len(".lock")].split(".shard-")[0]
    found = [f"{base}.lock", *filesystem.glob(f"{base}.shard-*-of-*.lock")]
    name = path.rsplit("/", 1)[-1]
    return [p for p in found if p.rsplit("/", 1)[-1] != name
            and (shard[1] == 1 or _split_of(p)[1] != shard[1])]


def _what(shard: tuple[int, int]) -> str:
    return "the whole store" if shard[1] == 1 else f"shard {shard[0]}/{shard[1]}"


def _check_other_kinds(url: str, filesystem: Any, path: str, shard: tuple[int, int],
                       holder: dict[str, Any]) -> None:
    """Give ``holder``'s lock back and raise when a live writer of another kind holds the
    store; stale ones (a dead process of this host, a lease not renewed) are removed with a
    warning."""
    for other in _other_kinds(filesystem, path, shard):
        found = _read(filesystem, other)
        if found is None:
            continue
        if _is_stale(found):
            log.warning("store %s: removing the lock %s of %s", url, other, _why_stale(found))
            _remove_if_holder(filesystem, other, found)
            continue
        _remove_if_holder(filesystem, path, holder)
        if not found:
            raise StoreLockedError(f"store {url} is locked by {other}, which cannot be read; if no "
                                   f"writer is running, remove it with `comodo-store unlock {url}`")
        raise StoreLockedError(
            f"store {url} is being written as {_what(_split_of(other))} by pid {found.get('pid')} "
            f"on host {found.get('host')} since {found.get('since')}, which owns chunks this writer "
            f"({_what(shard)}) would write; wait, run the shards of one split only, or remove a "
            f"stale lock with `comodo-store unlock {url}`")


def _is_stale(holder: Mapping[str, Any]) -> bool:
    pid = holder.get("pid")
    dead_here = holder.get("host") == HOST and isinstance(pid, int) and not fs.pid_alive(pid)
    return dead_here or _expired(holder)


def _why_stale(holder: Mapping[str, Any]) -> str:
    if holder.get("host") == HOST and not _expired(holder):
        return f"pid {holder.get('pid')} on this host, which is no longer running"
    return (f"pid {holder.get('pid')} on host {holder.get('host')}, not renewed since "
            f"{holder.get('renewed')} (lease {holder.get('lease_s')} s)")


def _refuse(url: str, shard: tuple[int, int], holder: Mapping[str, Any], path: str) -> StoreLockedError:
    what = f"store {url}" + (f" (shard {shard[0]}/{shard[1]})" if shard[1] > 1 else "")
    if not holder:
        return StoreLockedError(f"{what} is locked by {path}, which cannot be read; if no writer is "
                                f"running, remove it with `comodo-store unlock {url}`")
    return StoreLockedError(
        f"{what} is being written by pid {holder.get('pid')} on host {holder.get('host')} since "
        f"{holder.get('since')}; wait or remove the stale lock with `comodo-store unlock {url}`")


def _locate(url: str, storage_options: Mapping[str, Any] | None, shard: tuple[int, int]
            ) -> tuple[str, Any, str]:
    """The lock's URL, its filesystem and the path on it (absolute on local disk)."""
    path = lock_url(url, shard)
    filesystem, inner = fs.filesystem(path, **(storage_options or {}))
    return path, filesystem, local_path(path) if fs.is_local(path) else inner


def acquire(url: str, storage_options: Mapping[str, Any] | None = None,
            shard: tuple[int, int] = (0, 1), lease_s: float = LEASE_S) -> dict[str, Any]:
    """Take the write lock of ``url`` (or of its shard) or raise ``StoreLockedError``."""
    path, filesystem, target = _locate(url, storage_options, shard)
    holder = _holder(lease_s)
    for _ in range(3):
        if _create(filesystem, target, holder, fs.is_local(path)):
            _check_other_kinds(url, filesystem, target, shard, holder)
            if shard[1] == 1 and fs.is_local(url) and os.path.isdir(local_path(url)):
                remove_temp_files(local_path(url))  # no one else writes it now
            return holder
        found = _read(filesystem, target)
        if found is None:
            continue  # released meanwhile
        if not _is_stale(found):
            raise _refuse(url, shard, found, path)
        log.warning("store %s: taking over the lock of %s", url, _why_stale(found))
        _remove_if_holder(filesystem, target, found)
    raise _refuse(url, shard, _read(filesystem, target) or {}, path)


def _remove_if_holder(filesystem: Any, path: str, holder: Mapping[str, Any]) -> None:
    """Remove the lock file if it still names ``holder`` (not a newer writer's)."""
    if (_read(filesystem, path) or {}).get("token") == holder.get("token"):
        try:
            filesystem.rm_file(path)
        except FileNotFoundError:
            pass


def release(url: str, holder: Mapping[str, Any], storage_options: Mapping[str, Any] | None = None,
            shard: tuple[int, int] = (0, 1)) -> None:
    _path, filesystem, target = _locate(url, storage_options, shard)
    _remove_if_holder(filesystem, target, holder)


def renew(url: str, holder: dict[str, Any], storage_options: Mapping[str, Any] | None = None,
          shard: tuple[int, int] = (0, 1)) -> bool:
    """Write ``holder``'s lock again with ``renewed`` now; False (and an error logged) when the
    lock no longer names it: another writer took it over, so two may be writing."""
    path, filesystem, target = _locate(url, storage_options, shard)
    found = _read(filesystem, target)
    if (found or {}).get("token") != holder["token"]:
        log.error("store %s: this writer's lock %s was removed or taken over (it now names %s); "
                  "stop the other writer or this one, then run `comodo-store verify`", url, path,
                  found)
        return False
    holder["renewed"] = _now()
    body = json.dumps(holder).encode()
    if fs.is_local(path):
        tmp = f"{target}.{holder['token']}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(body)
        os.replace(tmp, target)  # readers see the old or the new body, never half of one
    else:
        filesystem.pipe_file(target, body)
    return True


@contextmanager
def write_lock(url: str, storage_options: Mapping[str, Any] | None = None,
               shard: tuple[int, int] = (0, 1), lease_s: float = LEASE_S) -> Iterator[None]:
    """Hold the write lock of ``url`` (or of its shard) for the block, renewing it every
    ``lease_s / 5`` seconds on a background thread."""
    holder = acquire(url, storage_options, shard, lease_s)
    stop = threading.Event()

    def keep_renewed() -> None:
        while not stop.wait(lease_s / 5):
            try:
                if not renew(url, holder, storage_options, shard):
                    return
            except Exception as err:  # any storage error: retried at the next tick, never raised here
                log.warning("store %s: could not renew the write lock: %s", url, err)

    renewer = threading.Thread(target=keep_renewed, name=f"lock-renew {url}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        release(url, holder, storage_options, shard)


def unlock(url: str, storage_options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Remove every lock of ``url`` (whole store and shards); the holders they named."""
    filesystem, inner = fs.filesystem(lock_url(url), **(storage_options or {}))
    base = inner[: -len(".lock")]
    removed = []
    for path in [inner, *filesystem.glob(f"{base}.shard-*-of-*.lock")]:
        found = _read(filesystem, path)
        if found is None:
            continue
        filesystem.rm_file(path)
        removed.append({"lock": path, **found})
    return removed
