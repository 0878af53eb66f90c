"""Ego-Exo4D takes: the Aria glasses' IMU (from the take's VRS file, or a CSV) + the egocentric video.

Expected files under ``root``::

    takes.json                   the release's take list: a JSON list (or {"takes": [...]}) of
                                 objects with take_uid, take_name, parent_task_name (one of the 8
                                 scenarios: Cooking, Health, Bike Repair, Music, Basketball, Rock
                                 Climbing, Soccer, Dance), optional task_name, participant_uid
      or takes.csv               the same fields as columns
    takes/<take_name>/*_noimagestreams.vrs   the take's Aria VRS as released (option
                                 vrs_file, a glob): IMU stream 1202-1 (~1 kHz, COMODO's choice;
                                 option vrs_stream, e.g. 1202-2 at ~800 Hz), read with pyvrs
                                 (extra ``vrs``; ``aria_vrs``)
      or takes/<take_name>/imu.csv   Ego4D IMU columns canonical_timestamp_ms, accl_x, accl_y,
                                 accl_z (m/s^2), gyro_x, gyro_y, gyro_z (rad/s); extra columns ignored
    takes/<take_name>/video.mp4  the egocentric (Aria RGB) video of the take
    annotations/splits.json      optional: {"take_uid_to_split": {uid: train|val|test}}
    train.txt val.txt test.txt   instead of takes.json: COMODO's lists of
                                 ``take_name<TAB>parent_task_name``, which also give the split

A take folder named by ``take_uid`` instead of ``take_name`` is found too. The label is the
take's ``parent_task_name`` (option ``label_field``, e.g. ``task_name`` for the finer activities);
with option ``labels`` set, takes whose label is not in it are rejected. ``subject`` is
``participant_uid`` when present.

Option ``imu_source``: ``auto`` (default) reads imu.csv when the take has one, else the VRS;
``csv`` or ``vrs`` insist on one. With ``recordings: vrs_files`` there is no take list:
every ``**/*.vrs`` under ``root`` is one IMU-only recording labelled option ``label`` (Aria
recordings such as Aria Everyday Activities), split at random.

Clock: ``canonical_timestamp_ms`` is on the take's canonical clock whose 0 is the video's
first frame, so ``video_start_s`` = 0 and IMU times are those timestamps in seconds. From a
VRS, ``capture_timestamp_ns`` is moved so that the RGB stream's first frame is 0 (the first
IMU sample when the file has no image stream; ``aria_vrs``). The native rate is estimated
from the first rows at scan time (Aria IMUs run at ~800-1000 Hz).

Split (option ``split``): ``auto`` uses annotations/splits.json when present (``files``),
otherwise a seeded split by take (``random``) or, with ``split: subject``, by participant.
Takes without an IMU CSV or video, empty CSVs and unreadable videos are rejected.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import polars as pl

from comodo.pipeline.datasets.aria_vrs import DEFAULT_STREAM, peek_vrs_rate, read_vrs_imu
from comodo.pipeline.datasets.base import DatasetAdapter, ImuData, Recording, Reject
from comodo.pipeline.datasets.common import (
    EGO4D_COLUMNS,
    estimate_rate,
    probe_video,
    read_imu_csv,
    read_label_list,
    to_extra,
)
from comodo.pipeline.datasets.readers import first_line, read_table
from comodo.pipeline.datasets.splits import SPLITS, AdapterOptions, assign_splits, parse_options, resolve_mode
from comodo.pipeline.registry import DATASETS
from comodo.stores.errors import InputDataError, LayoutError

SPLIT_NAMES = {"train": "train", "val": "val", "validation": "val", "test": "test"}


class EgoExo4DOptions(AdapterOptions):
    label_field: str = "parent_task_name"
    labels: list[str] | None = None
    imu_file: str = "imu.csv"
    video_file: str = "video.mp4"
    imu_source: Literal["auto", "csv", "vrs"] = "auto"
    vrs_file: str = "*_noimagestreams.vrs"  # glob in the take folder; the first match is read
    vrs_stream: str = DEFAULT_STREAM
    recordings: Literal["takes", "vrs_files"] = "takes"
    label: str = "unlabelled"  # the label of every recording with recordings: vrs_files


@DATASETS.register("egoexo4d")
class EgoExo4D(DatasetAdapter):
    """Ego-Exo4D takes: takes.json + takes/<take>/imu.csv (Ego4D columns) + takes/<take>/video.mp4."""

    name = "egoexo4d"
    layout = ("takes.json (or takes.csv) with take_uid, take_name, parent_task_name; "
              "takes/<take_name>/imu.csv (canonical_timestamp_ms, accl_*, gyro_*) + "
              "takes/<take_name>/video.mp4; optional annotations/splits.json")

    def __init__(self, root: str | Path, dataset: str | None = None, **options: Any):
        super().__init__(root, dataset, **options)
        self.opts = parse_options(EgoExo4DOptions, options, self.name, self.dataset)

    def takes(self) -> list[dict[str, Any]]:
        source = self.root / "takes.json"
        if source.is_file():
            try:
                data = json.loads(source.read_text(encoding="utf-8"))
            except json.JSONDecodeError as err:
                raise LayoutError(f"{source} is not valid JSON: {err}") from None
            takes = data.get("takes") if isinstance(data, dict) else data
            if not isinstance(takes, list) or not all(isinstance(t, dict) for t in takes):
                raise LayoutError(f"{source}: expected a list of take objects (or {{'takes': [...]}}), "
                                  f"found {type(takes).__name__}")
        elif (self.root / "takes.csv").is_file() or not self._listed():
            source = self.require(self.root / "takes.csv", "takes.json or takes.csv")
            takes = list(read_table(source).iter_rows(named=True))
        else:  # split lists only: each line names a take and its label
            source = self.root / "train.txt"
            takes = [{"take_uid": name, "take_name": name, self.opts.label_field: label}
                     for name, (label, _) in self._listed().items()]
        need = {"take_uid", self.opts.label_field}
        for number, take in enumerate(takes):
            if not need <= set(take):
                raise LayoutError(f"take #{number} in {source} lacks {sorted(need - set(take))}; "
                                  f"found fields {sorted(take)[:12]}")
        return takes

    def _listed(self) -> dict[str, tuple[str, str]]:
        """take_name -> (label, split) from COMODO's lists (train/val/test.txt of
        ``take_name<TAB>parent_task_name``), used when there is no takes.json or takes.csv."""
        if (self.root / "takes.json").is_file() or (self.root / "takes.csv").is_file():
            return {}
        out: dict[str, tuple[str, str]] = {}
        for split in SPLITS:
            path = self.root / f"{split}.txt"
            if path.is_file():
                out.update({name: (label, split) for name, label in read_label_list(path).items()})
        return out

    def inventory(self) -> list[str]:
        if self.opts.recordings == "vrs_files":
            return []
        takes, splits = self.takes(), self._splits()
        labels = {str(t.get(self.opts.label_field)) for t in takes}
        counts = Counter(splits.get(str(t["take_uid"]), "unassigned") for t in takes)
        return [f"takes: {len(takes)} ({', '.join(f'{s} {n}' for s, n in sorted(counts.items()))}), "
                f"{len(labels)} labels ({self.opts.label_field})"]

    def _splits(self) -> dict[str, str]:
        path = self.root / "annotations" / "splits.json"
        if not path.is_file():
            return {name: split for name, (_, split) in self._listed().items()}
        try:
            mapping = json.loads(path.read_text(encoding="utf-8")).get("take_uid_to_split")
        except (json.JSONDecodeError, AttributeError) as err:
            raise LayoutError(f"{path}: expected {{'take_uid_to_split': {{uid: split}}}} ({err})") from None
        if not isinstance(mapping, dict):
            raise LayoutError(f"{path}: no 'take_uid_to_split' mapping")
        bad = sorted({str(v) for v in mapping.values()} - set(SPLIT_NAMES))
        if bad:
            raise LayoutError(f"{path}: unknown split names {bad}; expected {sorted(SPLIT_NAMES)}")
        return {str(uid): SPLIT_NAMES[str(s)] for uid, s in mapping.items()}

    def scan(self) -> tuple[list[Recording], list[Reject]]:
        if self.opts.recordings == "vrs_files":
            return self._scan_vrs_files()
        takes, splits = self.takes(), self._splits()
        mode = resolve_mode(self.opts, bool(splits))
        keys = [((take, splits.get(str(take["take_uid"]), "")), str(take["take_uid"])) for take in takes]
        recs, rejects = self.probe_each(keys, self._recording)
        if mode == "files":
            rejects += [Reject("ingest", r.recording_id, "recording",
                               "take is in no split of annotations/splits.json")
                        for r in recs if r.split not in SPLITS]
            recs = [r for r in recs if r.split in SPLITS]
        if mode != "files":
            assign_splits(recs, self.opts, mode)
        return recs, rejects

    def _recording(self, take: dict[str, Any], split: str) -> Recording:
        uid, name = str(take["take_uid"]), str(take.get("take_name") or take["take_uid"])
        label = str(take[self.opts.label_field] or "")
        if not label or (self.opts.labels is not None and label not in self.opts.labels):
            raise InputDataError(f"take {name}: label {label!r} ({self.opts.label_field}) is not one of "
                                 f"{self.opts.labels or 'a non-empty name'}")
        folder = self.root / "takes" / name
        folder = folder if folder.is_dir() else self.root / "takes" / uid
        imu, video = self._imu_file(folder, name), folder / self.opts.video_file
        fps, duration = probe_video(video)
        subject = take.get("participant_uid")
        return Recording(
            recording_id=uid, dataset=self.dataset, label=label, split=split, imu_path=str(imu),
            imu_rate_hz=self._rate(imu), subject=None if subject is None else str(subject),
            video_path=str(video), video_kind="mp4", fps=fps, video_start_s=0.0,
            video_duration_s=duration,
            extra=to_extra(take_name=name, task_name=take.get("task_name")),
        )

    def _imu_file(self, folder: Path, name: str) -> Path:
        csv = folder / self.opts.imu_file
        if self.opts.imu_source != "vrs" and csv.is_file():
            return csv
        found = sorted(folder.glob(self.opts.vrs_file)) if self.opts.imu_source != "csv" else []
        if not found:
            looked = {"auto": f"{csv.name} or {self.opts.vrs_file}", "csv": csv.name,
                      "vrs": self.opts.vrs_file}[self.opts.imu_source]
            raise InputDataError(f"take {name}: no IMU file ({looked}) in {folder}")
        return found[0]

    def _rate(self, imu: Path) -> float:
        return peek_vrs_rate(imu, self.opts.vrs_stream) if imu.suffix == ".vrs" else peek_rate(imu)

    def _scan_vrs_files(self) -> tuple[list[Recording], list[Reject]]:
        files = sorted(self.root.glob("**/*.vrs"))
        if not files:
            self.require(self.root / "<name>.vrs", "an Aria .vrs file")
        keys = [((path,), path.relative_to(self.root).as_posix()) for path in files]
        recs, rejects = self.probe_each(keys, self._vrs_recording)
        assign_splits(recs, self.opts, "random" if self.opts.split == "auto" else self.opts.split)
        return recs, rejects

    def _vrs_recording(self, path: Path) -> Recording:
        return Recording(recording_id=path.relative_to(self.root).with_suffix("").as_posix(),
                         dataset=self.dataset, label=self.opts.label, split="", imu_path=str(path),
                         imu_rate_hz=self._rate(path), extra=to_extra(stream=self.opts.vrs_stream))

    def load_imu(self, rec: dict[str, Any]) -> ImuData:
        if str(rec["imu_path"]).endswith(".vrs"):
            return read_vrs_imu(rec["imu_path"], self.opts.vrs_stream)
        return read_imu_csv(rec["imu_path"])


def peek_rate(path: Path, n_rows: int = 512) -> float:
    """The native rate from the first rows' timestamps, without reading the whole file."""
    if path.stat().st_size == 0:
        raise InputDataError(f"IMU file {path} is empty (0 bytes); re-export it or remove the take")
    try:
        head = pl.read_csv(path, n_rows=n_rows, columns=[EGO4D_COLUMNS[0]])
    except Exception as err:  # polars raises several error types for malformed files
        raise InputDataError(
            f"IMU file {path} has no readable {EGO4D_COLUMNS[0]!r} column: {first_line(err)}") from None
    rate = estimate_rate(head[EGO4D_COLUMNS[0]].cast(pl.Float64, strict=False).to_numpy() * 1e-3)
    if rate != rate:  # NaN: fewer than two increasing timestamps
        raise InputDataError(f"IMU file {path}: no two increasing timestamps in its first {n_rows} rows")
    return rate
