"""Scaling of the features stage from 1 to 2 shard processes, and bytes per window.

features: ``--windows`` 5 s windows of generated videos through ``mobilenetv2_imagenet`` on
CPU, one process with one teacher thread (``--shard 0/1``) against two such processes at
once (``--shard 0/2`` and ``1/2``, the multi-GPU recipe of docs/SCALE.md), alternating.
Bytes per window: each array's chunk files on disk divided by its rows (zstd float16).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import polars as pl

from benchmarks.bench_imu import rounds
from benchmarks.common import write_result
from comodo.pipeline.video.encode import textured_frames, write_mp4
from comodo.pipeline.windowing import WINDOWS_SCHEMA
from comodo.stores.chunked import ChunkedStore

FEATURES = {"teacher": "mobilenetv2_imagenet", "key": "bench", "frames": 4, "chunk_rows": 16,
            "batch_size": 16, "num_workers": 0, "threads": 1, "device": "cpu"}
SCRIPT = """
import json, sys
from comodo.pipeline.stages.features import FeaturesConfig, run
shard = (int(sys.argv[3]), int(sys.argv[4]))
run(FeaturesConfig(**json.loads(sys.argv[1])), sys.argv[2], "bench", shard=shard)
"""


def bytes_per_window(url: str) -> dict[str, float]:
    store = ChunkedStore.open(url)
    return {name: sum(p.stat().st_size for p in Path(url, name).rglob("*") if p.is_file()) / store.n_rows
            for name in store.names}


def make_videos(root: Path, n_windows: int) -> Path:
    """Videos of 60 s at 10 fps, 96x128, cut into 5 s windows; windows.parquet under data/."""
    rows = []
    for v in range(-(-n_windows // 12)):
        path = write_mp4(root / "raw" / f"v{v}.mp4", textured_frames(600, 96, 128, seed=v), fps=10.0)
        for k in range(min(12, n_windows - len(rows))):
            rows.append({"window_id": len(rows), "recording_id": f"v{v}", "label": "x", "label_id": 0,
                         "subject": "s", "split": "train", "video_path": str(path), "video_kind": "mp4",
                         "video_start_s": 5.0 * k, "video_end_s": 5.0 * k + 5, "imu_start_s": 5.0 * k,
                         "imu_end_s": 5.0 * k + 5, "n_valid": 1000})
    (root / "data" / "bench").mkdir(parents=True)
    pl.DataFrame(rows, schema=WINDOWS_SCHEMA).write_parquet(root / "data" / "bench" / "windows.parquet")
    return root / "data"


def run_shards(data: Path, n: int) -> None:
    shutil.rmtree(data / "bench" / "features", ignore_errors=True)
    env = {**os.environ, "COMODO_PROGRESS": "0"}
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(SCRIPT), json.dumps(FEATURES),
                               str(data), str(i), str(n)], env=env, stderr=subprocess.PIPE)
             for i in range(n)]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"features shard failed: {err.decode()[-2000:]}")


def bench_features(work: Path, n_windows: int, repeats: int) -> dict:
    data = make_videos(work, n_windows)
    out: dict = {"windows": n_windows, "teacher": FEATURES["teacher"], "frames": FEATURES["frames"]}
    times = rounds({"1proc": lambda: run_shards(data, 1), "2proc": lambda: run_shards(data, 2)}, repeats)
    for name, ts in times.items():
        t = statistics.median(ts)
        out[name] = {"median_s": t, "runs_s": ts, "windows_per_s": n_windows / t}
    out["speedup_2_vs_1"] = statistics.median(a / b for a, b in zip(times["1proc"], times["2proc"]))
    store = str(data / "bench" / "features" / "bench.zarr")
    out["bytes_per_window"] = {"features.zarr": bytes_per_window(store)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--windows", type=int, default=384)  # ~30 s for one process: start-up amortised
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="comodo-bench-scale-"))
    try:
        start = time.perf_counter()
        result = {"cores": len(os.sched_getaffinity(0)), "load_avg_1min_before": os.getloadavg()[0],
                  "repeats": args.repeats,
                  "features": bench_features(work / "features", args.windows, args.repeats)}
        result["wall_s"] = time.perf_counter() - start
        result["load_avg_1min_after"] = os.getloadavg()[0]  # > cores: other work shared the CPUs
        write_result("scale", result)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
