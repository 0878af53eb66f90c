"""The supervised reference: a student plus a linear head trained with labels.

``train_supervised`` builds the student from its spec (seeded as a distill run seeds it),
puts a linear head on its features and trains both with cross-entropy on the train split
only: AdamW, a fixed number of epochs, no early stopping, so nothing is chosen on the test
split. ``head_topk`` scores the head's logits as Acc@1/3/5; the encoder alone is what the
SVM protocol judges on its penultimate (pre-head) features.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from comodo.pipeline.students import StudentSpec, build_student
from comodo.stores.errors import ConfigError

log = logging.getLogger(__name__)

TOP_K = (1, 3, 5)


@dataclass(frozen=True)
class SupervisedSettings:
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05


def same_steps(settings: SupervisedSettings, n_full: int, n_subset: int) -> SupervisedSettings:
    """``settings`` with as many epochs over ``n_subset`` windows as give the optimiser steps
    of ``settings.epochs`` over ``n_full``: a few labels get more passes, not fewer steps."""
    def per_epoch(n: int) -> int:
        return max(1, math.ceil(n / settings.batch_size))

    return replace(settings, epochs=math.ceil(settings.epochs * per_epoch(n_full) / per_epoch(n_subset)))


class Classifier(nn.Module):
    """Student encoder (B, C, T) -> (B, D) followed by a linear head (B, D) -> (B, K)."""

    def __init__(self, encoder: nn.Module, n_classes: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(int(encoder.out_dim), n_classes)

    def forward(self, imu: torch.Tensor, n_valid: torch.Tensor | None = None) -> torch.Tensor:
        _batch, _channels, _samples = imu.shape  # (B, C, T)
        return self.head(self.encoder(imu, n_valid))  # (B, K)


def train_supervised(spec: StudentSpec, imu: np.ndarray, labels: np.ndarray, n_classes: int,
                     settings: SupervisedSettings, seed: int, n_valid: np.ndarray | None = None
                     ) -> Classifier:
    """Train encoder + head with cross-entropy on (imu (N, C, T), labels (N,)), each window
    read up to its ``n_valid`` (all of it when None); eval mode out."""
    if len(imu) != len(labels) or len(imu) < 2:
        raise ConfigError(f"supervised training needs >= 2 labelled train windows with one "
                          f"label each; got {len(imu)} windows and {len(labels)} labels")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ConfigError(f"supervised training: labels must lie in [0, {n_classes}); found "
                          f"{int(labels.min())}..{int(labels.max())}")
    torch.manual_seed(seed)
    model = Classifier(build_student(spec), n_classes)
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.lr,
                                  weight_decay=settings.weight_decay)
    x_all = torch.as_tensor(np.asarray(imu, np.float32))  # (N, C, T)
    y_all = torch.as_tensor(np.asarray(labels, np.int64))  # (N,)
    valid_all = torch.as_tensor(np.full(len(imu), imu.shape[-1]) if n_valid is None
                                else np.asarray(n_valid, np.int64))  # (N,)
    order = torch.Generator().manual_seed(seed)
    model.train()
    for epoch in range(settings.epochs):
        perm = torch.randperm(len(x_all), generator=order)
        total = 0.0
        for start in range(0, len(perm), settings.batch_size):
            pick = perm[start : start + settings.batch_size]
            if len(pick) < 2:  # BatchNorm needs two samples
                continue
            loss = F.cross_entropy(model(x_all[pick], valid_all[pick]), y_all[pick])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(pick)
        log.debug("supervised %s epoch %d: loss %.4f", spec.name, epoch, total / len(perm))
    return model.eval()


@torch.inference_mode()
def predict_logits(model: Classifier, imu: np.ndarray, n_valid: np.ndarray | None = None,
                   batch_size: int = 256) -> np.ndarray:
    """(N, K) logits of ``imu`` (N, C, T), each window read up to its ``n_valid``."""
    model = model.eval()
    parts = []
    for s in range(0, len(imu), batch_size):
        valid = None if n_valid is None else torch.as_tensor(n_valid[s : s + batch_size])
        parts.append(model(torch.as_tensor(np.asarray(imu[s : s + batch_size], np.float32)),
                           valid).numpy())
    return np.concatenate(parts) if parts else np.zeros((0, int(model.head.out_features)))


def head_topk(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """``acc@k`` of logits (N, K): the true class among the k largest."""
    ranked = np.argsort(-logits, axis=1, kind="stable")  # (N, K) classes, best first
    return {f"acc@{k}": float((ranked[:, :k] == labels[:, None]).any(axis=1).mean())
            for k in TOP_K}
