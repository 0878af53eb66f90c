"""Chunks of local arrays read and written as plain files, the bytes zarr keeps.

An array whose only codec is little-endian ``bytes`` (``codec: none``), with the default
``c/<i>/<j>`` chunk keys, on a local store holds each chunk as the chunk's C-order bytes,
the last chunk padded to the full chunk shape with the fill value. Through zarr's codec
pipeline every such chunk costs an encode copy, a fresh buffer and an event-loop round trip
(about 8 ms per 6 MB chunk written and 4 ms read, against 1-2 ms for the file itself);
``RawChunks`` writes the same bytes from the caller's buffer (``atomic_put``, as
``AtomicLocalStore`` writes every file) and reads them into the caller's buffer. An array
whose bytes then go through Blosc (``codec: blosc-lz4``) is handled the same way, each chunk
compressed or decompressed by numcodecs' Blosc with the codec's own settings: the bytes
zarr's ``BloscCodec`` writes (tested), without its event loop and buffer copies. Every
other array (zstd, object storage, another key encoding) goes through zarr: ``RawChunks.of``
returns None for it. With ``direct`` the files are written and read with ``O_DIRECT``
(``comodo.stores.directio``), for stores that nothing reads right away; reads then take
what the page cache holds (``RWF_NOWAIT``) and read the rest around it.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import threading
from pathlib import Path

import numpy as np
import zarr
from numcodecs import Blosc
from zarr.codecs import BloscCodec, BytesCodec
from zarr.core.chunk_key_encodings import DefaultChunkKeyEncoding
from zarr.storage import LocalStore

from comodo.stores import directio, fs
from comodo.stores.backends import atomic_put, atomic_write
from comodo.stores.errors import StoreError, StoreIntegrityError

log = logging.getLogger(__name__)
_local = threading.local()  # per thread: reused buffers for compressed chunks


def _scratch(name: str, n_bytes: int) -> np.ndarray:
    """This thread's reused uint8 buffer ``name`` of at least ``n_bytes``."""
    buffer: np.ndarray | None = getattr(_local, name, None)
    if buffer is None or len(buffer) < n_bytes:
        buffer = np.empty(n_bytes, np.uint8)
        setattr(_local, name, buffer)
    return buffer[:n_bytes]


def _blosc(codecs: tuple) -> Blosc | None:
    """numcodecs' Blosc with the settings of a ``BloscCodec`` after ``bytes``, else None."""
    if len(codecs) != 1 or not isinstance(codecs[0], BloscCodec) or codecs[0].typesize is None:
        return None
    codec = codecs[0]
    shuffle = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE, "bitshuffle": Blosc.BITSHUFFLE}
    return Blosc(cname=codec.cname.name, clevel=codec.clevel, shuffle=shuffle[codec.shuffle.name],
                 blocksize=codec.blocksize, typesize=codec.typesize)


