"""Training settings, minibatch loops and the four training orders of the aligned methods.

The loop alone orders model, loss and optimiser steps; losses come from ``uma.losses``.
Orders: ``align_first`` (align both encoders on D_Align, then train the head on frozen video
latents of D_HAR), ``har_first`` (train video encoder + head on D_HAR, then align the IMU
encoder to the frozen video encoder), ``interspersed`` (alternate one HAR epoch and one
alignment epoch, everything trainable), ``combined`` (one loss: HAR + weight * alignment).
``order: null`` leaves the choice to the method (CA ``combined``, C3T ``align_first``). Every
loop calls an ``EpochHook`` with its phase after each epoch: model selection on D_Val listens.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from comodo.pipeline.config import StageConfig
from comodo.pipeline.registry import Registry
from comodo.stores.errors import ConfigError

LossFn = Callable[[torch.Tensor], torch.Tensor]  # minibatch row ids -> scalar loss
EpochHook = Callable[[str], None]  # called after every epoch with the phase's name


def no_hook(phase: str) -> None:
    """The hook of a run without model selection."""


class UmaSettings(StageConfig):
    """Model sizes and optimisation of one UMA run."""

    latent: int = Field(64, ge=1)
    hidden: int = Field(128, ge=1)
    t_rec: int = Field(4, ge=1)
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(32, ge=2)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    temperature: float = Field(0.1, gt=0)
    align_weight: float = Field(1.0, ge=0)
    order: str | None = None  # training order (ORDERS); None: the method's own
    head: str = "mlp_concat"  # C3T head (SEQUENCE_HEADS): best D_Val accuracy of the four on UTD-MHAD
    device: Literal["auto", "cpu", "cuda"] = "auto"


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("uma: device 'cuda' was asked but torch sees no CUDA device; use cpu or auto")
    return torch.device(device)


def minibatches(n_rows: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """A seeded permutation of ``range(n_rows)`` cut into batches (a last batch of 1 is merged)."""
    perm = torch.randperm(n_rows, generator=gen)
    parts = list(perm.split(batch_size))
    if len(parts) > 1 and parts[-1].numel() == 1:
        parts[-2] = torch.cat([parts[-2], parts.pop()])
    return parts


def paired_minibatches(n_a: int, n_b: int, batch_size: int,
                       gen: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of two sets side by side; the shorter set is cycled."""
    a, b = minibatches(n_a, batch_size, gen), minibatches(n_b, batch_size, gen)
    for i in range(max(len(a), len(b))):
        yield a[i % len(a)], b[i % len(b)]


class Optimiser:
    """Adam over some modules; gradients of every module of the model are cleared each step."""

    def __init__(self, train: Sequence[nn.Module], model: Sequence[nn.Module], s: UmaSettings):
        params = [p for m in train for p in m.parameters()]
        self.opt = torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay)
        self.model = list(model)

    def step(self, loss: torch.Tensor) -> float:
        for module in self.model:
            module.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss.detach())


def run_epochs(opt: Optimiser, loss_fn: LossFn, n_rows: int, epochs: int, batch_size: int,
               gen: torch.Generator, on_epoch: EpochHook = no_hook, phase: str = "train") -> float:
    """``epochs`` passes of ``loss_fn`` over shuffled batches; the last epoch's mean loss."""
    last = math.nan
    for _ in range(epochs):
        losses = [opt.step(loss_fn(idx)) for idx in minibatches(n_rows, batch_size, gen)]
        last = sum(losses) / len(losses)
        on_epoch(phase)
    return last


@dataclass(frozen=True)
class AlignParts:
    """The modules and the two losses of an aligned method, for the training orders."""

    video: nn.Module
    imu: nn.Module
    head: nn.Module
    har_loss: LossFn
    align_loss: LossFn
    n_har: int
    n_align: int

    @property
    def all(self) -> list[nn.Module]:
        return [self.video, self.imu, self.head]


OrderFn = Callable[[AlignParts, UmaSettings, torch.Generator, EpochHook], None]
ORDERS: Registry[OrderFn] = Registry("training order")


@ORDERS.register("align_first", doc="align on D_Align, then the head on frozen video latents")
def align_first(p: AlignParts, s: UmaSettings, gen: torch.Generator, on_epoch: EpochHook) -> None:
    run_epochs(Optimiser([p.video, p.imu], p.all, s), p.align_loss, p.n_align, s.epochs, s.batch_size,
               gen, on_epoch, "align")
    run_epochs(Optimiser([p.head], p.all, s), p.har_loss, p.n_har, s.epochs, s.batch_size, gen,
               on_epoch, "har")


@ORDERS.register("har_first", doc="video encoder + head on D_HAR, then the IMU encoder aligned")
def har_first(p: AlignParts, s: UmaSettings, gen: torch.Generator, on_epoch: EpochHook) -> None:
    run_epochs(Optimiser([p.video, p.head], p.all, s), p.har_loss, p.n_har, s.epochs, s.batch_size,
               gen, on_epoch, "har")
    run_epochs(Optimiser([p.imu], p.all, s), p.align_loss, p.n_align, s.epochs, s.batch_size, gen,
               on_epoch, "align")


@ORDERS.register("interspersed", doc="alternate one HAR epoch and one alignment epoch")
def interspersed(p: AlignParts, s: UmaSettings, gen: torch.Generator, on_epoch: EpochHook) -> None:
    opt = Optimiser(p.all, p.all, s)
    for _ in range(s.epochs):
        run_epochs(opt, p.har_loss, p.n_har, 1, s.batch_size, gen)
        run_epochs(opt, p.align_loss, p.n_align, 1, s.batch_size, gen, on_epoch, "interspersed")


@ORDERS.register("combined", doc="one loss per step: HAR + align_weight * alignment")
def combined(p: AlignParts, s: UmaSettings, gen: torch.Generator, on_epoch: EpochHook) -> None:
    opt = Optimiser(p.all, p.all, s)
    for _ in range(s.epochs):
        for idx_har, idx_align in paired_minibatches(p.n_har, p.n_align, s.batch_size, gen):
            opt.step(p.har_loss(idx_har) + s.align_weight * p.align_loss(idx_align))
        on_epoch("combined")
