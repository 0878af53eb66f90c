"""What is in the feature store: find stores and index tables, describe each one as a dict.

``describe(url)`` gives arrays (shape, dtype, chunks, codecs, bytes on disk vs raw),
completeness, the full provenance and label counts from the index; ``find_stores(root)``
walks a folder (any depth, any fsspec URL) for ChunkedStores; ``find_tables`` for Parquet.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from comodo.stores import fs
from comodo.stores.backends import TEMP_SUFFIX
from comodo.stores.chunked import ChunkedStore
from comodo.stores.errors import StoreError, StoreNotFoundError
from comodo.stores.index import read_table
from comodo.stores.verify import expected_chunk_keys, index_url, list_files

log = logging.getLogger(__name__)

STORE_KEYS = {"n_rows", "chunk_rows", "arrays", "provenance", "index"}


def codec_label(codec: Mapping[str, Any]) -> str:
    """``{'name': 'zstd', 'configuration': {'level': 3}}`` -> ``zstd(level=3)``."""
    config = codec.get("configuration") or {}
    args = ", ".join(f"{k}={v}" for k, v in config.items())
    return f"{codec['name']}({args})" if args else str(codec["name"])


def describe_array(store: ChunkedStore, name: str, files: Mapping[str, int]) -> dict[str, Any]:
    """Shape, dtype, chunks, codecs and the bytes its chunk files take versus the logical
    bytes written: the rows of the chunks present (a last chunk's padding past the array's
    end is not logical data). ``ratio`` is stored / logical: below 1 is compression."""
    arr = store.array(name)
    chunk_of = {k: row_chunk for k, row_chunk in expected_chunk_keys(store, name).items()
                if k in files}
    on_disk = sum(files[k] for k in chunk_of)
    row_bytes = int(np.prod(arr.shape[1:])) * arr.dtype.itemsize
    n_rows, chunk_rows = arr.shape[0], arr.chunks[0]
    logical = sum(row_bytes * (min(n_rows, (c + 1) * chunk_rows) - c * chunk_rows)
                  for c in set(chunk_of.values()))
    return {
        "name": name,
        "shape": list(arr.shape),
        "dtype": str(arr.dtype),
        "chunks": list(arr.chunks),
        "codecs": [codec_label(c.to_dict()) for c in arr.metadata.codecs],
        "n_chunk_files": len(chunk_of),
        "bytes_on_disk": on_disk,
        "bytes_raw": int(arr.nbytes),
        "bytes_logical": logical,
        "ratio": round(on_disk / logical, 3) if logical else None,
    }


def label_counts(table: pl.DataFrame) -> dict[str, int] | None:
    """Rows per value of the ``label`` column, sorted by label; None without that column."""
    if "label" not in table.columns:
        return None
    counts = table.group_by("label").len().sort("label")
    return {str(label): int(n) for label, n in counts.iter_rows()}


def describe_table(url: str, storage_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A Parquet index table: rows, columns and label counts."""
    table = read_table(url, **(storage_options or {}))
    return {
        "url": str(url),
        "kind": "table",
        "n_rows": table.height,
        "columns": list(table.columns),
        "label_counts": label_counts(table),
    }


def _index_summary(store: ChunkedStore, options: Mapping[str, Any]) -> dict[str, Any]:
    url = index_url(store)
    out: dict[str, Any] = {"index": url, "label_counts": None, "index_error": None}
    if url is None:
        return out
    try:
        out["label_counts"] = label_counts(read_table(url, **options))
    except StoreError as err:
        out["index_error"] = str(err)
    return out


def describe(url: str, storage_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything about one store, JSON-serialisable."""
    options = dict(storage_options or {})
    store = ChunkedStore.open(url, storage_options=options)
    files = list_files(url, options)
    arrays = [describe_array(store, name, files) for name in store.names]
    mask = store.complete_mask()
    return {
        "url": str(url),
        "kind": "store",
        "n_rows": store.n_rows,
        "chunk_rows": store.chunk_rows,
        "n_chunks": int(mask.size),
        "n_complete": int(mask.sum()),
        "percent_complete": round(100.0 * float(mask.mean()), 2),
        "stage": store.provenance.stage,
        "provenance": store.provenance.to_dict(),
        "attrs": {k: v for k, v in store.attrs.items() if k not in STORE_KEYS},
        "arrays": arrays,
        "bytes_on_disk": sum(a["bytes_on_disk"] for a in arrays),
        "bytes_raw": sum(a["bytes_raw"] for a in arrays),
        "temp_files": sum(1 for k in files if k.endswith(TEMP_SUFFIX)),
        **_index_summary(store, options),
    }


def _store_kind(filesystem: Any, folder: str) -> str | None:
    """'store' for a comodo store, 'zarr' for any other Zarr node, None for a plain folder."""
    try:
        meta = json.loads(filesystem.cat_file(f"{folder}/zarr.json"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        log.warning("skipping %s: unreadable zarr.json (%s)", folder, err)
        return "zarr"
    attrs = meta.get("attributes") or {}
    return "store" if meta.get("node_type") == "group" and "provenance" in attrs else "zarr"


def scan(
    root: str = "data", storage_options: Mapping[str, Any] | None = None
) -> tuple[list[str], list[str]]:
    """(stores, tables) under ``root``: URLs spelled from ``root``, sorted."""
    filesystem, base = fs.filesystem(root, **(storage_options or {}))
    filesystem.invalidate_cache()
    base = base.rstrip("/")
    if not filesystem.exists(base):
        raise StoreNotFoundError(f"no folder or store at {root}; pass an existing path")

    def spell(path: str) -> str:
        rel = path.rstrip("/")[len(base) :].lstrip("/")
        return fs.join(root, rel) if rel else str(root)

    if filesystem.isfile(base):
        return [], ([str(root)] if base.endswith(".parquet") else [])
    stores: list[str] = []
    tables: list[str] = []
    for folder, dirs, names in filesystem.walk(base, topdown=True):
        if "zarr.json" in names:
            if _store_kind(filesystem, folder) == "store":
                stores.append(spell(folder))
            dirs.clear()  # never descend into a Zarr hierarchy
            continue
        tables += [spell(f"{folder}/{n}") for n in names if n.endswith(".parquet")]
    return sorted(stores), sorted(tables)


def find_stores(root: str = "data", storage_options: Mapping[str, Any] | None = None) -> list[str]:
    """Every ChunkedStore under ``root`` (a folder with zarr.json whose attrs have provenance)."""
    return scan(root, storage_options)[0]


def find_tables(root: str = "data", storage_options: Mapping[str, Any] | None = None) -> list[str]:
    """Every Parquet file under ``root`` outside the stores (index tables, rejects)."""
    return scan(root, storage_options)[1]
