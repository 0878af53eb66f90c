"""UCI HAPT (Smartphone-Based Recognition of Human Activities and Postural Transitions), IMU only.

Expected files under ``root`` (the release's ``RawData`` folder, or a folder holding it)::

    acc_exp<EE>_user<UU>.txt    one experiment's waist-worn smartphone accelerometer: 3
                                space-separated columns x, y, z in g, 50 Hz (option rate_hz)
    gyro_exp<EE>_user<UU>.txt   optional: the gyroscope, 3 columns in rad/s, same rows
    labels.txt                  one labelled stretch per line: ``experiment user activity
                                start_row end_row`` (rows 1-based, inclusive)
    activity_labels.txt         optional (here or one folder up): ``<id> <NAME>``; without it
                                the release's 12 names (WALKING ... LIE_TO_STAND) are used

Every labels.txt line is one recording (``exp01_user01_0250``: experiment, user, first row),
labelled with the activity's name; ``subject`` is the user. There is no video
(``video_kind`` none). Timestamps are (row - 1) / 50 s from the experiment's start, so the
stretches keep their place on the experiment's clock.

Sensors (option ``sensors``): ``acc`` reads the accelerometer only (3 channels), ``acc+gyro``
both (6 channels; an experiment without its gyro file is a reject), ``auto`` (default) the
latter when any gyro file is there. Option ``activities`` keeps only the listed activity ids
(e.g. ``[1, 2, 3, 4, 5, 6]``, the six basic activities without the transitions).

Split (option ``split``): ``subject`` (default) puts the users of ``test_subjects`` (default
the nine test volunteers of the UCI HAR split: 2, 4, 9, 10, 12, 13, 18, 20, 24) in test and
the others in train (``val_subjects`` in val); ``random``: a seeded split by stretch.
labels.txt lines whose experiment has no accelerometer file are skipped (logged), not
rejected: a partial copy of the release is a smaller dataset, not a broken one. Lines that
are malformed or point past the end of the file are rejects with their line number.
"""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from comodo.pipeline.datasets.base import DatasetAdapter, ImuData, Recording, Reject
from comodo.pipeline.datasets.common import to_extra
from comodo.pipeline.datasets.readers import check_file, parse_extra
from comodo.pipeline.datasets.splits import AdapterOptions, assign_splits, parse_options
from comodo.pipeline.registry import DATASETS
from comodo.stores.errors import InputDataError, LayoutError

log = logging.getLogger(__name__)

ACTIVITIES = {1: "WALKING", 2: "WALKING_UPSTAIRS", 3: "WALKING_DOWNSTAIRS", 4: "SITTING",
              5: "STANDING", 6: "LAYING", 7: "STAND_TO_SIT", 8: "SIT_TO_STAND", 9: "SIT_TO_LIE",
              10: "LIE_TO_SIT", 11: "STAND_TO_LIE", 12: "LIE_TO_STAND"}
UCI_HAR_TEST_USERS = ["2", "4", "9", "10", "12", "13", "18", "20", "24"]
ACC_FILE = re.compile(r"^acc_exp(\d+)_user(\d+)\.txt$")
UNITS = {"acc": "g", "gyro": "rad/s"}


class HaptOptions(AdapterOptions):
    split: Literal["subject", "random"] = "subject"
    val_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    test_subjects: list[str] = Field(default_factory=lambda: list(UCI_HAR_TEST_USERS))
    rate_hz: float = Field(50.0, gt=0)
    sensors: Literal["auto", "acc", "acc+gyro"] = "auto"
    activities: list[int] | None = None


