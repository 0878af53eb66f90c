"""Distillation trainer: data-path overhead, the queue loss's share, memory vs store size.

1. Throughput: the default student (cnn1d, 6 x 1000 windows, batch 128, COMODO with a full
   16,384 x 128 queue) trained by the Trainer from a store, against the same model's
   forward + backward + step on tensors already in memory. The gap is the data path
   (chunk reads, shuffling, batch assembly, DataLoader hand-off). On a shared machine the
   two wall timings drift apart with the load, so the runs are interleaved, CPU time of the
   main process is reported beside wall time (with workers the reading moves to other
   processes), and so is the Trainer's own ``data_wait_fraction``, the share of the epoch
   spent waiting for the next batch.
2. Queue loss: the COMODO loss forward + backward alone, as a share of the in-memory step.
3. Memory: peak RSS (process tree) of one data-only epoch over generated random stores of
   10K and 100K windows, streaming (chunk groups) vs a loader that reads the whole store
   into memory first. Streaming should stay flat; the in-memory loader grows with N.

Writes medians to benchmarks/results/training.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch
import torch.nn.functional as F

from benchmarks.common import median_time, write_result
from comodo.pipeline.objectives import comodo
from comodo.pipeline.students import StudentSpec
from comodo.pipeline.training.loader import PairSource, epoch_batches
from comodo.pipeline.training.model import HeadSettings, build_model
from comodo.pipeline.training.synthetic import write_paired_stores
from comodo.pipeline.training.trainer import BatchHook, TrainData, Trainer, TrainSettings
from comodo.stores.chunked import ChunkedStore

CHANNELS, SAMPLES, TEACHER_DIM, BATCH, QUEUE = 6, 1000, 768, 128, 16384


def _model():
    heads = HeadSettings(teacher_dim=TEACHER_DIM, queue_size=QUEUE)
    model = build_model(StudentSpec("cnn1d", CHANNELS, SAMPLES), heads, seed=0)
    model.queue.fill(F.normalize(torch.randn(QUEUE, model.queue.dim), dim=1))
    return model


def loss_step_s(steps: int) -> float:
    """Median seconds of the COMODO loss forward + backward with a full queue."""
    z_student = torch.randn(BATCH, 128, requires_grad=True)
    z_teacher = F.normalize(torch.randn(BATCH, 128), dim=1)
    queue = F.normalize(torch.randn(QUEUE, 128), dim=1)
    return median_time(lambda: comodo(z_teacher, z_student, queue).backward(), steps)[0]


def _trainer(root: Path, n_windows: int, workers: int, chunk_rows: int, tmp: Path,
             hook: BatchHook | None = None) -> Trainer:
    """A fresh Trainer over the whole store (its checkpoint in a new folder under ``tmp``)."""
    tmp = Path(tempfile.mkdtemp(dir=tmp))
    source = PairSource(str(root / "windows.zarr"), str(root / "features" / "t.zarr"))
    keep = np.ones(n_windows, dtype=bool)
    data = TrainData(source, chunk_rows, keep, np.zeros(n_windows, bool), np.zeros(n_windows, int))
    settings = TrainSettings(epochs=1, batch_size=BATCH, num_workers=workers,
                             checkpoint_every=0, queue_init="empty")
    return Trainer(_model(), data, settings, torch.device("cpu"), tmp / "checkpoint.pt",
                   "bench", on_batch_end=hook)


def _clock() -> tuple[float, float]:
    """(wall, CPU of this process): CPU time barely moves with other users' load."""
    return time.perf_counter(), time.process_time()


def in_memory_steps(root: Path, n_windows: int, chunk_rows: int, tmp: Path) -> np.ndarray:
    """(steps, 2) wall and CPU seconds of Trainer steps on batches read beforehand."""
    trainer = _trainer(root, n_windows, 0, chunk_rows, tmp)
    batches = list(epoch_batches(trainer.data.source, trainer.data.train_keep, chunk_rows,
                                 BATCH, 0, 0, buffer_chunks=4))
    times = []
    for batch in batches:
        start = _clock()
        trainer.step(batch)
        times.append(np.subtract(_clock(), start))
    return np.array(times[1:])  # drop the first (warm-up) step


def streamed_steps(root: Path, n_windows: int, workers: int, chunk_rows: int,
                   tmp: Path) -> tuple[np.ndarray, float]:
    """(steps, 2) wall and CPU seconds between consecutive streamed steps; data-wait share."""
    stamps: list[tuple[float, float]] = []
    trainer = _trainer(root, n_windows, workers, chunk_rows, tmp,
                       hook=lambda e, b: stamps.append(_clock()))
    history = trainer.run()
    return np.diff(np.array(stamps), axis=0)[1:], history[-1]["data_wait_fraction"]


