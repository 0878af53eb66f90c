"""Store URLs to zarr stores: ``zarr.storage.LocalStore`` on local disk, fsspec elsewhere.

zarr's LocalStore writes every file to ``<name>.<hex>.partial`` and renames it into place,
so a reader never sees a torn chunk. A writer killed between the two steps leaves a
``.partial`` file; the next writer, holding the store's lock (no one else writes), removes
them. Data are not fsynced: a chunk is safe against a killed process, and damage after a
power cut is what the checksums and ``verify`` detect.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from comodo.stores import fs
from comodo.stores.errors import StoreError

log = logging.getLogger(__name__)

TEMP_SUFFIX = ".partial"


def local_path(url: str) -> str:
    """Absolute local path of a plain path or a file:// URL."""
    return os.path.abspath(fs.strip_file_scheme(url))


def remove_temp_files(root: str) -> int:
    """Delete the ``.partial`` files of interrupted writes under ``root``; return how many.
    Call it only while holding the store's lock."""
    removed = 0
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(TEMP_SUFFIX):
                Path(folder, name).unlink(missing_ok=True)
                removed += 1
    if removed:
        log.info("removed %d temporary files left by interrupted writes in %s", removed, root)
    return removed


def zarr_store(url: str, read_only: bool, storage_options: Mapping[str, Any] | None) -> Any:
    """The zarr store behind ``url``."""
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
