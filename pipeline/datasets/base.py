"""The adapter interface and the one recordings schema every dataset is normalised into.

An adapter reads one dataset's native layout. ``scan()`` lists its recordings (rows of the
recordings schema) and the files it had to skip (rejects); Adapters whose recordings need
opening to be described (a video's fps and duration, an IMU file's rate) list their keys and
hand one probe per key to ``probe_each``, which the ingest stage spreads over its workers or
dask scheduler (``spread``); results keep the keys' order. ``load_imu()`` returns one
recording's raw IMU with timestamps on the recording's canonical clock, in the units the
source uses. Videos are read later by the features stage from ``video_path``/``video_kind``.

Clocks: every time is in seconds. ``video_start_s`` is where the video's first frame lies on
the canonical clock; IMU timestamps are on the same clock. Pairing is by these times,
never by array index. The schema's polars types and frames are in ``tables`` (this module
is imported by every pool worker that reads IMU, which need not load polars).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from comodo.pipeline.parallel import map_parallel
from comodo.stores.errors import InputDataError, LayoutError

VIDEO_KINDS = ("mp4", "depth_mat", "none")

@dataclass
class Recording:
    """One paired (or IMU-only) recording in the common schema."""

    recording_id: str
    dataset: str
    label: str | None
    split: str
    imu_path: str
    imu_rate_hz: float | None = None
    subject: str | None = None
    video_path: str | None = None
    video_kind: str = "none"
    fps: float | None = None
    video_start_s: float = 0.0
    video_duration_s: float | None = None
    extra: str = "{}"


@dataclass
class Reject:
    """One skipped input and why."""

    stage: str
    item: str
    kind: str
    reason: str


@dataclass
class ImuData:
    """Raw IMU of one recording: (T,) timestamps in seconds and (T, C) values."""

    t_s: np.ndarray
    values: np.ndarray
    channels: list[str]
    units: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or len(self.t_s) != len(self.values):
            raise InputDataError(
                f"IMU arrays disagree: {len(self.t_s)} timestamps vs values of shape {self.values.shape}"
            )
        if self.values.shape[1] != len(self.channels) or len(self.units) != len(self.channels):
            raise InputDataError(
                f"IMU has {self.values.shape[1]} columns but {len(self.channels)} channel names "
                f"and {len(self.units)} units"
            )


@dataclass(frozen=True)
class _Probe:
    """One key's probe, run anywhere: a ``Recording``, or a reject when its files are bad."""

    probe: Callable[..., Recording]

    def __call__(self, item: tuple[tuple[Any, ...], str]) -> Recording | Reject:
        args, item_id = item
        try:
            return self.probe(*args)
        except InputDataError as err:
            return Reject("ingest", item_id, "recording", str(err))


class DatasetAdapter(ABC):
    """Base class: one subclass per dataset layout, registered in ``DATASETS``."""

    name: ClassVar[str] = ""
    layout: ClassVar[str] = ""  # one-line description of the expected files, used in errors
    spread: tuple[int, str | None] = (1, None)  # (workers, scheduler) for probe_each

    def __init__(self, root: str | Path, dataset: str | None = None, **options: Any):
        self.root = Path(root)
        self.dataset = dataset or self.name
        self.options = options
        if not self.root.exists():
            raise LayoutError(
                f"{self.name}: dataset root {self.root} does not exist; expected {self.layout}. "
                f"Set 'datasets.{self.dataset}.root' in params.yaml to the folder that holds it"
            )

    @abstractmethod
    def scan(self) -> tuple[list[Recording], list[Reject]]:
        """List the recordings of the layout and the inputs skipped (with reasons)."""

    def probe_each(self, keys: Sequence[tuple[tuple[Any, ...], str]], probe: Callable[..., Recording]
                   ) -> tuple[list[Recording], list[Reject]]:
        """``probe(*args)`` for every ``(args, recording id)``, on the workers of ``spread``;
        an ``InputDataError`` becomes that recording's reject. ``probe`` must pickle (a bound
        method or a ``functools.partial`` of one)."""
        outs = self.probe_all(keys, probe)
        return ([o for o in outs if isinstance(o, Recording)], [o for o in outs if isinstance(o, Reject)])

    def probe_all(self, keys: Sequence[tuple[tuple[Any, ...], str]], probe: Callable[..., Recording]
                  ) -> list[Recording | Reject]:
        """``probe_each``'s outcomes, one per key in the keys' order."""
        workers, scheduler = self.spread
        return map_parallel(_Probe(probe), list(keys), workers, scheduler, desc="ingest", unit="rec")

    @abstractmethod
    def load_imu(self, rec: dict[str, Any]) -> ImuData:
        """Read one recording's raw IMU (a row of recordings.parquet as a dict)."""

    def inventory(self) -> list[str]:
        """Lines on the layout's own lists (split files, label counts) for check-dataset."""
        return []

    def require(self, path: Path, what: str) -> Path:
        """Fail with what was looked for and what was found when a layout file is missing."""
        if not path.exists():
            found = sorted(p.name for p in path.parent.iterdir())[:10] if path.parent.is_dir() else []
            raise LayoutError(
                f"{self.name}: {what} not found at {path}; expected layout: {self.layout}; "
                f"found in {path.parent}: {found or 'nothing'}"
            )
        return path