class RawChunks:
    """Row-chunk files of one uncompressed local array (chunked along rows only)."""

    def __init__(self, arr: zarr.Array, root: Path, direct: bool = False, blosc: Blosc | None = None):
        self.root, self.direct, self.blosc = root, direct, blosc
        self.chunk_rows = int(arr.chunks[0])
        self.row_shape = tuple(int(n) for n in arr.chunks[1:])
        self.dtype = np.dtype(arr.dtype)
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize
        self.chunk_bytes = self.row_bytes * self.chunk_rows
        self.encoding = arr.metadata.chunk_key_encoding
        self.tail = (0,) * len(self.row_shape)
        self.folders: set[Path] = set()

    @classmethod
    def of(cls, arr: zarr.Array, direct: bool = False) -> RawChunks | None:
        """The raw view of ``arr``, or None when its chunks are not plain local files;
        ``direct``: write and read its files with ``O_DIRECT`` (module doc)."""
        meta = arr.metadata
        codecs = tuple(getattr(meta, "codecs", ()))
        blosc = _blosc(codecs[1:])
        plain = (
            isinstance(arr.store, LocalStore)
            and len(codecs) >= 1 and isinstance(codecs[0], BytesCodec)
            and (len(codecs) == 1 or blosc is not None)
            and (codecs[0].endian is None or codecs[0].endian.value == sys.byteorder == "little")
            and isinstance(meta.chunk_key_encoding, DefaultChunkKeyEncoding)
            and tuple(arr.chunks[1:]) == tuple(arr.shape[1:])
            and np.dtype(arr.dtype).isnative and np.dtype(arr.dtype).kind in "fiub"
            and not np.any(np.asarray(meta.fill_value))
        )
        return cls(arr, Path(arr.store.root) / arr.path, direct, blosc) if plain else None

    def path(self, chunk: int) -> Path:
        return self.root / self.encoding.encode_chunk_key((chunk, *self.tail))

    def write(self, chunk: int, rows: np.ndarray) -> None:
        """Store ``rows`` (at most ``chunk_rows`` of them) as chunk ``chunk``, zero-padded."""
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        data = memoryview(rows).cast("B")
        path = self._chunk_path(chunk)
        size, padding = self.chunk_bytes, self.chunk_bytes - data.nbytes  # the last chunk's past rows
        if self.blosc is not None:  # the whole chunk, padded, is what zarr compresses
            if padding:
                whole = _scratch("whole", self.chunk_bytes)
                whole[:data.nbytes] = np.frombuffer(data, np.uint8)
                whole[data.nbytes:] = 0
                rows = whole.view(self.dtype)
            data = memoryview(self.blosc.encode(rows)).cast("B")
            size, padding = data.nbytes, 0
        if self.direct:
            if directio.put(path, data, size) is not None:
                return
            self._refused()
        atomic_put(path, data, bytes(padding), make_folder=False)

    def write_from(self, chunk: int, ranges: list[tuple[int, int, int, str]]) -> None:
        """Store as chunk ``chunk`` the byte ranges ``(fd, offset, n_bytes, name)`` of open files,
        end to end, zero-padded: copied in the kernel (``os.sendfile``), not through this
        process's memory. Plain page-cache chunks only (not direct, not compressed)."""
        if self.direct or self.blosc is not None:
            raise StoreError(f"{self.root}: write_from needs uncompressed page-cache chunk files")
        total = sum(n_bytes for _, _, n_bytes, _ in ranges)
        if total > self.chunk_bytes:
            raise StoreError(f"chunk {chunk} of {self.root}: {total} bytes for a chunk of {self.chunk_bytes}")

        def fill(fd: int) -> None:
            for source, offset, n_bytes, name in ranges:
                done = 0
                while done < n_bytes:
                    sent = os.sendfile(fd, source, offset + done, n_bytes - done)
                    if not sent:
                        raise StoreError(f"chunk {chunk} of {self.root}: {name} ended "
                                         f"{n_bytes - done} bytes early")
                    done += sent
            fs.write_fully(fd, bytes(self.chunk_bytes - total))  # the last chunk's past rows

        atomic_write(self._chunk_path(chunk), fill, make_folder=False)

    def _chunk_path(self, chunk: int) -> Path:
        """``path(chunk)``, its folder made once per writer."""
        path = self.path(chunk)
        if path.parent not in self.folders:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.folders.add(path.parent)
        return path

    def _refused(self) -> None:
        log.info("%s: the file system refuses O_DIRECT; writing and reading through the page cache",
                 self.root)
        self.direct = False

    def read_into(self, chunk: int, out: np.ndarray, row: int = 0) -> None:
        """Fill ``out`` (C-contiguous rows) with the chunk's rows from ``row`` on."""
        path = self.path(chunk)
        view = memoryview(out).cast("B")
        offset = row * self.row_bytes
        if offset + view.nbytes > self.chunk_bytes:
            raise ValueError(f"rows {row}..{row + len(out)} overrun chunk {chunk} of {self.root}")
        if self.blosc is not None:
            self._read_compressed(path, view, offset)
            return
        self._fill(path, view, offset)

    def _read_compressed(self, path: Path, view: memoryview, offset: int) -> None:
        try:
            packed = _scratch("packed", path.stat().st_size)
        except FileNotFoundError:
            raise _missing(path) from None
        self._fill(path, memoryview(packed), 0)
        straight = offset == 0 and view.nbytes == self.chunk_bytes
        whole = view if straight else _scratch("whole", self.chunk_bytes)
        try:
            self.blosc.decode(packed, out=whole)
        except (RuntimeError, ValueError) as err:
            raise StoreIntegrityError(f"chunk file {path} does not decompress ({err}); the store is "
                                      "damaged: re-run its stage") from None
        if whole is not view:
            view[:] = whole[offset:offset + view.nbytes]

    def _fill(self, path: Path, view: memoryview, offset: int) -> None:
        """``view`` from ``path`` at ``offset``, from the page cache or around it."""
        try:
            got = _read(path, offset, view, cached_only=self.direct)
            if self.direct and got < view.nbytes:  # not in the page cache: around it
                more = directio.read(path, offset + got, view[got:])
                if more is None:
                    self._refused()
                    more = _read(path, offset + got, view[got:])
                got += more
        except FileNotFoundError:
            raise _missing(path) from None
        if got < view.nbytes:
            raise StoreIntegrityError(f"chunk file {path} ends {view.nbytes - got} bytes early; the "
                                      "store is damaged: re-run its stage")


