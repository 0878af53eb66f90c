"""A small reader of GoPro GPMF telemetry (the "GoPro MET" data track of GoPro MP4s).

GPMF is big-endian KLV: a 4-character key, a 1-byte type, a 1-byte structure size and a
2-byte repeat count; the payload (size x repeat bytes) is padded to 4 bytes; type 0 marks a
container whose payload holds nested entries (DEVC > STRM > ...). Within a stream (STRM),
metadata such as SCAL (divisor), SIUN (unit), ORIN (axis order) precede the samples and stay
valid until replaced ("sticky"). See github.com/gopro/gpmf-parser for the format.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

NUMERIC = {"b": "i1", "B": "u1", "s": ">i2", "S": ">u2", "l": ">i4", "L": ">u4", "f": ">f4",
           "d": ">f8", "j": ">i8", "J": ">u8"}
FIXED = {"q": (">i4", 2.0**16), "Q": (">i8", 2.0**32)}  # Q15.16 and Q31.32 fixed point


class GpmfError(ValueError):
    """A GPMF payload is truncated or malformed."""


@dataclass
class Klv:
    key: str
    type: str
    size: int
    repeat: int
    payload: bytes
    children: list[Klv] = field(default_factory=list)

    def text(self) -> str:
        return self.payload.decode("latin-1").rstrip("\x00 ")

    def numbers(self) -> np.ndarray:
        """(repeat, size / element size) values as float64 (fixed point converted)."""
        if self.type in NUMERIC:
            dtype = np.dtype(NUMERIC[self.type])
            scale = 1.0
        elif self.type in FIXED:
            dtype, scale = np.dtype(FIXED[self.type][0]), FIXED[self.type][1]
        else:
            raise GpmfError(f"{self.key}: type {self.type!r} is not numeric")
        flat = np.frombuffer(self.payload, dtype=dtype).astype(np.float64) / scale
        return flat.reshape(self.repeat, -1) if self.repeat else flat.reshape(0, 1)


def parse(buf: bytes) -> list[Klv]:
    """Parse one GPMF payload into a tree of entries."""
    out: list[Klv] = []
    pos = 0
    while pos + 8 <= len(buf):
        key = buf[pos:pos + 4].decode("latin-1")
        type_code, size, repeat = buf[pos + 4], buf[pos + 5], struct.unpack(">H", buf[pos + 6:pos + 8])[0]
        length = size * repeat
        end = pos + 8 + length
        if end > len(buf):
            raise GpmfError(f"entry {key!r} at byte {pos} needs {length} bytes, {len(buf) - pos - 8} left")
        payload = buf[pos + 8:end]
        if key == "\x00\x00\x00\x00":  # padding
            break
        entry = Klv(key, chr(type_code) if type_code else "", size, repeat, payload)
        if type_code == 0:
            entry.children = parse(payload)
        out.append(entry)
        pos = end + (-length % 4)
    return out


def streams(tree: list[Klv]) -> Iterator[list[Klv]]:
    """The entries of every STRM, in order, from every device (DEVC) of a payload."""
    for entry in tree:
        if entry.key == "STRM":
            yield entry.children
        elif entry.children:
            yield from streams(entry.children)


@dataclass
class SensorBlock:
    """Samples of one sensor (e.g. ACCL) from one payload, already divided by SCAL."""

    values: np.ndarray  # (n, axes)
    unit: str
    orin: str
    name: str = ""  # STNM, e.g. "Accelerometer (up/down, right/left, forward/back)"


def sensor_blocks(payload: bytes, keys: tuple[str, ...], sticky: dict[str, dict[str, Klv]]
                  ) -> dict[str, SensorBlock]:
    """The blocks of the sensors ``keys`` in one payload; ``sticky`` carries metadata over."""
    found: dict[str, SensorBlock] = {}
    for entries in streams(parse(payload)):
        meta: dict[str, Klv] = {}
        for entry in entries:
            if entry.key in keys:
                meta = {**sticky.get(entry.key, {}), **meta}
                sticky[entry.key] = meta
                found[entry.key] = _block(entry, meta)
            else:
                meta[entry.key] = entry
    return found


def _block(entry: Klv, meta: dict[str, Klv]) -> SensorBlock:
    raw = entry.numbers()
    scal = meta["SCAL"].numbers().ravel() if "SCAL" in meta else np.ones(1)
    if scal.size not in (1, raw.shape[1]):
        raise GpmfError(f"{entry.key}: SCAL has {scal.size} values for {raw.shape[1]} axes")
    if np.any(scal == 0):
        raise GpmfError(f"{entry.key}: SCAL is zero")
    unit = meta["SIUN"].text() if "SIUN" in meta else (meta["UNIT"].text() if "UNIT" in meta else "")
    orin = meta["ORIN"].text() if "ORIN" in meta else ""
    name = meta["STNM"].text() if "STNM" in meta else ""
    return SensorBlock(raw / scal, unit.replace("\xb2", "^2"), orin, name)


AXIS_WORDS = {"up/down": "Z", "right/left": "X", "forward/back": "Y", "x": "X", "y": "Y", "z": "Z"}


def order_from_name(name: str) -> str:
    """The ORIN-style axis order a stream name declares, "" when it declares none:
    "Accelerometer (up/down, right/left, forward/back)" -> "ZXY", "Gyroscope (z,x,y)" -> "ZXY"
    (GoPro's camera axes: X right/left, Y forward/back, Z up/down; a leading '-' negates)."""
    inside = name[name.find("(") + 1:name.rfind(")")] if "(" in name and ")" in name else ""
    letters = []
    for word in (w.strip().lower() for w in inside.split(",")):
        axis = AXIS_WORDS.get(word.lstrip("-"))
        if axis is None:
            return ""
        letters.append(axis.lower() if word.startswith("-") else axis)
    return "".join(letters) if sorted(c.upper() for c in letters) == ["X", "Y", "Z"] else ""


def orient(values: np.ndarray, orin: str) -> np.ndarray:
    """Columns reordered to the camera's X, Y, Z as ORIN names them (lower case = negated).

    ORIN "XzY" says column 0 is +X, column 1 is -Z and column 2 is +Y, so the result is
    (col0, col2, -col1).
    """
    letters = [c.upper() for c in orin]
    if sorted(letters) != ["X", "Y", "Z"] or values.shape[1] != 3:
        raise GpmfError(f"ORIN {orin!r} does not name the axes X, Y, Z once each")
    out = np.empty_like(values)
    for col, c in enumerate(orin):
        out[:, "XYZ".index(c.upper())] = values[:, col] * (1.0 if c.isupper() else -1.0)
    return out
