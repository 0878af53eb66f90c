"""imu + windows stages against pandas + scipy on the same hours of IMU, and what share of a
features run on the same hours of video they are.

Input: ``--hours`` (default 100) of generated 6-channel IMU at 100 Hz in 30-minute CSV files
in the Ego4D column layout (made once, kept in ``--cache``). Both sides read the CSVs,
convert units, resample to 200 Hz with ``scipy.signal.resample_poly`` and cut 5 s windows.
The baseline is the straightforward script: one process, per file ``pandas.read_csv``,
``resample_poly``, windows saved with ``np.save``. comodo runs the imu and windows stages
with ``workers: 2`` and writes imu.zarr and windows.zarr (checksummed chunks). The two run in
turn within each round, order rotated; the ratio is taken within a round; medians over rounds.

The features share: 5 s windows of these hours times the per-window cost of the features
stage measured by ``bench_features`` (``mobilenetv2_imagenet``, fp32, CPU, 640x480 30 fps
video: 5.6 windows/s, README's speed table), against comodo's imu + windows time.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.common import write_result
from comodo.pipeline.datasets.base import Recording
from comodo.pipeline.datasets.tables import recordings_frame
from comodo.pipeline.stages import imu, windows
from comodo.pipeline.stages.common import DatasetPaths
from comodo.stores.index import write_table

FILE_S = 1800.0
RATE = 100.0
COLUMNS = ["canonical_timestamp_ms", "accl_x", "accl_y", "accl_z", "gyro_x", "gyro_y", "gyro_z"]
UNITS = np.array([1 / 9.80665] * 3 + [180 / np.pi] * 3)  # m/s^2 -> g, rad/s -> deg/s
FEATURES_WINDOWS_PER_S = 5.6  # bench_features: mobilenetv2_imagenet fp32 on these 2 cores


def generate(root: Path, hours: float, seed: int = 0) -> list[Path]:
    """``hours`` of 100 Hz IMU in 30-minute CSVs under ``root/imu`` (kept when already there)."""
    (root / "imu").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = int(FILE_S * RATE)
    paths = []
    for i in range(int(round(hours * 3600 / FILE_S))):
        path = root / "imu" / f"r{i:04d}.csv"
        freqs, noise = rng.uniform(0.3, 3.0, 6), rng.normal(0, 0.05, (n, 6))
        if not path.exists():
            t = np.arange(n) / RATE
            values = np.sin(2 * np.pi * freqs * t[:, None]) + noise
            frame = pl.DataFrame({"canonical_timestamp_ms": t * 1000.0} |
                                 {c: values[:, k] for k, c in enumerate(COLUMNS[1:])})
            frame.write_csv(path.with_suffix(".tmp"), float_precision=5)
            path.with_suffix(".tmp").rename(path)
        paths.append(path)
    return paths


def write_recordings(paths: list[Path], data: Path) -> None:
    recs = [Recording(p.stem, "bench", "x", "train", str(p), RATE) for p in paths]
    write_table(recordings_frame(recs), str(DatasetPaths(data, "bench").recordings))


def run_comodo(paths: list[Path], data: Path, workers: int, stages: list[dict[str, float]]) -> int:
    shutil.rmtree(data / "bench", ignore_errors=True)
    write_recordings(paths, data)
    start = time.perf_counter()
    imu.run(imu.ImuConfig(workers=workers), data, "bench", "ego4d", str(paths[0].parents[1]), {})
    mid = time.perf_counter()
    windows.run(windows.WindowsConfig(workers=workers), data, "bench")
    stages.append({"imu_s": mid - start, "windows_s": time.perf_counter() - mid})
    return pl.read_parquet(DatasetPaths(data, "bench").windows_index).height


def run_pandas_scipy(paths: list[Path], out: Path) -> int:
    """One process: pandas CSV, units, ``resample_poly`` 100 -> 200 Hz, 5 s windows saved."""
    import pandas as pd
    from scipy.signal import resample_poly

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    n = 0
    for p in paths:
        x = pd.read_csv(p)[COLUMNS[1:]].to_numpy() * UNITS  # (T, 6)
        y = resample_poly(x.astype(np.float32), 2, 1, axis=0, padtype="line")  # (2T, 6)
        k = len(y) // 1000
        cut = y[: k * 1000].reshape(k, 1000, 6).transpose(0, 2, 1)  # (k, C, 1000)
        np.save(out / f"{p.stem}.npy", np.ascontiguousarray(cut))
        n += k
    return n


def components_on_one_core(paths: list[Path], scratch: Path) -> dict[str, float]:
    """``components`` in a child process pinned to one core with polars on one thread: what
    each step costs without any library's own threads (pandas 3 and polars parse on several,
    which costs CPU on two cores)."""
    code = ("import json, os, sys; from pathlib import Path; "
            "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from benchmarks.bench_imu import components; "
            "print(json.dumps(components([Path(p) for p in sys.argv[2:]], Path(sys.argv[1]))))")
    env = {**os.environ, "POLARS_MAX_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code, str(scratch), *map(str, paths)], env=env,
                          capture_output=True, text=True, check=True, cwd=Path(__file__).parents[1])
    return json.loads(done.stdout.strip().splitlines()[-1])


def components(paths: list[Path], scratch: Path) -> dict[str, float]:
    """CPU seconds per file of each step, measured on ``paths`` one by one: the lower bound
    of a design that reads, filters and writes two checksummed stores, next to what the
    baseline does. The store steps go through the real writers and readers."""
    import pandas as pd
    import pyarrow.csv
    from scipy.signal import resample_poly

    from comodo.pipeline.datasets.common import read_imu_csv
    from comodo.stores.appender import RowAppender
    from comodo.stores.chunked import ArraySpec, ChunkedStore
    from comodo.stores.provenance import Provenance

    cpu = {"polars_read": 0.0, "pandas_read": 0.0, "pyarrow_read": 0.0, "resample_poly": 0.0,
           "store_write": 0.0, "store_read": 0.0, "npy_save": 0.0}
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    appender = RowAppender(str(scratch / "s.zarr"), 1_048_576, {"imu": ArraySpec((6,), "float32", "none")},
                           Provenance("imu", "bench", "bench"))

    def timed(key: str, fn: Callable[[], object]) -> object:
        start = time.process_time()
        out = fn()
        cpu[key] += time.process_time() - start
        return out

    for p in paths:
        x = timed("polars_read", lambda p=p: read_imu_csv(p).values)
        timed("pandas_read", lambda p=p: pd.read_csv(p))
        timed("pyarrow_read", lambda p=p: pyarrow.csv.read_csv(p))
        y = timed("resample_poly", lambda x=x: resample_poly(
            (x * UNITS).astype(np.float32), 2, 1, axis=0, padtype="line"))
        timed("store_write", lambda y=y: appender.append({"imu": y}))
        timed("npy_save", lambda y=y: np.save(scratch / "w.npy", y))
    timed("store_write", appender.close)
    timed("store_read", lambda: ChunkedStore.open(str(scratch / "s.zarr")).read("imu"))
    shutil.rmtree(scratch)
    return {key: value / len(paths) for key, value in cpu.items()}


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process and its finished child processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def rounds(methods: dict[str, Callable[[], object]], repeats: int,
           cpu: dict[str, list[float]] | None = None) -> dict[str, list[float]]:
    """Each method once per round, order rotated per round: wall seconds per method (and
    CPU seconds into ``cpu``)."""
    times: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            os.sync()  # the previous run's dirty pages written before the clock starts
            start, cpu_start = time.perf_counter(), _cpu_s()
            methods[name]()
            times[name].append(time.perf_counter() - start)
            if cpu is not None:
                cpu.setdefault(name, []).append(_cpu_s() - cpu_start)
            logging.warning("round %d %s: %.1f s", r, name, times[name][-1])
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=float, default=100.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache", default="/tmp/comodo-bench-imu")
    parser.add_argument("--component-files", type=int, default=20)  # files timed step by step
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cache = Path(args.cache) / f"{args.hours:g}h"
    paths = generate(cache / "raw", args.hours)
    stages: list[dict[str, float]] = []
    n_windows: dict[str, int] = {}
    cpu: dict[str, list[float]] = {}
    times = rounds({
        "comodo": lambda: n_windows.__setitem__("comodo", run_comodo(paths, cache / "data", args.workers,
                                                                     stages)),
        "pandas_scipy": lambda: n_windows.__setitem__("pandas_scipy",
                                                      run_pandas_scipy(paths, cache / "npy")),
    }, args.repeats, cpu)
    comodo_s = statistics.median(times["comodo"])
    per_file = components(paths[: args.component_files], cache / "components")
    one_core = components_on_one_core(paths[: args.component_files], cache / "components")
    # comodo: read, filter, write imu.zarr; the windows stage reads it and writes windows.zarr;
    # each step at its cheaper cost (with its library's threads, or on one core)
    floor_cpu = len(paths) * sum(factor * min(per_file[step], one_core[step]) for step, factor in
                                 (("polars_read", 1), ("resample_poly", 1), ("store_write", 2),
                                  ("store_read", 1)))
    features_s = n_windows["comodo"] / FEATURES_WINDOWS_PER_S
    result = {
        "hours": len(paths) * FILE_S / 3600, "files": len(paths), "workers": args.workers,
        "cores": len(os.sched_getaffinity(0)), "load_avg_1min": os.getloadavg()[0],
        "windows": n_windows,
        "comodo": {"median_s": comodo_s, "runs_s": times["comodo"], "cpu_s": cpu["comodo"],
                   "stages": stages},
        "pandas_scipy": {"median_s": statistics.median(times["pandas_scipy"]),
                         "runs_s": times["pandas_scipy"], "cpu_s": cpu["pandas_scipy"]},
        "speedup": statistics.median(b / a for a, b in zip(times["comodo"], times["pandas_scipy"])),
        "features_per_window_s": 1 / FEATURES_WINDOWS_PER_S,
        "features_source": "bench_features: mobilenetv2_imagenet fp32, CPU, 640x480 30 fps, 5.6 windows/s",
        "features_estimate_s": features_s,
        "imu_windows_share_of_features": comodo_s / features_s,
        "components_cpu_s_per_file": per_file, "components_one_core_cpu_s_per_file": one_core,
        "component_files": min(len(paths), args.component_files),
        "comodo_floor_cpu_s": floor_cpu,
        "comodo_floor_s_on_2_cores": floor_cpu / 2,
        "best_possible_speedup": statistics.median(times["pandas_scipy"]) / (floor_cpu / 2),
    }
    write_result("imu", result)
    print(f"{result['hours']:.0f} h of IMU, {n_windows['comodo']} windows: comodo imu + windows "
          f"{comodo_s:.1f} s with {args.workers} workers, pandas + scipy "
          f"{result['pandas_scipy']['median_s']:.1f} s: {result['speedup']:.2f}x (CPU s: comodo "
          f"{statistics.median(cpu['comodo']):.1f}, pandas + scipy "
          f"{statistics.median(cpu['pandas_scipy']):.1f}; "
          f"load average {result['load_avg_1min']:.1f} on {result['cores']} cores); a features run on "
          f"the same hours of video ~{features_s / 3600:.1f} h, so imu + windows are "
          f"{100 * result['imu_windows_share_of_features']:.2f}% of it")
    print("CPU s per file: " + ", ".join(f"{k} {v:.4f}" for k, v in per_file.items()))
    print("on one core: " + ", ".join(f"{k} {v:.4f}" for k, v in one_core.items())
          + f"; comodo's floor (read, filter, two checksummed stores) {floor_cpu:.1f} CPU-s, "
          f"{floor_cpu / 2:.1f} s on 2 cores at best: at most {result['best_possible_speedup']:.2f}x "
          "the pandas script")


if __name__ == "__main__":
    main()
