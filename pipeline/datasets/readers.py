"""File readers shared by the adapters: MATLAB .mat, CSV/Parquet/NPY tables, JSON extras.

Each reader turns an unreadable file into an ``InputDataError`` naming the file, what was
expected and what was found. Readers return values as they are in the file: rows with NaN,
duplicate or unsorted timestamps are kept; the ``imu`` stage (``comodo.pipeline.signal``)
cleans them and counts what it dropped.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from comodo.stores.errors import InputDataError

MAT_COMPRESSED, MAT_MATRIX = 15, 14
TABLE_SUFFIXES = (".csv", ".txt", ".tsv", ".parquet", ".pq")


def mat_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Variable names and shapes of a MATLAB v5 .mat, read from the headers only (fast)."""
    check_file(path)
    with path.open("rb") as fh:
        head = fh.read(128)
        if len(head) < 128 or head[126:128] not in (b"IM", b"MI"):
            raise InputDataError(
                f"{path} is not a MATLAB v5 .mat file (bad header; HDF5-based v7.3 files are not "
                f"supported); re-save it with save(..., '-v7') or replace the file"
            )
        endian = "<" if head[126:128] == b"IM" else ">"
        shapes: dict[str, tuple[int, ...]] = {}
        while len(tag := fh.read(8)) == 8:
            kind, nbytes = struct.unpack(endian + "II", tag)
            start = fh.tell()
            body = fh.read(min(nbytes, 4096))
            if kind == MAT_COMPRESSED:
                try:
                    body = zlib.decompressobj().decompress(body, 512)[8:]
                except zlib.error as err:
                    raise InputDataError(f"{path}: a compressed variable is corrupt ({err})") from None
            if kind in (MAT_COMPRESSED, MAT_MATRIX):
                name, shape = _matrix_header(body, endian, path)
                shapes[name] = shape
            fh.seek(start + nbytes + (-nbytes % 8 if kind != MAT_COMPRESSED else 0))
    return shapes


def _matrix_header(body: bytes, endian: str, path: Path) -> tuple[str, tuple[int, ...]]:
    """(name, dims) of a miMATRIX element body: flags, dimensions, name sub-elements."""
    try:
        pos, parts = 0, []
        for _ in range(3):
            kind, nbytes = struct.unpack(endian + "II", body[pos:pos + 8])
            if kind >> 16:  # small data element: 2-byte size, 2-byte type, 4 bytes of data
                size = kind >> 16
                parts.append(body[pos + 4:pos + 4 + size])
                pos += 8
            else:
                parts.append(body[pos + 8:pos + 8 + nbytes])
                pos += 8 + nbytes + (-nbytes % 8)
        dims = struct.unpack(f"{endian}{len(parts[1]) // 4}i", parts[1])
        return parts[2].decode("ascii", "replace"), tuple(int(d) for d in dims)
    except (struct.error, IndexError):
        raise InputDataError(f"{path}: a variable header is truncated or corrupt") from None


def load_mat_array(path: Path, key: str) -> np.ndarray:
    """One variable of a .mat file; a missing key names the keys the file holds."""
    import scipy.io  # here: importing the adapters does not load scipy's readers (~60 ms)

    check_file(path)
    try:
        data = scipy.io.loadmat(str(path), variable_names=[key])
    except NotImplementedError:  # scipy reads MATLAB v4-v7.2; v7.3 files are HDF5
        raise InputDataError(f"{path} is a MATLAB v7.3 (HDF5) file, which is not read; re-save it "
                             f"in MATLAB with save(..., '-v7')") from None
    except (ValueError, TypeError, OSError, zlib.error) as err:
        raise InputDataError(f"{path} could not be read as a MATLAB .mat file: {err}") from None
    if key not in data:
        found = sorted(mat_shapes(path))
        raise InputDataError(
            f"{path} has no variable {key!r}; found {found or 'no variables'}; the file does not "
            f"follow the dataset's layout (re-copy it or remove the recording)"
        )
    return np.asarray(data[key])


