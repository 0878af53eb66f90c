"""Parquet index tables (polars), read and written through fsspec URLs."""

from __future__ import annotations

from typing import Any

import polars as pl

from comodo.stores import fs
from comodo.stores.errors import StoreError, StoreNotFoundError


def write_table(df: pl.DataFrame, url: str, **storage_options: Any) -> None:
    """Write atomically on local disk (temp file + rename); plain put elsewhere."""
    filesystem, path = fs.filesystem(url, **storage_options)
    parent = path.rsplit("/", 1)[0]
    if parent:
        filesystem.makedirs(parent, exist_ok=True)
    if fs.is_local(url):
        tmp = f"{path}.tmp"
        df.write_parquet(tmp)
        filesystem.mv(tmp, path)
        return
    with filesystem.open(path, "wb") as fh:
        df.write_parquet(fh)


def read_table(url: str, **storage_options: Any) -> pl.DataFrame:
    filesystem, path = fs.filesystem(url, **storage_options)
    if not filesystem.exists(path):
        raise StoreNotFoundError(f"no table at {url}; run the stage that writes it first")
    try:
        with filesystem.open(path, "rb") as fh:
            return pl.read_parquet(fh)
    except Exception as err:  # polars raises several error types for a damaged file
        raise StoreError(f"table {url} could not be read as Parquet: {err}") from err
