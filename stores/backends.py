"""Store URLs to zarr stores: local folders with atomic writes, fsspec for the rest.

zarr-python before 3.1.3 wrote local chunk files in place, so a reader (or a writer killed
mid-write) could leave a torn file. Here each value goes to ``<key>.<host>-<pid>-<hex>.partial``
in the same folder and is then renamed over the key, whatever zarr version is installed.
A writer killed between the two steps leaves only a ``.partial`` file, which the next writer
opening the store removes once its owning process is gone. Data are not fsynced: a chunk is
safe against a killed process, and damage after a power cut is what ``verify`` detects.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from zarr.core.buffer import Buffer
from zarr.storage import LocalStore

from comodo.stores import fs
from comodo.stores.errors import StoreError

log = logging.getLogger(__name__)

TEMP_SUFFIX = ".partial"
_HOST = "".join(c if c.isalnum() else "_" for c in socket.gethostname().split(".")[0]) or "host"


def local_path(url: str) -> str:
    """Absolute local path of a plain path or a file:// URL."""
    return os.path.abspath(fs.strip_file_scheme(url))


def temp_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}")


def atomic_write(path: Path, fill: Callable[[int], object], make_folder: bool = True) -> None:
    """``fill(fd)`` writes ``path``'s new bytes to a temporary file renamed over it, so that
    ``path`` holds either its old or its new bytes."""
    if make_folder:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with tmp.open("wb", buffering=0) as fh:
            fill(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_put(path: Path, *parts: bytes | memoryview, make_folder: bool = True) -> None:
    """Write ``parts`` end to end to ``path`` (``atomic_write``)."""
    atomic_write(path, lambda fd: [fs.write_fully(fd, part) for part in parts], make_folder)


class AtomicLocalStore(LocalStore):
    """``zarr.storage.LocalStore`` with every ``set`` going through ``atomic_put``."""

    async def set(self, key: str, value: Buffer) -> None:
        if not self._is_open:
            await self._open()
        self._check_writable()
        await asyncio.to_thread(atomic_put, self.root / key, value.to_bytes())

    def set_sync(self, key: str, value: Buffer) -> None:
        self._ensure_open_sync()
        self._check_writable()
        atomic_put(self.root / key, value.to_bytes())


def _owner_alive(temp_name: str) -> bool:
    """False only when the temporary file was made on this host by a process that is gone."""
    tag = temp_name[: -len(TEMP_SUFFIX)].rsplit(".", 1)[-1]  # <host>-<pid>-<hex>
    parts = tag.rsplit("-", 2)
    if len(parts) != 3 or parts[0] != _HOST or not parts[1].isdigit():
        return True
    return fs.pid_alive(int(parts[1]))


def remove_stale_temp_files(root: str) -> int:
    """Delete ``.partial`` files left in ``root`` by killed writers; return how many."""
    removed = 0
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(TEMP_SUFFIX) and not _owner_alive(name):
                Path(folder, name).unlink(missing_ok=True)
                removed += 1
    if removed:
        log.info("removed %d temporary files left by killed writers in %s", removed, root)
    return removed


def zarr_store(url: str, read_only: bool, storage_options: Mapping[str, Any] | None) -> Any:
    """The zarr store behind ``url``: atomic writes on local disk, fsspec elsewhere."""
    if fs.is_local(url):
        return AtomicLocalStore(local_path(url), read_only=read_only)
    return fs.zarr_store(url, read_only=read_only, **(storage_options or {}))


def refuse_foreign(url: str, storage_options: Mapping[str, Any] | None) -> None:
    """Refuse to replace a non-empty folder that is not a store (``create`` wipes its target)."""
    filesystem, path = fs.filesystem(url, **(storage_options or {}))
    if not filesystem.exists(path) or filesystem.exists(f"{path}/zarr.json"):
        return
    if filesystem.isfile(path) or filesystem.ls(path):
        raise StoreError(
            f"refusing to create a store at {url}: it exists and is not a Zarr store; "
            "choose another path or remove it yourself"
        )
