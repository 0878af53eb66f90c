"""Distillation trainer: data-path overhead, the queue loss's share, memory vs store size.

1. Throughput: the default student (cnn1d, 6 x 1000 windows, batch 128, COMODO with a full
   16,384 x 128 queue) trained by the Trainer from a store, against the same model's
   forward + backward + step on tensors already in memory. The gap is the data path
   (chunk reads, shuffling, batch assembly, DataLoader hand-off). On a shared machine the
   two timings drift apart with the load, so the Trainer's own measure is reported too:
   ``data_wait_fraction``, the share of the epoch spent waiting for the next batch.
2. Queue loss: the COMODO loss forward + backward alone, as a share of the in-memory step.
3. Memory: peak RSS (process tree) of one data-only epoch over generated random stores of
   10K and 100K windows, streaming (chunk groups) vs a loader that reads the whole store
   into memory first. Streaming should stay flat; the in-memory loader grows with N.

Writes medians to benchmarks/results/training.json.
"""

from __future__ import annotations

import argparse
import json
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
from comodo.pipeline.training.trainer import TrainData, Trainer, TrainSettings
from comodo.stores.chunked import ChunkedStore

CHANNELS, SAMPLES, TEACHER_DIM, BATCH, QUEUE = 6, 1000, 768, 128, 16384


def _model():
    heads = HeadSettings(teacher_dim=TEACHER_DIM, queue_size=QUEUE)
    model = build_model(StudentSpec("cnn1d", CHANNELS, SAMPLES), heads, seed=0)
    model.queue.fill(F.normalize(torch.randn(QUEUE, model.queue.dim), dim=1))
    return model


def in_memory_step_s(steps: int) -> float:
    """Median seconds of one full step on tensors already in memory."""
    model = _model().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    imu, feat = torch.randn(BATCH, CHANNELS, SAMPLES), torch.randn(BATCH, TEACHER_DIM)

    def step() -> None:
        z_student, z_teacher = model(imu, feat)
        loss = comodo(z_teacher, z_student, model.queue.features())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.queue.enqueue(z_teacher)

    step()
    return median_time(step, steps)[0]


def loss_step_s(steps: int) -> float:
    """Median seconds of the COMODO loss forward + backward with a full queue."""
    z_student = torch.randn(BATCH, 128, requires_grad=True)
    z_teacher = F.normalize(torch.randn(BATCH, 128), dim=1)
    queue = F.normalize(torch.randn(QUEUE, 128), dim=1)
    return median_time(lambda: comodo(z_teacher, z_student, queue).backward(), steps)[0]


def trainer_step_s(root: Path, n_windows: int, workers: int, chunk_rows: int) -> dict[str, float]:
    """Median seconds per step of the Trainer streaming from the store, and epoch wall time."""
    source = PairSource(str(root / "windows.zarr"), str(root / "features" / "t.zarr"))
    keep = np.ones(n_windows, dtype=bool)
    data = TrainData(source, chunk_rows, keep, np.zeros(n_windows, bool), np.zeros(n_windows, int))
    settings = TrainSettings(epochs=1, batch_size=BATCH, num_workers=workers,
                             checkpoint_every=0, queue_init="empty")
    stamps: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(_model(), data, settings, torch.device("cpu"),
                          Path(tmp) / "checkpoint.pt", "bench",
                          on_batch_end=lambda e, b: stamps.append(time.perf_counter()))
        start = time.perf_counter()
        history = trainer.run()
        wall = time.perf_counter() - start
    steps = np.diff(stamps)[1:]  # drop the first (start-up) step
    return {"step_s": float(np.median(steps)), "epoch_s": wall, "steps": len(stamps),
            "data_wait_fraction": history[-1]["data_wait_fraction"]}


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
    parser.add_argument("--steps", type=int, default=8, help="timed in-memory steps")
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
        memory_step = in_memory_step_s(args.steps)
        loss_step = loss_step_s(4 * args.steps)
        result["in_memory"] = {"step_s": memory_step, "samples_per_s": BATCH / memory_step}
        result["queue_loss"] = {"step_s": loss_step, "share_of_step": loss_step / memory_step}
        write_paired_stores(root / "tp", args.windows, CHANNELS, SAMPLES, TEACHER_DIM,
                            chunk_rows=256, teacher_key="t", splits=(1.0, 0.0, 0.0))
        for workers in (0, 2):
            res = trainer_step_s(root / "tp", args.windows, workers, 256)
            res["samples_per_s"] = BATCH / res["step_s"]
            res["data_path_overhead"] = 1 - memory_step / res["step_s"]
            result[f"trainer_workers{workers}"] = res
        result["memory"] = memory(root, args.memory_sizes, args.memory_samples)
    result["median_of"] = {"in_memory_steps": args.steps, "loss_steps": 4 * args.steps,
                           "trainer_steps": args.windows // BATCH - 1}
    write_result("training", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
