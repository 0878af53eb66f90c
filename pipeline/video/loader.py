"""Per-video decode tasks, run on every core by torch DataLoader workers.

``plan_tasks`` groups the windows to extract by video (first-appearance order), sorts each
video's windows by start time and cuts them into runs of at most ``max_windows``: each run is
one task, decoded in one pass by one worker. Tasks are ordered by their smallest row, so rows
come back roughly in row order and the consumer's buffer stays small.

A task's result holds the rows it served with their (k, F, 3, S, S) uint8 frames, and the rows
it could not serve with a reason each (a missing, truncated or undecodable file, or a window
past the video's end): counted rejects, never a crash.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader, Dataset

from comodo.pipeline.lifetime import die_with_parent
from comodo.pipeline.parallel import iter_distributed
from comodo.pipeline.video.decode import WindowRequest, decode_windows, frame_times
from comodo.pipeline.video.preprocess import resize_crop
from comodo.pipeline.video.sampling import DEFAULT_SAMPLING, sampling_rule, window_bounds_error
from comodo.stores.errors import InputDataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoTask:
    """Consecutive windows of one video, decoded together."""

    path: str
    kind: str
    fps: float | None
    rows: tuple[int, ...]
    starts: tuple[float, ...]
    ends: tuple[float, ...]


@dataclass
class TaskResult:
    rows: list[int] = field(default_factory=list)
    frames: torch.Tensor | None = None  # (k, F, 3, S, S) uint8, aligned with rows
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def pin_memory(self) -> TaskResult:
        """Called by the DataLoader's pinning thread when extracting to a GPU."""
        if self.frames is not None:
            self.frames = self.frames.pin_memory()
        return self


@dataclass(frozen=True)
class FrameSpec:
    """What every window becomes: F frames, resized and cropped for the teacher."""

    n_frames: int
    resize_short: int
    crop: int
    decoder: str = "auto"
    sampling: str = DEFAULT_SAMPLING  # a name in video.sampling.SAMPLING_RULES


def plan_tasks(windows: Sequence[dict], max_windows: int) -> tuple[list[VideoTask], list[tuple[int, str]]]:
    """Windows (dicts with row, video_path, video_kind, video_start_s, video_end_s, fps) -> tasks.

    Returns the tasks and the rows rejected before decoding (bad bounds, no video).
    """
    by_video: dict[tuple[str, str], list[dict]] = {}
    rejected: list[tuple[int, str]] = []
    for w in windows:
        reason = window_bounds_error(w["video_start_s"], w["video_end_s"])
        if not w["video_path"] or w["video_kind"] == "none":
            reason = "recording has no video (video_kind 'none')"
        if reason:
            rejected.append((w["row"], reason))
            continue
        by_video.setdefault((w["video_path"], w["video_kind"]), []).append(w)
    tasks = []
    for (path, kind), group in by_video.items():
        group.sort(key=lambda w: (w["video_start_s"], w["row"]))
        for i in range(0, len(group), max_windows):
            run = group[i : i + max_windows]
            tasks.append(VideoTask(path, kind, run[0].get("fps"), tuple(w["row"] for w in run),
                                   tuple(float(w["video_start_s"]) for w in run),
                                   tuple(float(w["video_end_s"]) for w in run)))
    tasks.sort(key=lambda t: min(t.rows))
    return tasks, rejected


def plan_requests(task: VideoTask, spec: FrameSpec, out: TaskResult) -> list[WindowRequest]:
    """Each window's frame targets under the sampling rule; unservable windows go to rejects."""
    rule = sampling_rule(spec.sampling)
    times, period = None, 0.0
    if rule.needs_frame_times:
        times, period = frame_times(task.path, task.kind, min(task.starts), max(task.ends), task.fps)
    requests = []
    for row, start, end in zip(task.rows, task.starts, task.ends, strict=True):
        targets = rule.targets(start, end, spec.n_frames, times, period)
        if targets is None:
            last = f"{times[-1]:.3f} s" if times is not None and len(times) else "none"
            out.rejected.append((row, f"window [{start:.3f}, {end:.3f}) s of {task.path} has no "
                                      f"frames to sample or reaches past the last frame ({last})"))
            continue
        requests.append(WindowRequest(row, start, end, targets))
    return requests


def decode_task(task: VideoTask, spec: FrameSpec) -> TaskResult:
    """Decode, sample, resize and crop every window of one task."""
    out = TaskResult()
    clips: list[torch.Tensor] = []
    try:
        if not os.path.exists(task.path):
            raise InputDataError(f"video {task.path} does not exist")
        requests = plan_requests(task, spec, out)
        for got in decode_windows(task.path, task.kind, requests, spec.decoder, task.fps):
            if got.frames is None:
                out.rejected.append((got.key, got.reason or "no frames"))
                continue
            clips.append(resize_crop(got.frames, spec.resize_short, spec.crop))  # (F, 3, S, S)
            out.rows.append(got.key)
    except InputDataError as err:
        served = set(out.rows) | {r for r, _ in out.rejected}
        out.rejected += [(r, str(err)) for r in task.rows if r not in served]
    if clips:
        out.frames = torch.stack(clips)  # (k, F, 3, S, S)
    return out


class TaskDataset(Dataset):
    """Map-style dataset: item i = the decoded windows of task i."""

    def __init__(self, tasks: Sequence[VideoTask], spec: FrameSpec):
        self.tasks = list(tasks)
        self.spec = spec

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, index: int) -> TaskResult:
        return decode_task(self.tasks[index], self.spec)


def _keep(item: TaskResult) -> TaskResult:
    return item


def iter_tasks(tasks: Sequence[VideoTask], spec: FrameSpec, num_workers: int,
               pin_memory: bool = False, scheduler: str | None = None) -> Iterator[TaskResult]:
    """Task results in task order; ``num_workers`` decode processes (0: in this process), or
    the workers of a dask cluster when ``scheduler`` is set ("local-cluster" or tcp://...)."""
    if scheduler is not None:
        yield from iter_distributed(functools.partial(decode_task, spec=spec), tasks, scheduler,
                                    num_workers)
        return
    if num_workers == 0:
        for task in tasks:
            yield decode_task(task, spec)
        return
    loader = DataLoader(TaskDataset(tasks, spec), batch_size=None, shuffle=False,
                        num_workers=min(num_workers, max(1, len(tasks))), collate_fn=_keep,
                        prefetch_factor=4, pin_memory=pin_memory, worker_init_fn=die_with_parent)
    yield from loader
