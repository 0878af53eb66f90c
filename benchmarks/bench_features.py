"""features stage: end-to-end windows/s next to decode-only windows/s of the same frames.

Input: generated H.264 videos (a moving texture, ``--size`` at ``--fps``; its decode cost per
pixel is close to the real GoPro clip's) tiled by 5 s windows. On the same cores and in one
run (medians of ``--repeats``):

- ``decode_only``: the stage's own decode path (workers decode, sample 8 frames per window,
  resize and crop) with no teacher: the ceiling for extraction.
- ``extraction``: ``features.run`` with the cheap ``mobilenetv2_imagenet`` teacher, a fresh
  store each repeat (model loading included); the stage reports its own wall time without
  model loading ("steady") and the teacher's busy time. The default ``precision: auto``
  (fp32 on CPU) and the opt-in ``precision: bfloat16`` autocast (fast where the CPU has
  native bf16, reported as ``cpu_native_bf16``).
- ``decoders``: decode-only windows/s of the PyAV pass vs decord random access, for tiled
  windows and for sparse ones (every 4th window), behind the ``decoder: auto`` rule.
- ``cpu_time_ceiling_fp32``: CPU seconds (this process and the finished decode workers) of
  decode-only and of fp32 extraction (model loading included); on cores that decoders and
  teacher share, their ratio bounds extraction / decode-only.
- ``flops_per_window``: analytic forward FLOPs of TimeSformer-base (8x224) and
  VideoMAE-base (16x224) from their transformers configs.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import polars as pl

from benchmarks.common import write_result
from comodo.pipeline.stages import features
from comodo.pipeline.video.encode import textured_frames, write_mp4
from comodo.pipeline.video.loader import FrameSpec, iter_tasks, plan_tasks
from comodo.pipeline.windowing import WINDOWS_SCHEMA

WINDOW_S = 5.0


def make_videos(root: Path, n_videos: int, seconds: float, size: tuple[int, int], fps: float,
                copies: int) -> list[Path]:
    """``n_videos`` encoded clips, each also reachable under ``copies - 1`` more hard-linked
    names: distinct paths are distinct videos to the stage (decoded separately), while
    encoding, the slow part of the set-up, is done once per clip."""
    width, height = size
    n_frames = int(seconds * fps)
    clips = [write_mp4(root / f"v{i:03d}.mp4", textured_frames(n_frames, height, width, seed=i), fps,
                       crf=23, gop=int(fps * 2)) for i in range(n_videos)]
    for clip in clips:
        for k in range(1, copies):
            os.link(clip, clip.with_name(f"{clip.stem}-{k}.mp4"))
    return sorted(root.glob("*.mp4"))


def windows_rows(videos: list[Path], seconds: float, every: int = 1) -> list[dict]:
    rows = []
    for video in videos:
        for k in range(0, int(seconds // WINDOW_S), every):
            start = k * WINDOW_S
            rows.append({"window_id": len(rows), "recording_id": video.stem, "label": "x", "label_id": 0,
                         "subject": "s", "split": "train", "video_path": str(video), "video_kind": "mp4",
                         "video_start_s": start, "video_end_s": start + WINDOW_S, "imu_start_s": start,
                         "imu_end_s": start + WINDOW_S, "n_valid": 1000})
    return rows


def decode_only(rows: list[dict], workers: int, decoder: str) -> int:
    todo = [{"row": r["window_id"], "fps": None, **r} for r in rows]
    tasks, _ = plan_tasks(todo, 16)
    return sum(len(res.rows) for res in iter_tasks(tasks, FrameSpec(8, 224, 224, decoder), workers))


class StatsHandler(logging.Handler):
    """Keeps the stage's own timing record (wall time and teacher busy time)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.stats: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "features_stats"):
            self.stats.append(record.features_stats)