def _missing(path: Path) -> StoreIntegrityError:
    return StoreIntegrityError(f"chunk file {path} is missing; run `comodo-store verify` on the "
                               "store and re-run its stage")


def _read(path: Path, offset: int, view: memoryview, cached_only: bool = False) -> int:
    """Bytes of ``path`` from ``offset`` into ``view``; how many there were. ``cached_only``:
    stop where the page cache does not hold the file (``RWF_NOWAIT``)."""
    flags = getattr(os, "RWF_NOWAIT", 0) if cached_only else 0
    if cached_only and not flags:
        return 0
    fd = os.open(path, os.O_RDONLY)
    try:
        got = 0
        while got < view.nbytes:
            try:
                more = os.preadv(fd, [view[got:]], offset + got, flags)
            except BlockingIOError:  # the rest is not cached
                break
            except OSError as err:  # a file system without RWF_NOWAIT reads
                if flags and err.errno in (errno.EOPNOTSUPP, errno.EINVAL):
                    break
                raise
            if not more:
                break
            got += more
    finally:
        os.close(fd)
    return got


def _marker_folder(arr: zarr.Array) -> Path | None:
    """``<array>/c`` of a local 1-d marker array (one element per chunk, fill value 0, no
    file kept for a chunk equal to it), else None."""
    meta = arr.metadata
    local = (isinstance(arr.store, LocalStore) and tuple(arr.chunks) == (1,) and len(arr.shape) == 1
             and isinstance(meta.chunk_key_encoding, DefaultChunkKeyEncoding)
             and meta.chunk_key_encoding.separator == "/" and not np.any(np.asarray(meta.fill_value))
             and not arr.config.write_empty_chunks)
    return Path(arr.store.root) / arr.path / "c" if local else None


def marked(arr: zarr.Array) -> np.ndarray | None:
    """Which elements of a local marker array are set, from its folder's listing (zarr keeps
    no file for an element equal to the fill value, and markers are only ever set to 1).
    None when the array is not such a local one."""
    folder = _marker_folder(arr)
    if folder is None:
        return None
    out = np.zeros(arr.shape[0], bool)
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return out
    index = np.array([int(n) for n in names if n.isdigit()], dtype=np.int64)
    out[index[index < out.size]] = True
    return out


class Markers:
    """Sets elements of a marker array to 1. On local disk the first one goes through zarr
    and every later one is a copy of the file zarr wrote for it (the same encoded bytes):
    about 0.1 ms per marker instead of 2-3 ms through zarr's event loop."""

    def __init__(self, arr: zarr.Array):
        self.arr = arr
        self.folder = _marker_folder(arr)
        self.encoded: bytes | None = None

    def set(self, elements: range) -> None:
        for element in elements:
            if self.folder is None or self.encoded is None:
                self.arr[element] = 1
                if self.folder is not None:
                    self.encoded = (self.folder / str(element)).read_bytes()
            else:
                atomic_put(self.folder / str(element), self.encoded, make_folder=False)
