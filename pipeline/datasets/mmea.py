"""UESTC-MMEA-CL: egocentric video + head-worn accelerometer/gyroscope in raw counts, 32 classes.

Expected files under ``root`` (the dataset's own layout)::

    video/<n>_<class>/<clip>.mp4     e.g. video/1_upstairs/1_upstairs_2020_12_28_15_44_31.mp4
    sensor/<n>_<class>/<clip>.csv    6 columns, no timestamps: acc x,y,z then gyro x,y,z in raw
                                     sensor counts, 25 Hz (option rate_hz); a header row is allowed
    mydataset_{train,val,test}.txt   optional split lists as the dataset ships them: lines
                                     ``yourdataset_path/data/<n>_<class>/<clip> <n_rgb_frames>
                                     <n_sensor_rows> <label>`` with 0-based labels (class ``<n>`` has
                                     label ``<n> - 1``, checked); LF or CRLF, last newline optional
    train.txt val.txt test.txt       or comodo's names for the same lists; the first
                                     whitespace-separated field is ``<n>_<class>/<clip>``, any leading
                                     folders and a file extension are ignored

The label is ``<class>`` (the folder name without its number, e.g. ``upstairs``); ``extra``
keeps ``class_id`` = ``<n>``. Video and sensor clips are synchronised and cut together, so
``video_start_s`` = 0 and IMU timestamps are i / 25 s. Units are ``count``: the imu stage
divides them by ``imu.scale_factors`` (default acc 16384 counts/g, gyro 16.4 counts per deg/s,
the COMODO paper's values) when ``imu.scale: mmea`` is set for the dataset, and refuses raw
counts otherwise. The dataset's own loader divides the accelerometer by 8192 (a ±4 g range):
its accelerations are twice COMODO's (docs/DATASETS.md); the imu stage's units check says
which one the data follow.

Split (option ``split``): ``auto`` uses the split lists when any exists (``files``), else a
seeded split by clip (``random``). Listed clips without a sensor CSV or video, empty CSVs and
unreadable videos are rejected at scan time; clips on disk that no list names are skipped
(logged). Videos are probed (fps, duration) unless ``probe_video: false``.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from comodo.pipeline.datasets.base import DatasetAdapter, ImuData, Recording, Reject
from comodo.pipeline.datasets.common import probe_video, to_extra
from comodo.pipeline.datasets.readers import numeric_columns, rate_times, read_table, require_rows
from comodo.pipeline.datasets.splits import SPLITS, AdapterOptions, assign_splits, parse_options, resolve_mode
from comodo.pipeline.registry import DATASETS
from comodo.stores.errors import InputDataError, LayoutError

log = logging.getLogger(__name__)

CHANNELS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
CLASS_DIR = re.compile(r"^(\d+)_(.+)$")
LIST_NAMES = ("{split}.txt", "mydataset_{split}.txt")


class MmeaOptions(AdapterOptions):
    rate_hz: float = Field(25.0, gt=0)
    probe_video: bool = True


@DATASETS.register("mmea")
class Mmea(DatasetAdapter):
    """UESTC-MMEA-CL: video/<n>_<class>/<clip>.mp4 + sensor/<n>_<class>/<clip>.csv (counts, 25 Hz)."""

    name = "mmea"
    layout = ("video/<n>_<class>/<clip>.mp4 + sensor/<n>_<class>/<clip>.csv (6 columns, counts, 25 Hz); "
              "optional split lists mydataset_{train,val,test}.txt or train.txt/val.txt/test.txt "
              "listing <n>_<class>/<clip>")

    def __init__(self, root: str | Path, dataset: str | None = None, **options: Any):
        super().__init__(root, dataset, **options)
        self.opts = parse_options(MmeaOptions, options, self.name, self.dataset)

    def split_lists(self) -> dict[str, Path]:
        """split -> its list file: ``<split>.txt`` or the release's ``mydataset_<split>.txt``."""
        found: dict[str, Path] = {}
        for split in SPLITS:
            names = [n for n in LIST_NAMES if (self.root / n.format(split=split)).is_file()]
            if len(names) > 1:
                raise LayoutError(f"mmea: both {[n.format(split=split) for n in names]} are in {self.root}; "
                                  f"keep one list per split")
            if names:
                found[split] = self.root / names[0].format(split=split)
        return found

    def _listed(self) -> dict[str, str]:
        """clip key ``<n>_<class>/<clip>`` -> split, from the split lists that exist."""
        out: dict[str, str] = {}
        lists = self.split_lists()
        for split, path in lists.items():
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                key = list_entry(line, f"{path}:{number}")
                if key in out and out[key] != split:
                    raise InputDataError(f"{path}:{number}: clip {key} is also listed in "
                                         f"{lists[out[key]].name}")
                out[key] = split
        return out

    def scan(self) -> tuple[list[Recording], list[Reject]]:
        listed = self._listed()
        if not listed:  # with split lists, each listed clip without files is its own reject
            self.require(self.root / "sensor", "sensor folder")
            self.require(self.root / "video", "video folder")
        on_disk = {f"{p.parent.name}/{p.stem}" for p in (self.root / "sensor").glob("*/*.csv")}
        mode = resolve_mode(self.opts, bool(listed))
        keys = sorted(listed) if mode == "files" else sorted(on_disk)
        skipped = len(on_disk - set(keys))
        if skipped:
            log.info("mmea: %d sensor clips are in no split list and are skipped", skipped)
        recs, rejects = self.probe_each([((key, listed.get(key, "")), key) for key in keys], self._recording)
        if mode != "files":
            assign_splits(recs, self.opts, mode)
        return recs, rejects

    def inventory(self) -> list[str]:
        lists = self.split_lists()
        listed = self._listed()
        splits = Counter(listed.values())
        classes = {key.split("/")[0] for key in listed}
        counts = ", ".join(f"{s} {splits[s]}" for s in SPLITS if s in splits)
        return [f"split lists: {', '.join(p.name for p in lists.values()) or 'none'}: "
                f"{counts} clips, {len(classes)} classes"]

    def _recording(self, key: str, split: str) -> Recording:
        folder, clip = key.split("/", 1)
        match = CLASS_DIR.match(folder)
        if not match:
            raise InputDataError(f"class folder {folder!r} is not '<n>_<class>'")
        sensor = self.root / "sensor" / folder / f"{clip}.csv"
        video = self.root / "video" / folder / f"{clip}.mp4"
        for path, what in ((sensor, "sensor CSV"), (video, "video")):
            if not path.is_file():
                raise InputDataError(f"no {what} {path}")
        if sensor.stat().st_size == 0:
            raise InputDataError(f"sensor CSV {sensor} is empty (0 bytes)")
        fps, duration = probe_video(video) if self.opts.probe_video else (None, None)
        return Recording(
            recording_id=key, dataset=self.dataset, label=match.group(2), split=split,
            imu_path=str(sensor), imu_rate_hz=self.opts.rate_hz, video_path=str(video),
            video_kind="mp4", fps=fps, video_start_s=0.0, video_duration_s=duration,
            extra=to_extra(class_id=int(match.group(1))),
        )

    def load_imu(self, rec: dict[str, Any]) -> ImuData:
        path = Path(rec["imu_path"])
        table = read_table(path, has_header=False)
        if table.width != len(CHANNELS):
            raise InputDataError(f"{path}: expected {len(CHANNELS)} columns (acc x,y,z, gyro x,y,z in "
                                 f"counts), found {table.width}")
        values = numeric_columns(table, table.columns, path)
        if len(values) and not np.isfinite(values[0]).any():
            values = values[1:]  # a header row
        require_rows(values, path)
        rate = float(rec.get("imu_rate_hz") or self.opts.rate_hz)
        return ImuData(t_s=rate_times(len(values), rate), values=values, channels=list(CHANNELS),
                       units=["count"] * len(CHANNELS), meta={"source": str(path)})


def list_entry(line: str, where: str) -> str:
    """The clip key of one split-list line; a release line's 0-based label must match ``<n>``."""
    fields = line.split()
    key = clip_key(fields[0])
    if key is None:
        raise InputDataError(f"{where}: expected '<n>_<class>/<clip>' first, found {fields[0]!r}")
    if len(fields) == 4:  # path n_rgb_frames n_sensor_rows label
        number = int(CLASS_DIR.match(key.split("/")[0]).group(1))
        if fields[3] != str(number - 1):
            raise InputDataError(f"{where}: label {fields[3]} does not match class folder "
                                 f"{key.split('/')[0]} "
                                 f"(labels are 0-based: expected {number - 1})")
    return key


def clip_key(field: str) -> str | None:
    """``<n>_<class>/<clip>`` from a split-list path (leading folders and extension dropped)."""
    parts = [p for p in field.replace("\\", "/").split("/") if p]
    if len(parts) < 2 or not CLASS_DIR.match(parts[-2]):
        return None
    clip = parts[-1].rsplit(".", 1)[0] if parts[-1].lower().endswith((".mp4", ".csv")) else parts[-1]
    return f"{parts[-2]}/{clip}"