def throughput(root: Path, n_windows: int, rounds: int) -> dict[str, Any]:
    """In-memory and streamed epochs interleaved, so machine load hits both alike."""
    times: dict[str, list[np.ndarray]] = {"in_memory": [], "workers0": [], "workers2": []}
    waits: dict[str, list[float]] = {"workers0": [], "workers2": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            times["in_memory"].append(in_memory_steps(root, n_windows, 256, Path(tmp)))
            for workers in (0, 2):
                steps, wait = streamed_steps(root, n_windows, workers, 256, Path(tmp))
                times[f"workers{workers}"].append(steps)
                waits[f"workers{workers}"].append(wait)
    med = {k: np.median(np.concatenate(v), axis=0) for k, v in times.items()}  # (wall, cpu)
    out: dict[str, Any] = {"in_memory": {
        "step_s": med["in_memory"][0], "cpu_step_s": med["in_memory"][1],
        "samples_per_s": BATCH / med["in_memory"][0],
        "steps": sum(len(t) for t in times["in_memory"])}}
    for key in ("workers0", "workers2"):
        wall, cpu = med[key]
        out[f"trainer_{key}"] = {
            "step_s": wall, "cpu_step_s": cpu, "samples_per_s": BATCH / wall,
            "steps": sum(len(t) for t in times[key]),
            "data_path_overhead_wall": 1 - med["in_memory"][0] / wall,
            "data_path_overhead_cpu_main_process": 1 - med["in_memory"][1] / cpu,
            "data_wait_fraction": statistics.median(waits[key]),
        }
    return {k: {n: float(v) if isinstance(v, np.floating) else v for n, v in d.items()}
            for k, d in out.items()}


# ---------------------------------------------------------------------- memory (child process)
def rss_child(kind: str, root: Path) -> dict[str, float]:
    """Peak RSS (MB, this process tree) of one data-only epoch; prints JSON."""
    proc = psutil.Process()
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            tree = [proc, *proc.children(recursive=True)]
            total = 0
            for p in tree:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            peak[0] = max(peak[0], total / 2**20)
            time.sleep(0.01)

    base = proc.memory_info().rss / 2**20
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    windows = ChunkedStore.open(str(root / "windows.zarr"))
    n, start = windows.n_rows, time.perf_counter()
    if kind == "streaming":
        source = PairSource(str(root / "windows.zarr"), str(root / "features" / "t.zarr"))
        for _batch in epoch_batches(source, np.ones(n, bool), windows.chunk_rows, BATCH, 0, 0,
                                    buffer_chunks=4):
            pass
    else:
        imu = np.asarray(windows.array("imu")[:])
        feat = np.asarray(ChunkedStore.open(str(root / "features" / "t.zarr")).array("pooled")[:],
                          dtype=np.float32)
        order = np.random.default_rng(0).permutation(n)
        for b in range(0, n, BATCH):
            _ = torch.as_tensor(imu[order[b : b + BATCH]]), torch.as_tensor(feat[order[b : b + BATCH]])
    seconds = time.perf_counter() - start
    done.set()
    thread.join()
    return {"base_mb": base, "peak_mb": peak[0], "windows_per_s": n / seconds}


def memory(root: Path, sizes: list[int], samples: int) -> dict[str, Any]:
    out: dict[str, Any] = {"window_shape": [CHANNELS, samples], "teacher_dim": TEACHER_DIM}
    for n in sizes:
        store = root / f"mem{n}"
        write_paired_stores(store, n, CHANNELS, samples, TEACHER_DIM, chunk_rows=256,
                            teacher_key="t", splits=(1.0, 0.0, 0.0))
        for kind in ("streaming", "in_memory"):
            res = subprocess.run([sys.executable, "-m", "benchmarks.bench_training", "--rss-child",
                                  kind, str(store)], capture_output=True, text=True, check=True)
            out[f"{kind}_{n}"] = json.loads(res.stdout.strip().splitlines()[-1])
    small, big = sizes
    for kind in ("streaming", "in_memory"):
        out[f"{kind}_growth_mb"] = out[f"{kind}_{big}"]["peak_mb"] - out[f"{kind}_{small}"]["peak_mb"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rss-child", nargs=2, metavar=("KIND", "STORE"))
    parser.add_argument("--windows", type=int, default=2048, help="throughput store size")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved timing rounds")
    parser.add_argument("--memory-sizes", type=int, nargs=2, default=[10_000, 100_000])
    parser.add_argument("--memory-samples", type=int, default=200, help="T of the memory stores")
    args = parser.parse_args()
    if args.rss_child:
        print(json.dumps(rss_child(args.rss_child[0], Path(args.rss_child[1]))))
        return
    torch.manual_seed(0)
    result: dict[str, Any] = {"batch": BATCH, "window_shape": [CHANNELS, SAMPLES],
                              "queue": QUEUE, "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_paired_stores(root / "tp", args.windows, CHANNELS, SAMPLES, TEACHER_DIM,
                            chunk_rows=256, teacher_key="t", splits=(1.0, 0.0, 0.0))
        result.update(throughput(root / "tp", args.windows, args.rounds))
        loss_step = loss_step_s(32)
        result["queue_loss"] = {"step_s": loss_step,
                                "share_of_step": loss_step / result["in_memory"]["step_s"]}
        result["memory"] = memory(root, args.memory_sizes, args.memory_samples)
    write_result("training", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