@DATASETS.register("hapt")
class Hapt(DatasetAdapter):
    """UCI HAPT RawData: acc_exp*_user*.txt (+ gyro_*) and labels.txt, 50 Hz, IMU only."""

    name = "hapt"
    layout = ("RawData/ (or the folder itself) with acc_exp<EE>_user<UU>.txt (3 columns, g, 50 Hz), "
              "optional gyro_exp<EE>_user<UU>.txt, labels.txt of 'experiment user activity start end'")

    def __init__(self, root: str | Path, dataset: str | None = None, **options: Any):
        super().__init__(root, dataset, **options)
        self.opts = parse_options(HaptOptions, options, self.name, self.dataset)
        self.raw = self.root / "RawData" if (self.root / "RawData").is_dir() else self.root

    def _activity_names(self) -> dict[int, str]:
        for folder in (self.raw, self.raw.parent):
            path = folder / "activity_labels.txt"
            if path.is_file():
                pairs = [line.split(None, 1) for line in path.read_text(encoding="utf-8").splitlines()]
                return {int(p[0]): p[1].strip() for p in pairs if len(p) == 2 and p[0].isdigit()}
        return dict(ACTIVITIES)

    def _sensors(self) -> tuple[str, ...]:
        if self.opts.sensors == "auto":
            return ("acc", "gyro") if any(self.raw.glob("gyro_exp*_user*.txt")) else ("acc",)
        return tuple(self.opts.sensors.split("+"))

    def scan(self) -> tuple[list[Recording], list[Reject]]:
        labels = self.require(self.raw / "labels.txt", "labels.txt")
        files = {(int(m.group(1)), int(m.group(2))): p for p in sorted(self.raw.iterdir())
                 if (m := ACC_FILE.match(p.name))}
        if not files:
            self.require(self.raw / "acc_exp01_user01.txt", "an acc_exp<EE>_user<UU>.txt file")
        names, sensors = self._activity_names(), self._sensors()
        recs: list[Recording] = []
        rejects: list[Reject] = []
        absent: set[tuple[int, int]] = set()
        for number, line in enumerate(labels.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = self._recording(line, files, names, sensors, absent)
            except InputDataError as err:
                rejects.append(Reject("ingest", f"{labels.name}:{number}", "recording",
                                      f"{labels}:{number}: {err}"))
                continue
            if rec is not None:
                recs.append(rec)
        if absent:
            log.info("hapt: %d experiments in labels.txt have no accelerometer file here and are skipped",
                     len(absent))
        assign_splits(recs, self.opts, self.opts.split)
        return recs, rejects

    def _recording(self, line: str, files: dict[tuple[int, int], Path], names: dict[int, str],
                   sensors: tuple[str, ...], absent: set[tuple[int, int]]) -> Recording | None:
        fields = line.split()
        if len(fields) != 5 or not all(f.isdigit() for f in fields):
            raise InputDataError(f"expected 'experiment user activity start_row end_row', found {line!r}")
        exp, user, activity, start, end = map(int, fields)
        if (exp, user) not in files:
            absent.add((exp, user))
            return None
        if self.opts.activities is not None and activity not in self.opts.activities:
            return None
        if activity not in names or not 1 <= start <= end:
            raise InputDataError(f"activity {activity} (known: {sorted(names)}) or rows {start}-{end} "
                                 f"invalid")
        acc = files[(exp, user)]
        gyro = acc.with_name(acc.name.replace("acc_", "gyro_", 1)) if "gyro" in sensors else None
        if gyro is not None and not gyro.is_file():
            raise InputDataError(f"no gyroscope file {gyro} (set option sensors: acc to use the "
                                 f"accelerometer only)")
        n_rows = len(read_rows(acc))
        if end > n_rows:
            raise InputDataError(f"rows {start}-{end} run past the {n_rows} rows of {acc.name}")
        return Recording(
            recording_id=f"exp{exp:02d}_user{user:02d}_{start:05d}", dataset=self.dataset,
            label=names[activity], split="", imu_path=str(acc), imu_rate_hz=self.opts.rate_hz,
            subject=str(user), extra=to_extra(experiment=exp, activity=activity, start_row=start,
                                              end_row=end, gyro_path=None if gyro is None else str(gyro)),
        )

    def load_imu(self, rec: dict[str, Any]) -> ImuData:
        extra = parse_extra(rec)
        lo, hi = int(extra["start_row"]) - 1, int(extra["end_row"])
        paths = {"acc": Path(rec["imu_path"])}
        if extra.get("gyro_path"):
            paths["gyro"] = Path(extra["gyro_path"])
        parts = []
        for path in paths.values():
            rows = read_rows(path)
            if hi > len(rows):
                raise InputDataError(f"{path}: recording {rec['recording_id']} needs rows {lo + 1}-{hi} "
                                     f"but the file has {len(rows)}; re-run ingest")
            parts.append(rows[lo:hi])
        rate = float(rec.get("imu_rate_hz") or self.opts.rate_hz)
        channels = [f"{kind}_{axis}" for kind in paths for axis in "xyz"]
        return ImuData(t_s=np.arange(lo, hi) / rate, values=np.concatenate(parts, axis=1),
                       channels=channels, units=[UNITS[c.split("_")[0]] for c in channels],
                       meta={"source": str(paths["acc"]), "rows": [lo + 1, hi]})


def read_rows(path: Path) -> np.ndarray:
    """(N, 3) values of one HAPT sensor file, parsed once per file version."""
    stat = check_file(path).stat()
    return _read_rows(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _read_rows(path: str, size: int, mtime_ns: int) -> np.ndarray:
    try:
        values = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise InputDataError(f"{path}: not 3 space-separated numbers per line ({err})") from None
    if values.shape[1] != 3:
        raise LayoutError(f"{path}: expected 3 columns (x y z), found {values.shape[1]}")
    return values
