"""A group of Zarr v3 arrays sharing one row axis, written chunk by chunk.

Layout of a store ``<url>`` (a Zarr v3 group)::

    <array>      one array per name, shape (N, ...), chunked along rows only
    _complete    (n_chunks,) uint8, one chunk per element: 1 once every array's
                 rows of that chunk are fully written

A row chunk counts as written only once its marker is set, and the marker is set only
after all arrays' data for the chunk are stored. A writer killed mid-chunk leaves the marker
unset, so a restart rewrites that chunk and ends with the same bytes as an uninterrupted
run. Distinct writers own distinct chunks (``shard_chunks``), so no chunk is written twice:
create the store once, then start the shard writers with ``open_or_create``.

Every array ends its codec chain with a crc32c checksum (``zarr.codecs.Crc32cCodec``, after
compression), so a flipped or lost byte in any chunk is a ``StoreCorruptError`` naming the
store, array and chunk when it is read, and in ``comodo.stores.verify``. Every chunk file is
written whole: on local disk through a temporary file renamed into place
(``AtomicLocalStore``; a reader never sees a torn chunk), on object storage by one PUT.
Every data chunk gets a file, all-zero ones included (``write_empty_chunks``), so a missing
file is always damage. Readers refuse chunks whose marker is unset. A writing stage holds
the store's lock (``comodo.stores.lock``) while it writes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr
import zarr.codecs

from comodo.stores import batches, fs
from comodo.stores.backends import refuse_foreign, zarr_store
from comodo.stores.errors import StoreCorruptError, StoreError, StoreIntegrityError, StoreNotFoundError
from comodo.stores.provenance import Provenance, check_provenance

log = logging.getLogger(__name__)

MARKER = "_complete"
CREATING = "comodo_creating"  # group attr present only until create() has finished
WRITE_CONFIG = {"write_empty_chunks": True}


@dataclass(frozen=True)
class ArraySpec:
    """One array of a store: per-row shape, dtype and compressor."""

    row_shape: tuple[int, ...]
    dtype: str
    codec: str = "zstd"  # zstd | blosc-lz4 | none

    def compressors(self) -> list[Any]:
        """The bytes-to-bytes codecs: the compressor, then a crc32c checksum of its output."""
        size = np.dtype(self.dtype).itemsize
        made = {
            "none": [],
            "zstd": [zarr.codecs.ZstdCodec(level=3)],
            "blosc-lz4": [zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle", typesize=size)],
        }
        if self.codec not in made:
            raise StoreError(f"unknown codec {self.codec!r}; valid: {', '.join(made)}")
        return [*made[self.codec], zarr.codecs.Crc32cCodec()]


def shard_chunks(n_chunks: int, shard: int, n_shards: int) -> range:
    """The contiguous chunk range owned by ``shard`` (0-based) of ``n_shards``."""
    if not 0 <= shard < n_shards:
        raise StoreError(f"shard {shard}/{n_shards} is out of range; use 0 <= shard < n_shards")
    start = n_chunks * shard // n_shards
    stop = n_chunks * (shard + 1) // n_shards
    return range(start, stop)


def _same_layout(arr: zarr.Array, spec: ArraySpec) -> bool:
    """Whether an existing array was made from ``spec`` (dtype, row shape, compressors)."""
    made = [c.to_dict() for c in spec.compressors()]
    return (
        arr.dtype == np.dtype(spec.dtype)
        and tuple(arr.shape[1:]) == tuple(spec.row_shape)
        and [c.to_dict() for c in arr.compressors] == made
    )


def new_group(url: str, n_rows: int, chunk_rows: int, arrays: Mapping[str, ArraySpec],
              storage_options: Mapping[str, Any] | None) -> zarr.Group:
    """A fresh group at ``url`` marked as being created, with every array and the markers
    shaped for ``n_rows`` rows; ``layout_attrs`` written over its attrs finishes it."""
    if chunk_rows < 1 or n_rows < 0:
        raise StoreError(
            f"store {url}: need n_rows >= 0 and chunk_rows >= 1, got {n_rows} and {chunk_rows}"
        )
    if MARKER in arrays:
        raise StoreError(f"store {url}: the array name {MARKER!r} is reserved; rename it")
    refuse_foreign(url, storage_options)
    store = zarr_store(url, read_only=False, storage_options=storage_options)
    group = zarr.open_group(store, mode="w", zarr_format=3, attributes={CREATING: True})
    for name, spec in arrays.items():
        group.create_array(
            name,
            shape=(n_rows, *spec.row_shape),
            chunks=(chunk_rows, *spec.row_shape),
            dtype=spec.dtype,
            compressors=spec.compressors(),
            fill_value=0,
            config=WRITE_CONFIG,
        )
    n_chunks = max(1, -(-n_rows // chunk_rows))
    group.create_array(MARKER, shape=(n_chunks,), chunks=(1,), dtype="uint8", fill_value=0,
                       compressors=[zarr.codecs.Crc32cCodec()])
    return group


def layout_attrs(n_rows: int, chunk_rows: int, arrays: Mapping[str, ArraySpec], provenance: Provenance,
                 index: str | None, attrs: Mapping[str, Any] | None) -> dict[str, Any]:
    """The group attrs of a finished store."""
    return {
        "n_rows": int(n_rows),
        "chunk_rows": int(chunk_rows),
        "arrays": list(arrays),
        "provenance": provenance.to_dict(),
        "index": index,
        **dict(attrs or {}),
    }


class ChunkedStore:
    """Row-chunked arrays with completion markers and provenance attrs."""

    def __init__(self, url: str, group: zarr.Group):
        self.url = str(url)
        self.group = group
        attrs = dict(group.attrs)
        self.n_rows: int = int(attrs["n_rows"])
        self.chunk_rows: int = int(attrs["chunk_rows"])
        self.provenance = Provenance.from_dict(attrs["provenance"])
        self.names: list[str] = list(attrs["arrays"])
        self.index: str | None = attrs.get("index")
        self.attrs: dict[str, Any] = attrs
        self._arrays: dict[str, zarr.Array] = {}
        self._done: np.ndarray | None = None  # last marker read; markers are never unset

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(
        cls,
        url: str,
        n_rows: int,
        chunk_rows: int,
        arrays: Mapping[str, ArraySpec],
        provenance: Provenance,
        index: str | None = None,
        attrs: Mapping[str, Any] | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> ChunkedStore:
        """Create a new store at ``url`` (replacing a store that is there)."""
        group = new_group(url, n_rows, chunk_rows, arrays, storage_options)
        # replaces CREATING: from here on the store can be opened
        group.attrs.put(layout_attrs(n_rows, chunk_rows, arrays, provenance, index, attrs))
        return cls(url, group)

    @classmethod
    def open(
        cls,
        url: str,
        expect: Mapping[str, Any] | None = None,
        mode: str = "r",
        storage_options: Mapping[str, Any] | None = None,
    ) -> ChunkedStore:
        """Open an existing store; refuse it when its provenance differs from ``expect``."""
        if mode not in ("r", "r+"):
            raise StoreError(f"open mode {mode!r} for {url} is invalid; use 'r' or 'r+'")
        if not fs.exists(fs.join(url, "zarr.json"), **(storage_options or {})):
            raise StoreNotFoundError(
                f"no store at {url} (no zarr.json there); run the stage that produces it first"
            )
        store = zarr_store(url, read_only=mode == "r", storage_options=storage_options)
        group = zarr.open_group(store, mode=mode, zarr_format=3)
        if group.attrs.get(CREATING):
            raise StoreIntegrityError(
                f"store {url} was never finished: its creation was interrupted; re-run the "
                "stage that produces it"
            )
        missing = {"provenance", "n_rows", "chunk_rows", "arrays"} - set(group.attrs)
        if missing:
            raise StoreIntegrityError(
                f"store {url} lacks the attrs {sorted(missing)}; it was not written by "
                "comodo's ChunkedStore, so re-run the stage that should produce it"
            )
        out = cls(url, group)
        check_provenance(url, out.provenance, expect)
        return out

    @classmethod
    def open_or_create(
        cls,
        url: str,
        n_rows: int,
        chunk_rows: int,
        arrays: Mapping[str, ArraySpec],
        provenance: Provenance,
        **kwargs: Any,
    ) -> ChunkedStore:
        """Resume a store written with the same provenance and layout, else start a new one."""
        storage_options = kwargs.get("storage_options")
        try:
            old = cls.open(url, mode="r+", storage_options=storage_options)
        except StoreNotFoundError:
            return cls.create(url, n_rows, chunk_rows, arrays, provenance, **kwargs)
        except StoreIntegrityError:
            group = zarr.open_group(zarr_store(url, True, storage_options), mode="r")
            if not group.attrs.get(CREATING):
                raise  # not a store of ours: never overwrite it
            return cls.create(url, n_rows, chunk_rows, arrays, provenance, **kwargs)
        same = (
            old.provenance.to_dict() == provenance.to_dict()
            and old.n_rows == n_rows
            and old.chunk_rows == chunk_rows
            and old.names == list(arrays)
            and all(_same_layout(old.array(n), spec) for n, spec in arrays.items())
        )
        if same:
            log.info("resuming %s: %d/%d chunks complete", url, old.n_complete(), old.n_chunks)
            return old
        log.info("store %s was written by another config or input; starting it over", url)
        return cls.create(url, n_rows, chunk_rows, arrays, provenance, **kwargs)

    # ------------------------------------------------------------------ layout
    @property
    def n_chunks(self) -> int:
        return max(1, -(-self.n_rows // self.chunk_rows))

    def chunk_slice(self, chunk: int) -> slice:
        if not 0 <= chunk < self.n_chunks:
            raise StoreError(f"chunk {chunk} of {self.url} is out of range 0..{self.n_chunks - 1}")
        start = chunk * self.chunk_rows
        return slice(start, min(start + self.chunk_rows, self.n_rows))

    def array(self, name: str) -> zarr.Array:
        """A data array, opened so that all-zero chunks are still written as files."""
        if name not in self.names:
            raise StoreError(f"store {self.url} has no array {name!r}; it has {self.names}")
        if name not in self._arrays:
            self._arrays[name] = self.group[name].with_config(WRITE_CONFIG)
        return self._arrays[name]

    def _marker(self) -> zarr.Array:
        if MARKER not in self._arrays:  # opened once: each open re-reads its metadata
            self._arrays[MARKER] = self.group[MARKER]
        return self._arrays[MARKER]

    def complete_mask(self) -> np.ndarray:
        markers = self._marker()
        self._done = self._decoded(MARKER, None, lambda: np.asarray(markers[:]).astype(bool))
        return self._done.copy()

    def n_complete(self) -> int:
        return int(self.complete_mask().sum())

    def is_complete(self) -> bool:
        return bool(self.complete_mask().all())

    def pending_chunks(self, shard: int = 0, n_shards: int = 1) -> list[int]:
        done = self.complete_mask()
        return [c for c in shard_chunks(self.n_chunks, shard, n_shards) if not done[c]]

    # ------------------------------------------------------------------ writing
    def write_chunk(self, chunk: int, data: Mapping[str, np.ndarray]) -> None:
        """Write every array's rows of ``chunk``, then mark the chunk complete."""
        rows = self.chunk_slice(chunk)
        missing = set(self.names) - set(data)
        if missing:
            raise StoreError(f"chunk {chunk} of {self.url} lacks arrays {sorted(missing)}")
        values = {n: np.asarray(data[n]) for n in self.names}
        for name, block in values.items():  # check every shape before writing anything
            want = (rows.stop - rows.start, *self.array(name).shape[1:])
            if block.shape != want:
                raise StoreError(
                    f"chunk {chunk} of {self.url}/{name}: expected shape {want}, got {block.shape}"
                )
        for name, block in values.items():
            arr = self.array(name)
            arr[rows] = block.astype(arr.dtype, copy=False)
        self._marker()[chunk] = 1

    # ------------------------------------------------------------------ reading
    def require_complete(self, chunks: Sequence[int] | None = None) -> None:
        """Raise unless every chunk (or every chunk of ``chunks``) is marked complete."""
        want = np.arange(self.n_chunks) if chunks is None else np.asarray(chunks, dtype=np.int64)
        if self._done is not None and self._done[want].all():
            return
        missing = want[~self.complete_mask()[want]]
        if missing.size:
            raise StoreIntegrityError(
                f"store {self.url} is incomplete: {missing.size} of the {want.size} chunks read "
                f"are not marked complete (first: {missing[:5].tolist()}); re-run its stage "
                f"('{self.provenance.stage}') to finish it"
            )

    def read_chunk(self, chunk: int, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        rows = self.chunk_slice(chunk)
        return {n: self.read_span(n, rows.start, rows.stop) for n in (names or self.names)}

    def read_span(self, name: str, lo: int, hi: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``lo:hi`` of ``name`` (into ``out`` when given: a reused buffer of at least
        ``hi - lo`` rows), read chunk by chunk so that a damaged chunk is named."""
        if not 0 <= lo <= hi <= self.n_rows:
            raise StoreError(f"rows {lo}..{hi} out of range for {self.url}/{name} (0..{self.n_rows})")
        self.require_complete(range(lo // self.chunk_rows, max(lo, hi - 1) // self.chunk_rows + 1))
        arr = self.array(name)
        out = np.empty((hi - lo, *arr.shape[1:]), arr.dtype) if out is None else out[: hi - lo]
        row = lo
        while row < hi:
            chunk = row // self.chunk_rows
            end = min(hi, (chunk + 1) * self.chunk_rows)
            out[row - lo : end - lo] = self._decoded(name, chunk, lambda a=row, b=end: arr[a:b])
            row = end
        return out

    def read(self, name: str) -> np.ndarray:
        """The whole array ``name`` (every chunk must be complete)."""
        return self.read_span(name, 0, self.n_rows)

    def _decoded(self, name: str, chunk: int | None, read: Callable[[], np.ndarray]) -> np.ndarray:
        """``read()``, with any failure of zarr or a codec (checksum, truncated or foreign
        bytes, wrong size) raised as one ``StoreCorruptError`` naming the store, array, chunk."""
        try:
            return read()
        except Exception as err:  # codecs raise ValueError, RuntimeError, OSError ... on bad bytes
            where = "" if chunk is None else f" {self.chunk_label(chunk)}"
            reason = " ".join(str(err).split()) or type(err).__name__
            raise StoreCorruptError(
                f"store {self.url}: array '{name}'{where} cannot be read ({reason}): its chunk file "
                f"is damaged; run `comodo-store verify {self.url}` to list every damaged chunk, "
                f"then restore the store from a copy or delete it and re-run stage "
                f"'{self.provenance.stage}'"
            ) from None

    def chunk_label(self, chunk: int) -> str:
        rows = self.chunk_slice(chunk)
        return f"chunk {chunk} (rows {rows.start}..{rows.stop - 1})"

    def read_rows(self, name: str, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Random access by row, decompressing each touched chunk once."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_rows):
            raise StoreError(
                f"rows out of range for {self.url}/{name}: asked for {rows.min()}..{rows.max()}, "
                f"the store has rows 0..{self.n_rows - 1}"
            )
        arr = self.array(name)
        out = np.empty((rows.size, *arr.shape[1:]), dtype=arr.dtype)
        chunk_of = rows // self.chunk_rows
        for chunk in np.unique(chunk_of):
            sel = np.flatnonzero(chunk_of == chunk)
            block = self.read_chunk(int(chunk), [name])[name]
            out[sel] = block[rows[sel] - chunk * self.chunk_rows]
        return out

    def iter_batches(
        self,
        names: Sequence[str],
        batch_size: int,
        rows: np.ndarray | None = None,
        shuffle: bool = True,
        seed: int = 0,
        buffer_chunks: int = 4,
    ) -> Iterator[dict[str, np.ndarray]]:
        """Stream batches reading whole chunks; shuffle within a buffer of random chunks.

        Memory is bounded by ``buffer_chunks * chunk_rows + batch_size`` rows whatever the
        store size. Each batch has a ``row`` entry with the global row numbers it holds.
        """
        return batches.iter_batches(self, names, batch_size, rows, shuffle, seed, buffer_chunks)