def read_table(path: Path, has_header: bool = True) -> pl.DataFrame:
    """A CSV (comma, or tab for .tsv) or Parquet file as a DataFrame, errors named."""
    check_file(path)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pl.read_parquet(path)
        return pl.read_csv(
            path, has_header=has_header, separator="\t" if path.suffix.lower() == ".tsv" else ",",
            infer_schema_length=10_000, null_values=["", "nan", "NaN", "NA"],
            encoding="utf8-lossy", truncate_ragged_lines=False,
        )
    except Exception as err:  # polars raises several error types for malformed files
        raise InputDataError(f"{path} could not be parsed as a table: {first_line(err)}") from None


def numeric_columns(df: pl.DataFrame, columns: Sequence[str], path: Path) -> np.ndarray:
    """(T, len(columns)) float64; cells that are not numbers become NaN, kept for cleaning."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputDataError(
            f"{path} lacks column(s) {missing}; expected {list(columns)}, found {df.columns}"
        )
    out = df.select([pl.col(c).cast(pl.Float64, strict=False) for c in columns]).to_numpy()
    out = np.asarray(out, dtype=np.float64).reshape(len(df), len(columns))
    if len(df):
        empty = [c for c, ok in zip(columns, np.isfinite(out).any(axis=0)) if not ok]
        nonnum = [c for c in empty if df.schema[c] == pl.String]
        if nonnum:
            raise InputDataError(f"{path}: column(s) {nonnum} hold no numbers; is this the right file?")
    return out


def require_rows(values: np.ndarray, path: Path, what: str = "IMU samples") -> None:
    if len(values) == 0:
        raise InputDataError(f"{path} holds no {what} (only a header or nothing); remove the recording")


def rate_times(n: int, rate_hz: float, start_s: float = 0.0) -> np.ndarray:
    """Timestamps i / rate + start for files that carry no time column."""
    if not rate_hz or rate_hz <= 0:
        raise InputDataError(f"cannot build timestamps: sampling rate {rate_hz!r} is not positive")
    return start_s + np.arange(n, dtype=np.float64) / float(rate_hz)


def parse_extra(rec: dict[str, Any]) -> dict[str, Any]:
    """The adapter-specific fields of a recordings row."""
    try:
        extra = json.loads(rec.get("extra") or "{}")
    except json.JSONDecodeError as err:
        raise InputDataError(
            f"recording {rec.get('recording_id')}: 'extra' is not valid JSON ({err}); re-run ingest"
        ) from None
    return extra if isinstance(extra, dict) else {}


def merge_streams(streams: list[tuple[np.ndarray, np.ndarray]], path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Several sensors' (t, values) on one clock: the first stream is the reference.

    The others are linearly interpolated onto the reference times (after sorting them and
    keeping the first of duplicate timestamps), the reference is cut to the span every stream
    covers (rows with NaN times are kept for the imu stage to count), and times are shifted so
    that the first kept sample is 0.
    """
    spans = []
    for t, _ in streams:
        finite = t[np.isfinite(t)]
        if finite.size < 2:
            raise InputDataError(f"{path}: a sensor stream has fewer than two valid timestamps")
        spans.append((finite.min(), finite.max()))
    lo, hi = max(s[0] for s in spans), min(s[1] for s in spans)
    ref_t = streams[0][0]
    keep = (ref_t >= lo) & (ref_t <= hi) | ~np.isfinite(ref_t)
    if lo >= hi or not keep.any():
        raise InputDataError(f"{path}: the sensors' time spans do not overlap ({spans})")
    t = ref_t[keep]
    columns = [streams[0][1][keep]]
    for st, sv in streams[1:]:
        order = np.argsort(st, kind="stable")
        ts, first = np.unique(st[order], return_index=True)
        good = np.isfinite(ts)
        vs = sv[order][first][good]
        columns.append(np.stack([np.interp(t, ts[good], vs[:, c]) for c in range(vs.shape[1])], axis=1))
    return t - np.nanmin(t), np.concatenate(columns, axis=1)


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (library errors can span many lines)."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def check_file(path: Path) -> Path:
    """The path, if it is a non-empty file; otherwise an InputDataError saying which."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path} does not exist; check the dataset root and file names")
    if path.stat().st_size == 0:
        raise InputDataError(f"{path} is empty (0 bytes); re-copy it or remove the recording")
    return path
