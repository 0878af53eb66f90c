"""IMU straight from an Aria VRS file (Ego-Exo4D takes, Aria Everyday Activities), via ``pyvrs``.

Aria Gen1 VRS files hold two IMUs: stream ``1202-1`` (the right IMU, ~1 kHz) and ``1202-2``
(the left IMU, ~800 Hz). Each data record's first metadata block carries ``accelerometer``
(m/s^2), ``gyroscope`` (rad/s), their ``*_valid`` flags and ``capture_timestamp_ns`` on the
device clock. COMODO's Ego-Exo4D conversion reads ``1202-1`` and drops records whose
accelerometer or gyroscope is not valid; so does ``read_vrs_imu``.

Clock: the device clock is moved so that its 0 is the first frame of the RGB camera stream
(``214-1``) when the file has one (the egocentric video's first frame, the canonical clock of
a take), otherwise the first IMU sample (files such as Ego-Exo4D's ``*_noimagestreams.vrs``);
``ImuData.meta["clock_origin"]`` says which.

``pyvrs`` comes with the optional extra ``vrs`` (``pip install 'comodo[vrs]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from comodo.pipeline.datasets.base import ImuData
from comodo.pipeline.datasets.readers import check_file
from comodo.stores.errors import ConfigError, InputDataError

CHANNELS = ["accl_x", "accl_y", "accl_z", "gyro_x", "gyro_y", "gyro_z"]
UNITS = ["m/s^2"] * 3 + ["rad/s"] * 3
RGB_STREAM = "214-1"
DEFAULT_STREAM = "1202-1"  # COMODO's choice (convert_imu_vrs_egoexo.py): the 1 kHz IMU


def _reader(path: Path) -> Any:
    try:
        import pyvrs
    except ImportError:
        raise ConfigError(f"reading IMU from the VRS file {path} needs the optional extra 'vrs' "
                          f"(pip install 'comodo[vrs]', which installs pyvrs)") from None
    try:
        return pyvrs.SyncVRSReader(str(check_file(path)))
    except Exception as err:  # pyvrs raises its own and OSError types for unreadable files
        raise InputDataError(f"{path} cannot be opened as a VRS file: {err}") from None


def _records(reader: Any, stream: str, path: Path, limit: int | None = None) -> Any:
    if stream not in reader.stream_ids:
        imu = sorted(s for s in reader.stream_ids if s.startswith("1202-"))
        raise InputDataError(f"{path}: no stream {stream}; its IMU streams are {imu or 'none'} "
                             f"(option vrs_stream)")
    records = reader.filtered_by_fields(stream_ids={stream}, record_types={"data"})
    return records if limit is None else [records[i] for i in range(min(limit, len(records)))]


def read_vrs_imu(path: str | Path, stream: str = DEFAULT_STREAM) -> ImuData:
    """The valid IMU records of ``stream``: (T,) seconds on the clock above, (T, 6) values."""
    path = Path(path)
    reader = _reader(path)
    try:
        stamps, rows, invalid = [], [], 0
        for record in _records(reader, stream, path):
            meta = record.metadata_blocks[0]
            if not (meta["accelerometer_valid"] and meta["gyroscope_valid"]):
                invalid += 1
                continue
            stamps.append(meta["capture_timestamp_ns"])
            rows.append([*meta["accelerometer"], *meta["gyroscope"]])
        origin, origin_kind = _origin(reader, stamps)
    finally:
        reader.close()
    if not stamps:
        raise InputDataError(f"{path}: stream {stream} has no valid IMU record ({invalid} invalid)")
    t_s = (np.asarray(stamps, dtype=np.int64) - origin) * 1e-9
    return ImuData(t_s=t_s, values=np.asarray(rows, dtype=np.float64), channels=list(CHANNELS),
                   units=list(UNITS), meta={"source": str(path), "stream": stream, "invalid": invalid,
                                            "clock_origin": origin_kind, "origin_ns": int(origin)})


def _origin(reader: Any, stamps: list[int]) -> tuple[int, str]:
    if RGB_STREAM in reader.stream_ids:
        frames = reader.filtered_by_fields(stream_ids={RGB_STREAM}, record_types={"data"})
        if len(frames):
            return int(frames[0].metadata_blocks[0]["capture_timestamp_ns"]), "rgb"
    return (int(stamps[0]) if stamps else 0), "imu"


def peek_vrs_rate(path: str | Path, stream: str = DEFAULT_STREAM, n_records: int = 512) -> float:
    """The stream's rate (Hz) from its first records' capture timestamps."""
    path = Path(path)
    reader = _reader(path)
    try:
        records = _records(reader, stream, path, n_records)
        stamps = [r.metadata_blocks[0]["capture_timestamp_ns"] for r in records]
    finally:
        reader.close()
    steps = np.diff(np.asarray(stamps, dtype=np.int64))
    steps = steps[steps > 0]
    if not steps.size:
        raise InputDataError(f"{path}: stream {stream} has no two increasing timestamps")
    return float(1e9 / np.median(steps))
