"""Check a ChunkedStore end to end: markers, chunk files, checksums and decoding, finiteness,
index, schema.

``verify(url)`` never stops at the first problem: it returns a ``VerifyReport`` listing every
problem as one human-readable line naming the store and the array (and the chunk or row).
"""

from __future__ import annotations

import itertools
import logging
import posixpath
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import zarr.codecs

from comodo.stores import fs
from comodo.stores.backends import TEMP_SUFFIX
from comodo.stores.chunked import MARKER, ChunkedStore
from comodo.stores.errors import StoreError, StoreIntegrityError
from comodo.stores.index import read_table
from comodo.stores.provenance import SCHEMA_VERSION

log = logging.getLogger(__name__)

MAX_LISTED = 20  # lines of one kind per array before the rest are counted


@dataclass
class VerifyReport:
    """What ``verify`` found: ``problems`` make a store unusable, ``warnings`` do not."""

    url: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    n_chunks: int = 0
    n_complete: int = 0
    arrays: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def raise_if_failed(self) -> None:
        if self.problems:
            raise StoreIntegrityError(
                f"store {self.url} failed verification with {len(self.problems)} problem(s): "
                + " | ".join(self.problems)
            )


def list_files(url: str, storage_options: Mapping[str, Any] | None = None) -> dict[str, int]:
    """Every file under ``url`` as path relative to it -> size in bytes (fresh listing)."""
    filesystem, root = fs.filesystem(url, **(storage_options or {}))
    filesystem.invalidate_cache()
    root = root.rstrip("/")
    found = filesystem.find(root, detail=True)
    return {
        name[len(root) + 1 :]: int(info.get("size") or 0)
        for name, info in found.items()
        if name.startswith(root + "/")
    }


def index_url(store: ChunkedStore) -> str | None:
    """The index table's URL: the ``index`` attr resolved against the store's URL."""
    if not store.index:
        return None
    if "://" in store.index or store.index.startswith("/"):
        return store.index
    scheme, sep, path = store.url.rpartition("://")
    joined = posixpath.normpath(posixpath.join(path.rstrip("/"), store.index))
    return f"{scheme}{sep}{joined}"


def expected_chunk_keys(store: ChunkedStore, name: str) -> dict[str, int]:
    """Chunk key (relative to the store) -> row chunk index, for every chunk of an array."""
    arr = store.array(name)
    grids = [range(n) for n in arr.cdata_shape]
    return {
        f"{name}/{arr.metadata.encode_chunk_key(coords)}": coords[0]
        for coords in itertools.product(*grids)
    }


def _bad_rows(block: np.ndarray) -> np.ndarray:
    """Row numbers (within ``block``) holding any NaN or inf."""
    flat = block.reshape(block.shape[0], int(np.prod(block.shape[1:])))
    return np.flatnonzero(~np.isfinite(flat).all(axis=1))


def _rows(store: ChunkedStore, chunk: int) -> str:
    rows = store.chunk_slice(chunk)
    return f"chunk {chunk} (rows {rows.start}..{rows.stop - 1})"


def _listed(problems: list[str], where: str) -> list[str]:
    """At most MAX_LISTED lines of one kind per array, then one line counting the rest."""
    if len(problems) <= MAX_LISTED:
        return problems
    return [*problems[:MAX_LISTED], f"{where}: {len(problems) - MAX_LISTED} more like the above"]


def _check_array(
    store: ChunkedStore, name: str, files: Mapping[str, int], done: np.ndarray, report: VerifyReport
) -> None:
    """Chunks marked complete: file present, decodes, float values finite."""
    where = f"store {store.url}: array '{name}'"
    fix = f"re-run stage '{store.provenance.stage}' into a fresh store"
    keys = {k: c for k, c in expected_chunk_keys(store, name).items() if done[c]}
    missing = [
        f"{where} {_rows(store, c)}: chunk file {k} is missing; {fix}"
        for k, c in keys.items() if k not in files
    ]
    report.problems += _listed(missing, where)
    arr = store.array(name)
    is_float = np.issubdtype(arr.dtype, np.inexact)
    broken: list[str] = []
    n_bad, first_bad = 0, ""
    for key, chunk in sorted(((k, c) for k, c in keys.items() if k in files), key=lambda kc: kc[1]):
        rows = store.chunk_slice(chunk)
        try:
            block = np.asarray(arr[rows])
        except Exception as err:  # the checksum codec and decoders raise ValueError, RuntimeError ...
            reason = " ".join(str(err).split()) or type(err).__name__
            broken.append(f"{where} {_rows(store, chunk)}: chunk file {key} is damaged ({reason}); "
                          f"restore it from a copy, or {fix}")
            continue
        bad = _bad_rows(block) if is_float else np.empty(0, dtype=np.int64)
        if bad.size and not first_bad:
            first_bad = f"first at row {rows.start + int(bad[0])} (chunk {chunk})"
        n_bad += int(bad.size)
    report.problems += _listed(broken, where)
    if n_bad:
        report.problems.append(
            f"{where} has NaN/inf values in {n_bad} row(s), {first_bad}; fix the producer "
            f"of stage '{store.provenance.stage}' and re-run it"
        )