def extract(data: Path, rows: list[dict], workers: int, precision: str = "auto") -> None:
    shutil.rmtree(data, ignore_errors=True)
    (data / "bench").mkdir(parents=True)
    pl.DataFrame(rows, schema=WINDOWS_SCHEMA).write_parquet(data / "bench" / "windows.parquet")
    cfg = features.FeaturesConfig(teacher="mobilenetv2_imagenet", device="cpu", num_workers=workers,
                                  batch_size=8, max_reject_fraction=0.0, precision=precision)
    summary = features.run(cfg, data, "bench")
    if summary.kept != len(rows):
        raise RuntimeError(f"benchmark extraction kept {summary.kept} of {len(rows)} windows")


def timesformer_flops(cfg) -> float:
    """Divided space-time attention: temporal attention over frames per patch, then spatial."""
    d, m, t = cfg.hidden_size, cfg.intermediate_size, cfg.num_frames
    p = (cfg.image_size // cfg.patch_size) ** 2
    n = t * p + 1
    temporal = 3 * d * d * t * p + 2 * t * t * d * p + 2 * d * d * t * p  # qkv, scores+mix, out+fc
    spatial = 3 * d * d * t * (p + 1) + 2 * (p + 1) ** 2 * d * t + d * d * t * (p + 1)
    mlp = 2 * d * m * n
    embed = t * p * 3 * cfg.patch_size**2 * d
    return 2.0 * (cfg.num_hidden_layers * (temporal + spatial + mlp) + embed)  # multiply-adds x 2


def videomae_flops(cfg) -> float:
    """Joint space-time attention over (F / tubelet) x P tokens."""
    d, m = cfg.hidden_size, cfg.intermediate_size
    n = (cfg.num_frames // cfg.tubelet_size) * (cfg.image_size // cfg.patch_size) ** 2
    layer = 4 * d * d * n + 2 * n * n * d + 2 * d * m * n
    embed = n * 3 * cfg.tubelet_size * cfg.patch_size**2 * d
    return 2.0 * (cfg.num_hidden_layers * layer + embed)


def flops_per_window() -> dict[str, float]:
    from transformers import TimesformerConfig, VideoMAEConfig

    return {"timesformer_base_8x224_gflop": timesformer_flops(TimesformerConfig()) / 1e9,
            "videomae_base_16x224_gflop": videomae_flops(VideoMAEConfig()) / 1e9}


def cpu_has_native_bf16() -> bool:
    """``avx512_bf16`` or ``amx_bf16`` among the CPU flags (Linux)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the decode workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_cpu(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``fn()``."""
    cpu = cpu_seconds()
    wall = timed(fn)
    return wall, cpu_seconds() - cpu


def rounds(root: Path, rows: list[dict], workers: int, reps: int, handler: StatsHandler) -> dict:
    """Decode-only and both extractions back to back in each round (the machine is shared and
    noisy, so each ratio compares runs taken moments apart); medians over rounds."""
    per_round = []
    for _ in range(reps):
        decode_s, decode_cpu = timed_cpu(lambda: decode_only(rows, workers, "auto"))
        fp32_s, fp32_cpu = timed_cpu(lambda: extract(root / "data", rows, workers, "auto"))
        fp32_stats = handler.stats[-1]
        bf16_s = timed(lambda: extract(root / "data", rows, workers, "bfloat16"))
        per_round.append({"decode_only_s": decode_s, "fp32_s": fp32_s, "fp32_stage": fp32_stats,
                          "bf16_s": bf16_s, "bf16_stage": handler.stats[-1],
                          "decode_only_cpu_s": decode_cpu, "fp32_cpu_s": fp32_cpu})
    n = len(rows)

    def med(fn) -> float:
        return statistics.median(fn(r) for r in per_round)

    def summary(key: str) -> dict:
        return {"windows_per_s": med(lambda r: n / r[f"{key}_s"]),
                "steady_windows_per_s": med(lambda r: n / r[f"{key}_stage"]["wall_s"]),
                "over_decode_only": med(lambda r: r["decode_only_s"] / r[f"{key}_s"]),
                "steady_over_decode_only": med(lambda r: r["decode_only_s"] / r[f"{key}_stage"]["wall_s"]),
                "teacher_share": med(lambda r: r[f"{key}_stage"]["teacher_s"] / r[f"{key}_stage"]["wall_s"])}

    return {"decode_only_windows_per_s": med(lambda r: n / r["decode_only_s"]),
            "fp32": summary("fp32"), "bf16": summary("bf16"), "rounds": per_round,
            "cpu_ceiling": {"decode_only_cpu_s": med(lambda r: r["decode_only_cpu_s"]),
                            "fp32_extraction_cpu_s": med(lambda r: r["fp32_cpu_s"]),
                            "ceiling": med(lambda r: r["decode_only_cpu_s"] / r["fp32_cpu_s"])}}


def decoder_rates(rows: list[dict], sparse: list[dict], workers: int, reps: int) -> dict:
    out: dict[str, dict[str, list[float]]] = {"tiled": {"pyav": [], "decord": []},
                                              "sparse": {"pyav": [], "decord": []}}
    for _ in range(reps):
        for kind, rs in (("tiled", rows), ("sparse", sparse)):
            for dec in ("pyav", "decord"):
                out[kind][dec].append(len(rs) / timed(lambda rs=rs, dec=dec: decode_only(rs, workers, dec)))
    return {kind: {dec: statistics.median(v) for dec, v in decs.items()} for kind, decs in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--workers", type=int, default=features.default_workers())
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    handler = StatsHandler()
    logging.getLogger("comodo.pipeline.stages.features").addHandler(handler)
    logging.getLogger("comodo.pipeline.stages.features").setLevel(logging.INFO)
    size = tuple(int(x) for x in args.size.split("x"))
    root = Path(tempfile.mkdtemp(prefix="bench-features-"))
    try:
        result = run_all(args, size, root, handler)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    write_result("features", result)


def run_all(args: argparse.Namespace, size: tuple[int, int], root: Path, handler: StatsHandler) -> dict:
    start = time.perf_counter()
    videos = make_videos(root / "videos", args.videos, args.seconds, size, args.fps, args.copies)
    encode_s = time.perf_counter() - start
    rows, sparse = windows_rows(videos, args.seconds), windows_rows(videos, args.seconds, every=4)
    n, workers, reps = len(rows), args.workers, args.repeats
    timing = rounds(root, rows, workers, reps, handler)
    decoders = decoder_rates(rows[: len(rows) // 2], sparse, workers, reps)
    return {
        "input": {"videos": len(videos), "encoded_clips": args.videos, "seconds_each": args.seconds,
                  "size": args.size, "fps": args.fps,
                  "windows": n, "window_s": WINDOW_S, "frames_per_window": 8, "encode_s": encode_s},
        "machine": {"cores": features.default_workers(), "decode_workers": workers,
                    "teacher_threads": max(1, features.default_workers() - workers)},
        "teacher": "mobilenetv2_imagenet",
        "decode_only_windows_per_s": timing["decode_only_windows_per_s"],
        "cpu_native_bf16": cpu_has_native_bf16(),
        "extraction_windows_per_s": timing["fp32"]["windows_per_s"],
        "extraction_over_decode_only": timing["fp32"]["over_decode_only"],
        "target_extraction_over_decode_only": 0.7,
        "teacher_share_of_stage_wall_time": timing["fp32"]["teacher_share"],
        # on shared cores extraction cannot beat decode-only CPU s / extraction CPU s
        "cpu_time_ceiling_fp32": timing["cpu_ceiling"],
        "extraction_cpu_float32": timing["fp32"],
        "extraction_cpu_bfloat16_autocast": timing["bf16"],
        "rounds": timing["rounds"],
        "decoders_windows_per_s": decoders,
        "flops_per_window": flops_per_window(),
        "repeats": reps,
    }


if __name__ == "__main__":
    main()
