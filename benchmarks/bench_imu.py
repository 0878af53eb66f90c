"""imu + windows stages vs a straightforward per-file pandas + resample baseline.

Input: ``--hours`` (default 100) of generated 6-channel IMU at 100 Hz in 30-minute CSV
files in the Ego4D column layout. Both paths read the CSVs, convert units, resample to 200 Hz
and cut 5 s windows; the baselines keep their windows in memory, comodo writes imu.zarr and
windows.zarr. Throughput is hours of IMU per second of wall time. The methods run in turn
within each round (order rotated per round) and ratios are taken within a round, so a
change of machine load between rounds moves both sides; medians over rounds.

comodo's worker pool is shut down after each stage, so every stage pays its workers'
start-up (about 1.5 s of imports), as it does when the stages run as separate commands.
The ``floor_one_core`` entry times the two steps nobody can skip, parsing the CSVs and the
polyphase filter, on one core: half their sum is the best any two-core implementation of
these stages could do, which bounds the reachable speed-up.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.common import write_result
from comodo.pipeline.datasets.base import Recording, recordings_frame
from comodo.pipeline.parallel import shutdown_local_pool
from comodo.pipeline.stages import imu, windows
from comodo.pipeline.stages.common import DatasetPaths
from comodo.stores.index import write_table

FILE_S = 1800.0
RATE = 100.0
COLUMNS = ["canonical_timestamp_ms", "accl_x", "accl_y", "accl_z", "gyro_x", "gyro_y", "gyro_z"]


def generate(root: Path, hours: float, seed: int = 0) -> list[Path]:
    (root / "imu").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = int(FILE_S * RATE)
    paths = []
    for i in range(int(round(hours * 3600 / FILE_S))):
        t = np.arange(n) / RATE
        values = np.sin(2 * np.pi * rng.uniform(0.3, 3.0, 6) * t[:, None]) + rng.normal(0, 0.05, (n, 6))
        frame = pl.DataFrame({"canonical_timestamp_ms": t * 1000.0} |
                             {c: values[:, k] for k, c in enumerate(COLUMNS[1:])})
        path = root / "imu" / f"r{i:04d}.csv"
        frame.write_csv(path, float_precision=5)
        paths.append(path)
    return paths


def write_recordings(paths: list[Path], data: Path) -> None:
    recs = [Recording(p.stem, "bench", "x", "train", str(p), RATE) for p in paths]
    write_table(recordings_frame(recs), str(DatasetPaths(data, "bench").recordings))


def run_comodo(paths: list[Path], data: Path, workers: int) -> int:
    shutil.rmtree(data, ignore_errors=True)
    write_recordings(paths, data)
    imu.run(imu.ImuConfig(workers=workers), data, "bench", "ego4d", str(paths[0].parents[1]), {})
    shutdown_local_pool()
    kept = windows.run(windows.WindowsConfig(workers=workers), data, "bench").kept
    shutdown_local_pool()
    return kept


UNITS = np.array([1 / 9.80665] * 3 + [180 / np.pi] * 3)


def _cut(y: np.ndarray) -> np.ndarray:
    n = len(y) // 1000
    return y[: n * 1000].reshape(n, 1000, 6).transpose(0, 2, 1)


def run_baseline_pandas(paths: list[Path]) -> int:
    """The straightforward way, one process: per file pandas CSV, units, a 5 ms
    ``DataFrame.resample().mean().interpolate()`` on a time index, 5 s windows in memory."""
    import pandas as pd  # here, not at the top: comodo's spawned workers import this module

    out = []
    for p in paths:
        df = pd.read_csv(p)
        df.index = pd.to_datetime(df.pop("canonical_timestamp_ms"), unit="ms")
        y = (df * UNITS).resample("5ms").mean().interpolate("linear").to_numpy(np.float32)
        out.append(_cut(y))
    return sum(len(o) for o in out)


def run_baseline_scipy(paths: list[Path]) -> int:
    """A stronger baseline, one process: pandas CSV, units, scipy polyphase 100 -> 200 Hz
    (uniform input assumed), 5 s windows in memory; nothing is written."""
    import pandas as pd
    from scipy.signal import resample_poly

    out = []
    for p in paths:
        x = pd.read_csv(p)[COLUMNS[1:]].to_numpy() * UNITS
        out.append(_cut(resample_poly(x, 2, 1, axis=0).astype(np.float32)))
    return sum(len(o) for o in out)


def floor_one_core(paths: list[Path]) -> dict[str, float]:
    """Seconds to parse every CSV (Arrow's reader, one thread; as fast as polars' per
    thread) and to filter every file (scipy, float32) on one core."""
    import pyarrow.csv
    from scipy.signal import resample_poly

    parse = filt = 0.0
    options = pyarrow.csv.ReadOptions(use_threads=False)
    for p in paths:
        start = time.perf_counter()
        table = pyarrow.csv.read_csv(p, read_options=options)
        x = np.column_stack([table[c].to_numpy() for c in COLUMNS[1:]]).astype(np.float32)
        mid = time.perf_counter()
        resample_poly(x, 2, 1, axis=0)
        parse, filt = parse + mid - start, filt + time.perf_counter() - mid
    return {"csv_parse_s": parse, "resample_poly_s": filt}


def rounds(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            start = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=float, default=100.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="comodo-bench-imu-"))
    try:
        paths = generate(work / "raw", args.hours)
        hours = len(paths) * FILE_S / 3600
        results: dict = {"hours": hours, "files": len(paths), "repeats": args.repeats,
                         "cores": len(os.sched_getaffinity(0)), "load_avg_1min_before": os.getloadavg()[0]}
        runs = {"baseline_pandas_resample_1proc": lambda: run_baseline_pandas(paths),
                "baseline_pandas_scipy_1proc": lambda: run_baseline_scipy(paths),
                "comodo_1proc": lambda: run_comodo(paths, work / "data", 1),
                "comodo_2proc": lambda: run_comodo(paths, work / "data", 2)}
        times = rounds(runs, args.repeats)
        for name, ts in times.items():
            t = statistics.median(ts)
            results[name] = {"median_s": t, "runs_s": ts, "hours_per_s": hours / t}
        for name in ("comodo_1proc", "comodo_2proc"):
            for base in ("baseline_pandas_resample_1proc", "baseline_pandas_scipy_1proc"):
                ratios = [b / c for b, c in zip(times[base], times[name])]
                results[name][f"speedup_vs_{base}"] = statistics.median(ratios)
        results["target_speedup_vs_baseline_pandas_resample_1proc"] = 5.0
        floor = floor_one_core(paths)
        results["floor_one_core"] = floor | {
            "two_cores_s": (floor["csv_parse_s"] + floor["resample_poly_s"]) / 2,
            "best_speedup_vs_baseline_pandas_resample": results["baseline_pandas_resample_1proc"]["median_s"]
            / ((floor["csv_parse_s"] + floor["resample_poly_s"]) / 2)}
        results["load_avg_1min_after"] = os.getloadavg()[0]
        write_result("imu", results)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