def _check_markers(store: ChunkedStore, report: VerifyReport) -> np.ndarray:
    """Report chunks not marked complete; return the marker mask."""
    mask = store.complete_mask()
    report.n_chunks, report.n_complete = len(mask), int(mask.sum())
    if not mask.all():
        todo = np.flatnonzero(~mask)
        report.problems.append(
            f"store {store.url}: {todo.size}/{mask.size} chunks are not marked complete in "
            f"'{MARKER}' (first: {todo[:5].tolist()}); re-run stage '{store.provenance.stage}' "
            "to finish them"
        )
    return mask


def _check_index(store: ChunkedStore, report: VerifyReport, options: Mapping[str, Any]) -> None:
    url = index_url(store)
    if url is None:
        return
    try:
        table = read_table(url, **options)
    except StoreError as err:
        report.problems.append(f"store {store.url}: index {store.index!r}: {err}")
        return
    if table.height != store.n_rows:
        report.problems.append(
            f"store {store.url}: index {url} has {table.height} rows, the store has "
            f"{store.n_rows}; re-run stage '{store.provenance.stage}' so both match"
        )
    elif "window_id" in table.columns:
        ids = table["window_id"].to_numpy()
        wrong = np.flatnonzero(ids != np.arange(store.n_rows))
        if wrong.size:
            report.problems.append(
                f"store {store.url}: index {url} column window_id is not 0..{store.n_rows - 1}: "
                f"row {wrong[0]} holds {ids[wrong[0]]}; rows must align with the store's rows"
            )


def _check_checksums(store: ChunkedStore, report: VerifyReport) -> None:
    """Every array (the markers included) must end its codec chain with crc32c: without it a
    flipped byte reads back as a plausible value."""
    for name in [*store.names, MARKER]:
        codecs = store.group[name].compressors  # type: ignore[union-attr]
        if not codecs or not isinstance(codecs[-1], zarr.codecs.Crc32cCodec):
            report.problems.append(
                f"store {store.url}: array {name} has no crc32c checksum, so damaged chunks would "
                f"read back unnoticed; re-run stage '{store.provenance.stage}' to rewrite it"
            )


def _check_schema(store: ChunkedStore, report: VerifyReport) -> None:
    found = store.provenance.schema_version
    if found != SCHEMA_VERSION:
        report.problems.append(
            f"store {store.url}: schema_version is {found}, this comodo reads {SCHEMA_VERSION}; "
            f"re-run stage '{store.provenance.stage}' to rewrite it"
        )


def verify(url: str, storage_options: Mapping[str, Any] | None = None) -> VerifyReport:
    """Check every chunk, array, value and the index of the store at ``url``."""
    options = dict(storage_options or {})
    report = VerifyReport(str(url))
    try:
        store = ChunkedStore.open(url, storage_options=options)
    except StoreIntegrityError as err:
        report.problems.append(str(err))
        return report
    report.arrays = list(store.names)
    _check_schema(store, report)
    _check_checksums(store, report)
    done = _check_markers(store, report)
    files = list_files(url, options)
    for name in store.names:
        log.debug("verifying %s/%s", url, name)
        _check_array(store, name, files, done, report)
    _check_index(store, report, options)
    temps = sorted(k for k in files if k.endswith(TEMP_SUFFIX))
    if temps:
        report.warnings.append(
            f"store {url}: {len(temps)} temporary files left by interrupted writes (first: "
            f"{temps[0]}); a writer opening the store removes them, or delete them by hand"
        )
    return report
