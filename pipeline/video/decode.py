"""Decode only the frames that windows need, from one video.

``decode_windows(path, kind, requests, decoder)`` yields one ``WindowFrames`` per request:
(F, H, W, 3) uint8 RGB frames chosen by the rule in ``sampling``, or a reason why the window
cannot be served. A file that cannot be opened raises ``InputDataError``; a decode error
mid-stream rejects the windows not yet served.

Decoders (``DECODERS``):
- ``pyav``: one sequential pass from the keyframe before the first target to the last one,
  converting only the frames chosen. Fastest when the windows tile the video (PERF-NOTES).
- ``decord``: random access by frame index via the container index; pays off when windows
  are sparse (the span between them is mostly unused).
- ``auto``: ``pyav`` when the requested windows cover at least ``AUTO_MIN_COVERAGE`` of the
  span from the first to the last window, else ``decord``.

``frame_times(path, kind, first_s, last_s, fps)`` is the presentation time table a sampling
rule that picks frames by index needs (``sampling.SAMPLING_RULES``): for mp4 the packet
timestamps of the span (demuxed, not decoded), on the same clock as the decoders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from comodo.pipeline.video.depth import DEFAULT_DEPTH_FPS, depth_range, load_depth, render_depth
from comodo.pipeline.video.sampling import nearest_frames, pick_nearest
from comodo.stores.errors import InputDataError

AUTO_MIN_COVERAGE = 0.5
SEEK_MARGIN_FRAMES = 2
REORDER_MARGIN_FRAMES = 16  # packets come in decode order: read this far past the span


@dataclass(frozen=True)
class WindowRequest:
    """One window's frame targets (seconds on the video's clock) under a caller's key."""

    key: int
    start_s: float
    end_s: float
    targets: np.ndarray  # (F,) float64, ascending


@dataclass
class WindowFrames:
    key: int
    frames: np.ndarray | None  # (F, H, W, 3) uint8 RGB
    reason: str | None = None


def coverage(requests: Sequence[WindowRequest]) -> float:
    """Fraction of [first start, last end] inside some window (1.0 for tiled windows)."""
    spans = sorted((r.start_s, r.end_s) for r in requests)
    covered, reach = 0.0, spans[0][0]
    for start, end in spans:
        covered += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    total = reach - spans[0][0]
    return covered / total if total > 0 else 1.0


def _from_table(frames_of: Callable[[np.ndarray], np.ndarray], times: np.ndarray, period: float,
                requests: Sequence[WindowRequest], path: str) -> Iterator[WindowFrames]:
    """Serve requests from a frame time table and a fetch-by-indices function."""
    for req in requests:
        idx = nearest_frames(times, req.targets, period)
        if (idx < 0).any():
            yield WindowFrames(req.key, None, _past_end(req, times, path))
            continue
        unique, inverse = np.unique(idx, return_inverse=True)
        yield WindowFrames(req.key, frames_of(unique)[inverse])


def _past_end(req: WindowRequest, times: np.ndarray, path: str) -> str:
    last = float(times[-1]) if len(times) else 0.0
    return (f"window [{req.start_s:.3f}, {req.end_s:.3f}) s reaches past the last frame of "
            f"{path} at {last:.3f} s")


def decode_decord(path: str, requests: Sequence[WindowRequest]) -> Iterator[WindowFrames]:
    import decord

    try:
        reader = decord.VideoReader(path, num_threads=1)
        times = reader.get_frame_timestamp(np.arange(len(reader)))[:, 0].astype(np.float64)
    except (decord.DECORDError, RuntimeError, OSError) as err:
        raise InputDataError(f"video {path} could not be opened by decord ({err})") from None
    times -= times.min()
    period = 1.0 / (reader.get_avg_fps() or DEFAULT_DEPTH_FPS)

    def fetch(idx: np.ndarray) -> np.ndarray:
        try:
            return reader.get_batch(idx.tolist()).asnumpy()  # (k, H, W, 3)
        except (decord.DECORDError, RuntimeError) as err:
            raise InputDataError(f"video {path}: decord could not decode frames "
                                 f"{idx[:4].tolist()}... ({err})") from None

    yield from _from_table(fetch, times, period, requests, path)


