"""BasicMotions (UEA multivariate archive): smartwatch accelerometer + gyroscope, IMU only.

Expected files under ``root`` (``<P>`` is option ``problem``, default ``BasicMotions``)::

    <P>_TRAIN.ts   sktime/aeon .ts text: '#' comments, '@' header lines, then '@data' and one
    <P>_TEST.ts    case per line: 'd0_v1,d0_v2,...:d1_v1,...:...:d5_...:<label>'

BasicMotions has 40 + 40 cases of 6 dimensions x 100 steps at 10 Hz (option ``rate_hz``) and
4 classes (Standing, Running, Walking, Badminton). There is no video (``video_kind`` none).
The IMU lives inside the .ts: ``imu_path`` is the .ts file and ``extra.case`` the 0-based
index of the case among its data lines. Timestamps are i / rate_hz from 0.

Channels: the header says only "3D accelerometer and a 3D gyroscope"; dimensions 0-2 are read
as acc_x/y/z and 3-5 as gyro_x/y/z (the archive's usual reading). The units are not stated
and the values are not raw physical readings (the accelerometer norm averages ~0.8 while
standing, not 1 g or 9.8 m/s^2), so every channel's unit is ``a.u.``: the imu stage keeps
them as they are.

Split: ``files`` (default): TRAIN -> train, TEST -> test, and a seeded ``val_fraction`` of the
TRAIN cases (default 0) -> val; ``random``: a seeded split of all cases. Cases with a wrong
number of dimensions, unequal lengths, non-numeric values or a label outside the header's
``@classLabel`` list are rejected at scan time with their line number. '?' is a missing value
(NaN, dropped by the imu stage).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from comodo.pipeline.datasets.base import DatasetAdapter, ImuData, Recording, Reject
from comodo.pipeline.datasets.common import to_extra
from comodo.pipeline.datasets.readers import check_file, parse_extra, rate_times
from comodo.pipeline.datasets.splits import AdapterOptions, assign_splits, parse_options, random_split
from comodo.pipeline.registry import DATASETS
from comodo.stores.errors import InputDataError, LayoutError

CHANNELS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
UNIT = "a.u."
PARTS = {"TRAIN": "train", "TEST": "test"}


class BasicMotionsOptions(AdapterOptions):
    split: Literal["files", "auto", "random"] = "files"
    val_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    problem: str = "BasicMotions"
    rate_hz: float = Field(10.0, gt=0)


@dataclass
class TsCase:
    """One parsed case of a .ts file: values (T, C) or the reason it is unusable."""

    line: int
    label: str
    values: np.ndarray | None
    problem: str = ""


@DATASETS.register("basicmotions")
class BasicMotions(DatasetAdapter):
    """UEA BasicMotions .ts files (TRAIN/TEST), 6 x 100 at 10 Hz, IMU only, 4 classes."""

    name = "basicmotions"
    layout = "<problem>_TRAIN.ts and <problem>_TEST.ts in the sktime/aeon .ts format (6 dimensions)"

    def __init__(self, root: str | Path, dataset: str | None = None, **options: Any):
        super().__init__(root, dataset, **options)
        self.opts = parse_options(BasicMotionsOptions, options, self.name, self.dataset)

    def scan(self) -> tuple[list[Recording], list[Reject]]:
        recs: list[Recording] = []
        rejects: list[Reject] = []
        for part, split in PARTS.items():
            path = self.require(self.root / f"{self.opts.problem}_{part}.ts", f"{part} .ts file")
            for index, case in enumerate(read_ts(path, len(CHANNELS))):
                rid = f"{split}_{index:03d}"
                if case.values is None:
                    rejects.append(Reject("ingest", rid, "recording", f"{path}:{case.line}: {case.problem}"))
                    continue
                recs.append(Recording(
                    recording_id=rid, dataset=self.dataset, label=case.label, split=split,
                    imu_path=str(path), imu_rate_hz=self.opts.rate_hz,
                    extra=to_extra(case=index, line=case.line, file=path.name),
                ))
        self._split(recs)
        return recs, rejects

    def _split(self, recs: list[Recording]) -> None:
        if self.opts.split == "random":
            assign_splits(recs, self.opts, "random")
            return
        train = [r.recording_id for r in recs if r.split == "train"]
        carved = random_split(train, self.opts.seed, self.opts.val_fraction, 0.0)
        for r in recs:
            r.split = carved.get(r.recording_id, r.split)

    def load_imu(self, rec: dict[str, Any]) -> ImuData:
        path = Path(rec["imu_path"])
        case = parse_extra(rec).get("case")
        cases = read_ts(path, len(CHANNELS))
        if not isinstance(case, int) or not 0 <= case < len(cases):
            raise InputDataError(f"{path}: recording {rec.get('recording_id')} refers to case {case!r} "
                                 f"but the file has {len(cases)} cases; re-run ingest")
        found = cases[case]
        if found.values is None:
            raise InputDataError(f"{path}:{found.line}: {found.problem}")
        rate = float(rec.get("imu_rate_hz") or self.opts.rate_hz)
        return ImuData(t_s=rate_times(len(found.values), rate), values=found.values,
                       channels=list(CHANNELS), units=[UNIT] * len(CHANNELS),
                       meta={"source": f"{path}:{found.line}"})


def read_ts(path: Path, n_dims: int) -> list[TsCase]:
    """All cases of a .ts file, parsed once per file version (cached by size and mtime)."""
    stat = check_file(path).stat()
    return _read_ts(str(path), stat.st_size, stat.st_mtime_ns, n_dims)


@functools.lru_cache(maxsize=8)
def _read_ts(path: str, size: int, mtime_ns: int, n_dims: int) -> list[TsCase]:
    header: dict[str, str] = {}
    cases: list[TsCase] = []
    in_data = False
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                if line.startswith("@"):
                    key, _, value = line[1:].partition(" ")
                    header[key.lower()] = value.strip()
                    in_data = key.lower() == "data"
                continue
            cases.append(_parse_case(line, number, n_dims, _labels(header)))
    if not in_data:
        raise LayoutError(f"{path}: no '@data' line; expected the sktime/aeon .ts format")
    return cases


def _labels(header: dict[str, str]) -> set[str] | None:
    words = header.get("classlabel", "").split()
    return set(words[1:]) if words[:1] == ["true"] else None


def _parse_case(line: str, number: int, n_dims: int, labels: set[str] | None) -> TsCase:
    *dims, label = line.split(":")
    label = label.strip()
    if len(dims) != n_dims:
        return TsCase(number, label, None, f"expected {n_dims} dimensions and a label, found {len(dims)} "
                                           f"':'-separated series")
    if labels is not None and label not in labels:
        return TsCase(number, label, None, f"label {label!r} is not in the header's classes {sorted(labels)}")
    try:
        series = [[np.nan if v.strip() == "?" else float(v) for v in d.split(",")] for d in dims]
    except ValueError as err:
        return TsCase(number, label, None, f"non-numeric value ({err})")
    lengths = sorted({len(s) for s in series})
    if len(lengths) != 1:
        return TsCase(number, label, None, f"dimensions have unequal lengths {lengths}")
    return TsCase(number, label, np.asarray(series, dtype=np.float64).T)
