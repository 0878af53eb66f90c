"""The distillation loop: stream pairs, order teacher -> student -> loss -> enqueue, checkpoint.

Optimiser: AdamW (no weight decay on biases, norms and the temperature). Learning rate:
linear warmup over the first ``warmup_fraction`` of all optimizer steps (counted in
batches), then linear (the paper's code) or cosine decay to zero, or constant
(``schedule``). bf16 autocast on CUDA only.
Everything is seeded; a checkpoint is written every ``checkpoint_every`` batches and at the
end of every epoch, and a run restarted with the same config resumes from it exactly (the
final weights equal those of an uninterrupted run).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from comodo.pipeline.objectives import bind_objective
from comodo.pipeline.progress import progress
from comodo.pipeline.training import checkpoint as ckpt
from comodo.pipeline.training.distributed import DistEnv, convert_batchnorm
from comodo.pipeline.training.loader import (
    Batch,
    EpochPlan,
    PairSource,
    epoch_batches,
    plan_epoch,
)
from comodo.pipeline.training.model import DistillModel
from comodo.pipeline.training.validation import batch_valid, class_anchors, validate
from comodo.stores.errors import ConfigError

log = logging.getLogger(__name__)

BatchHook = Callable[[int, int], None]  # (epoch, batch index just finished)


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    schedule: str = "linear"
    seed: int = 0
    num_workers: int = 0
    buffer_chunks: int = 4
    checkpoint_every: int = 200
    objective: str = "comodo"
    objective_values: Mapping[str, Any] = field(default_factory=dict)
    queue_init: str = "train_sample"


@dataclass(frozen=True)
class TrainData:
    """Where pairs come from and which rows train, validate; ``labels`` (N,), -1 = none."""

    source: PairSource
    chunk_rows: int
    train_keep: np.ndarray
    val_keep: np.ndarray
    labels: np.ndarray
    n_valid: np.ndarray | None = None  # (N,) real samples of each window; None: all of them


class Trainer:
    """One run: set-up (or resume), epochs of steps, validation, checkpoints."""

    def __init__(self, model: DistillModel, data: TrainData, settings: TrainSettings,
                 device: torch.device, checkpoint_path: Path, config_hash: str,
                 on_batch_end: BatchHook | None = None):
        self.data, self.s, self.device = data, settings, device
        self.env = DistEnv.from_environment(device)
        self.checkpoint_path, self.config_hash, self.on_batch_end = (
            checkpoint_path, config_hash, on_batch_end)
        # BatchNorm layers are swapped before the optimizer is built so it holds the new ones
        self.model = (convert_batchnorm(model) if self.env.enabled else model).to(device)
        self.objective, self.objective_kwargs = bind_objective(settings.objective,
                                                               settings.objective_values)
        self.queue_rows = self._queue_rows()
        self.total_steps = sum(self._plan(e).n_batches(settings.batch_size)
                               for e in range(settings.epochs))
        if self.total_steps == 0:
            raise ConfigError(
                f"the train split has {int(data.train_keep.sum())} usable windows, fewer than "
                f"half a batch ({settings.batch_size}); lower batch_size"
            )
        self.optimizer = _adamw(self.model, settings.lr, settings.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            ckpt.WarmupSchedule.from_fraction(self.total_steps, settings.warmup_fraction,
                                              settings.schedule))
        self.epoch, self.batch, self.history = 0, 0, []
        self.running = _fresh_running()
        if not self._resume():
            self._init_queue()
        self.ddp = self._wrap()

    # ------------------------------------------------------------------ set-up
    def _queue_rows(self) -> np.ndarray:
        size = self.model.queue.size
        if self.s.queue_init == "empty" or size == 0:
            return np.zeros(0, dtype=np.int64)
        train_rows = np.flatnonzero(self.data.train_keep)
        if size >= len(train_rows):
            raise ConfigError(
                f"queue_size {size} needs more train windows than the {len(train_rows)} there "
                f"are (queue_init: train_sample); lower queue_size or use queue_init: empty"
            )
        rng = np.random.default_rng([self.s.seed, 1])
        return np.sort(rng.choice(train_rows, size=size, replace=False))

    def _keep(self, epoch: int) -> np.ndarray:
        keep = self.data.train_keep.copy()
        if epoch == 0:
            keep[self.queue_rows] = False  # the queue's windows sit out the first epoch
        return keep

    def _plan(self, epoch: int) -> EpochPlan:
        return plan_epoch(self._keep(epoch), self.data.chunk_rows, self.s.seed, epoch,
                          self.s.buffer_chunks)

    def _init_queue(self) -> None:
        if not len(self.queue_rows):
            return
        store = self.data.source.open()[1]
        feat = store.read_rows(self.data.source.teacher_array, self.queue_rows)
        feat_teacher = torch.as_tensor(np.asarray(feat, dtype=np.float32), device=self.device)
        self.model.queue.fill(self.model.embed_teacher(feat_teacher))

    def _resume(self) -> bool:
        state = ckpt.load_checkpoint(self.checkpoint_path, self.config_hash)
        if state is None:
            return False
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        ckpt.restore_rng(state["rng"])
        self.epoch, self.batch = state["position"]["epoch"], state["position"]["batch"]
        self.running, self.history = state["running"], state["history"]
        log.info("resuming %s at epoch %d, batch %d", self.checkpoint_path, self.epoch, self.batch)
        return True

    def _wrap(self) -> torch.nn.Module:
        if not self.env.enabled:
            return self.model
        if self.s.batch_size < 4 * self.env.world_size:
            raise ConfigError(f"batch_size {self.s.batch_size} is too small for "
                              f"{self.env.world_size} processes; use >= {4 * self.env.world_size}")
        ids = [self.device.index] if self.device.type == "cuda" else None
        # ranks keep identical buffers (queue, BN stats), so no per-forward buffer broadcast
        return DistributedDataParallel(self.model, device_ids=ids, forward_sync_buffers=False)

    # ------------------------------------------------------------------ loop
    def run(self, on_epoch_end: Callable[[list[dict[str, Any]]], None] | None = None
            ) -> list[dict[str, Any]]:
        """Train the remaining epochs; returns the per-epoch history."""
        anchors, class_ids = torch.zeros(0), np.zeros(0, dtype=np.int64)
        if self.env.is_main:  # only the main process validates
            anchors, class_ids = class_anchors(self.model, self.data.source,
                                               self.data.train_keep, self.data.labels,
                                               self.device)
        while self.epoch < self.s.epochs:
            started = time.perf_counter()
            self._train_epoch()
            row = self._end_epoch(anchors, class_ids, time.perf_counter() - started)
            if self.env.is_main and on_epoch_end is not None:
                on_epoch_end(self.history)
            log.info("epoch %d: %s", row["epoch"], row)
        return self.history

    def _train_epoch(self) -> None:
        s = self.s
        self.model.train()
        keep = self._keep(self.epoch)
        n_batches = self._plan(self.epoch).n_batches(s.batch_size)
        batches = epoch_batches(self.data.source, keep, self.data.chunk_rows, s.batch_size,
                                s.seed, self.epoch, s.buffer_chunks, s.num_workers, self.batch)
        if self.env.is_main:
            batches = progress(batches, f"epoch {self.epoch}", total=n_batches - self.batch,
                               unit="batch")
        stream = iter(batches)
        while True:
            waited = time.perf_counter()
            batch = next(stream, None)
            self.running["data_s"] += time.perf_counter() - waited  # time spent waiting for data
            if batch is None:
                break
            loss = self.step(batch)
            self.running["loss_sum"] += loss
            self.running["batches"] += 1
            self.running["samples"] += len(batch)
            self.batch += 1
            if s.checkpoint_every and self.batch % s.checkpoint_every == 0:
                self._save()
            if self.on_batch_end is not None:
                self.on_batch_end(self.epoch, self.batch - 1)

    def step(self, batch: Batch) -> float:
        """teacher -> student -> loss -> backward/step -> enqueue; returns the global loss."""
        n_global = len(batch)
        local = self.env.rank_slice(n_global)
        imu = batch.imu[local].to(self.device, non_blocking=True)
        feat_teacher = batch.feat_teacher[local].to(self.device, non_blocking=True)
        n_valid = batch_valid(self.data.n_valid, batch.rows[local], self.device)
        with _autocast(self.device):
            z_student, z_teacher = self.ddp(imu, feat_teacher, n_valid)
        z_teacher_all = self.env.all_gather(z_teacher, n_global)  # (B_global, D_z)
        others = torch.cat([z_teacher_all[: local.start], z_teacher_all[local.stop :]])
        anchors = torch.cat([self.model.queue.features(), others])  # queue + other ranks' rows
        kwargs = dict(self.objective_kwargs)
        if self.model.temperature is not None:
            kwargs["temperature"] = self.model.temperature()
        loss = self.objective(z_teacher, z_student, anchors, **kwargs)
        weight = len(imu) * self.env.world_size / n_global  # DDP averages: make it a global mean
        self.optimizer.zero_grad(set_to_none=True)
        (loss * weight).backward()
        self.optimizer.step()
        self.scheduler.step()
        self.model.queue.enqueue(z_teacher_all)
        value = self.env.mean(float(loss.detach()) * weight)
        log.debug("epoch %d batch %d: loss %.6f", self.epoch, self.batch, value)
        return value

    def _end_epoch(self, anchors: torch.Tensor, class_ids: np.ndarray,
                   seconds: float) -> dict[str, Any]:
        r = self.running
        row: dict[str, Any] = {
            "epoch": self.epoch,
            "train_loss": r["loss_sum"] / max(1, r["batches"]),
            "lr": self.optimizer.param_groups[0]["lr"],
            "seconds": round(seconds, 3),
            "samples_per_s": round(r["samples"] / seconds, 2) if seconds > 0 else None,
            "data_wait_fraction": round(r["data_s"] / seconds, 4) if seconds > 0 else None,
        }
        if self.env.is_main:
            val = epoch_batches(self.data.source, self.data.val_keep, self.data.chunk_rows,
                                self.s.batch_size, self.s.seed, 0, self.s.buffer_chunks,
                                shuffle=False)
            row.update(validate(self.model, val, self.data.labels, anchors, class_ids,
                                self.objective, self.objective_kwargs, self.device,
                                self.data.n_valid))
        self.env.barrier()
        self.history.append(row)
        self.epoch, self.batch = self.epoch + 1, 0
        self.running = _fresh_running()
        self._save()
        return row

    def _save(self) -> None:
        if not self.env.is_main:
            return
        ckpt.save_checkpoint(self.checkpoint_path, {
            "config_hash": self.config_hash,
            "position": {"epoch": self.epoch, "batch": self.batch},
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": ckpt.rng_state(),
            "running": dict(self.running),
            "history": list(self.history),
        })


def _fresh_running() -> dict[str, float]:
    """Running sums of the current epoch (kept in checkpoints)."""
    return {"loss_sum": 0.0, "batches": 0, "samples": 0, "data_s": 0.0}


def _adamw(model: DistillModel, lr: float, weight_decay: float) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