class _Frame:
    """A decoded frame, converted to an RGB array only if some target picks it."""

    def __init__(self, frame: object, t_s: float):
        self.frame, self.t_s, self._rgb = frame, t_s, None

    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            self._rgb = self.frame.to_ndarray(format="rgb24")  # type: ignore[attr-defined]
        return self._rgb


class _Assembler:
    """Collects the chosen frame of every (request, k) target; emits complete windows."""

    def __init__(self, requests: Sequence[WindowRequest]):
        self.requests = list(requests)
        self.slots: list[list[np.ndarray | None]] = [[None] * len(r.targets) for r in requests]
        self.todo = [len(r.targets) for r in requests]
        jobs = [(float(t), i, k) for i, r in enumerate(requests) for k, t in enumerate(r.targets)]
        self.jobs = sorted(jobs)
        self.next = 0

    def first_target(self) -> float:
        return self.jobs[0][0]

    def serve(self, prev: _Frame | None, cur: _Frame | None,
              limit: float = float("inf")) -> Iterator[WindowFrames]:
        """Assign pending targets earlier than ``cur``; at the end (cur None) those <= limit."""
        while self.next < len(self.jobs):
            target, i, k = self.jobs[self.next]
            if (cur is not None and target >= cur.t_s) or (cur is None and target > limit):
                return
            pick = pick_nearest(prev.t_s if prev else None, cur.t_s if cur else None, target)
            self.slots[i][k] = (cur if pick else prev).rgb()  # type: ignore[union-attr]
            self.next += 1
            self.todo[i] -= 1
            if self.todo[i] == 0:
                yield WindowFrames(self.requests[i].key, np.stack(self.slots[i]))  # (F, H, W, 3)
                self.slots[i] = []

    def unserved(self, reason: str) -> Iterator[WindowFrames]:
        """Reject every window not yet complete; ``reason`` follows its bounds."""
        for i, req in enumerate(self.requests):
            if self.todo[i] > 0:
                self.todo[i] = 0
                yield WindowFrames(req.key, None,
                                   f"window [{req.start_s:.3f}, {req.end_s:.3f}) s: {reason}")

    def done(self) -> bool:
        return self.next >= len(self.jobs)


def _open_pyav(path: str) -> tuple[object, object, int]:
    """(container, video stream, pts of the first frame) with the stream rewound."""
    import av

    try:
        container = av.open(path)
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        heads = [p.pts for _, p in zip(range(32), container.demux(stream), strict=False)
                 if p.pts is not None]
        if not heads:
            raise InputDataError(f"video {path} has no video packets")
        origin = min(heads)
        container.seek(origin, stream=stream, backward=True)
    except (av.FFmpegError, IndexError, OSError) as err:
        raise InputDataError(f"video {path} could not be opened by PyAV ({err})") from None
    return container, stream, origin


def decode_pyav(path: str, requests: Sequence[WindowRequest]) -> Iterator[WindowFrames]:
    import av

    container, stream, origin = _open_pyav(path)
    try:
        time_base = float(stream.time_base)  # type: ignore[attr-defined]
        period = 1.0 / float(stream.average_rate or DEFAULT_DEPTH_FPS)  # type: ignore[attr-defined]
        todo = _Assembler(requests)
        start = todo.first_target() - SEEK_MARGIN_FRAMES * period
        if start > 0:
            container.seek(origin + int(start / time_base), stream=stream, backward=True)  # type: ignore[attr-defined]
        prev: _Frame | None = None
        try:
            for frame in container.decode(stream):  # type: ignore[attr-defined]
                if frame.pts is None:
                    continue
                cur = _Frame(frame, (frame.pts - origin) * time_base)
                yield from todo.serve(prev, cur)
                if todo.done():
                    return
                prev = cur
        except av.FFmpegError as err:
            yield from todo.unserved(f"decode error in {path} after "
                                     f"{prev.t_s if prev else 0.0:.3f} s ({err})")
            return
        last = prev.t_s if prev else -1.0
        if prev is not None:
            yield from todo.serve(prev, None, limit=last + period)
        yield from todo.unserved(f"reaches past the last decodable frame of {path} at {last:.3f} s")
    finally:
        container.close()  # type: ignore[attr-defined]


def decode_depth(path: str, requests: Sequence[WindowRequest],
                 fps: float | None = None) -> Iterator[WindowFrames]:
    depth_mm = load_depth(path)  # (F, H, W)
    rgb = render_depth(depth_mm, *depth_range(depth_mm))  # (F, H, W, 3)
    rate = fps or DEFAULT_DEPTH_FPS
    times = np.arange(len(rgb), dtype=np.float64) / rate
    yield from _from_table(lambda idx: rgb[idx], times, 1.0 / rate, requests, path)


DECODERS: dict[str, Callable[[str, Sequence[WindowRequest]], Iterator[WindowFrames]]] = {
    "pyav": decode_pyav,
    "decord": decode_decord,
}


def choose_decoder(decoder: str, requests: Sequence[WindowRequest]) -> str:
    if decoder != "auto":
        return decoder
    return "pyav" if coverage(requests) >= AUTO_MIN_COVERAGE else "decord"


def _decode_video(path: str, requests: Sequence[WindowRequest], decoder: str,
                  fps: float | None) -> Iterator[WindowFrames]:
    return DECODERS[choose_decoder(decoder, requests)](path, requests)


def _decode_depth(path: str, requests: Sequence[WindowRequest], decoder: str,
                  fps: float | None) -> Iterator[WindowFrames]:
    return decode_depth(path, requests, fps)


def pyav_frame_times(path: str, first_s: float, last_s: float,
                     fps: float | None = None) -> tuple[np.ndarray, float]:
    """(times, period): presentation times (s, ascending, 0 = first frame) of the frames from
    just before ``first_s`` to past ``last_s`` (to the end when the video ends sooner)."""
    import av

    container, stream, origin = _open_pyav(path)
    try:
        time_base = float(stream.time_base)  # type: ignore[attr-defined]
        period = 1.0 / float(stream.average_rate or DEFAULT_DEPTH_FPS)  # type: ignore[attr-defined]
        start = first_s - SEEK_MARGIN_FRAMES * period
        if start > 0:
            container.seek(origin + int(start / time_base), stream=stream, backward=True)  # type: ignore[attr-defined]
        stop = last_s + REORDER_MARGIN_FRAMES * period
        pts: list[int] = []
        for packet in container.demux(stream):  # type: ignore[attr-defined]
            if packet.pts is None:
                continue
            pts.append(packet.pts - origin)
            if pts[-1] * time_base > stop:
                break
    except av.FFmpegError as err:
        raise InputDataError(f"video {path}: could not read packet timestamps ({err})") from None
    finally:
        container.close()  # type: ignore[attr-defined]
    return np.unique(np.array(pts, dtype=np.int64)) * time_base, period


def depth_frame_times(path: str, first_s: float, last_s: float,
                      fps: float | None = None) -> tuple[np.ndarray, float]:
    rate = fps or DEFAULT_DEPTH_FPS
    return np.arange(len(load_depth(path)), dtype=np.float64) / rate, 1.0 / rate


FRAME_TIMES = {"mp4": pyav_frame_times, "depth_mat": depth_frame_times}


def frame_times(path: str, kind: str, first_s: float, last_s: float,
                fps: float | None = None) -> tuple[np.ndarray, float]:
    """The frame time table of ``[first_s, last_s]`` of one video (see the module doc)."""
    if kind not in FRAME_TIMES:
        raise InputDataError(f"video {path}: video_kind {kind!r} has no frames to decode; "
                             f"readable kinds: {', '.join(FRAME_TIMES)}")
    return FRAME_TIMES[kind](path, first_s, last_s, fps)


# video_kind -> reader; "none" (IMU-only recordings) has no reader
READERS = {"mp4": _decode_video, "depth_mat": _decode_depth}


def decode_windows(path: str, kind: str, requests: Sequence[WindowRequest], decoder: str = "auto",
                   fps: float | None = None) -> Iterator[WindowFrames]:
    """Frames for every request of one video (see the module doc)."""
    if kind not in READERS:
        raise InputDataError(f"video {path}: video_kind {kind!r} has no frames to decode; "
                             f"readable kinds: {', '.join(READERS)}")
    if not requests:
        return iter(())
    return READERS[kind](path, requests, decoder, fps)
