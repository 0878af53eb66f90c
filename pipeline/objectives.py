"""Distillation objectives: pure functions of tensors, registered by name.

Every objective has the signature ``fn(z_teacher, z_student, queue, **params) -> loss``:

- ``z_teacher`` (B, D): projected teacher embeddings of the batch. Treated as a constant:
  each objective detaches it, so no gradient ever reaches the teacher side.
- ``z_student`` (B, D): projected student embeddings of the same windows.
- ``queue`` (K, D): teacher embeddings of earlier batches (K may be 0).
- ``params``: keyword-only hyper-parameters with defaults (temperatures). The trainer passes
  only the keywords an objective declares (``objective_params``).

Objectives L2-normalise what they compare themselves, so callers may pass raw projections.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F

from comodo.pipeline.registry import OBJECTIVES
from comodo.stores.errors import ConfigError

Objective = Callable[..., torch.Tensor]


@OBJECTIVES.register("comodo")
def comodo(
    z_teacher: torch.Tensor,
    z_student: torch.Tensor,
    queue: torch.Tensor,
    *,
    teacher_temperature: float = 0.1,
    student_temperature: float = 0.05,
) -> torch.Tensor:
    """COMODO: cross-entropy between teacher and student similarity distributions over a queue.

    Anchors are [queue; batch teacher embeddings] (K + B, D). The target is
    softmax(z_teacher . anchors / teacher_temperature), the prediction
    softmax(z_student . anchors / student_temperature); the loss is their cross-entropy
    averaged over the batch.
    """
    z_teacher = F.normalize(z_teacher.detach().float(), dim=1)  # (B, D)
    z_student = F.normalize(z_student.float(), dim=1)  # (B, D)
    anchors = torch.cat([queue.detach().float(), z_teacher], dim=0)  # (K + B, D)
    anchors = F.normalize(anchors, dim=1)
    p_teacher = F.softmax(z_teacher @ anchors.T / teacher_temperature, dim=1)  # (B, K + B)
    log_p_student = F.log_softmax(z_student @ anchors.T / student_temperature, dim=1)
    return -(p_teacher * log_p_student).sum(dim=1).mean()


@OBJECTIVES.register("infonce")
def infonce(
    z_teacher: torch.Tensor,
    z_student: torch.Tensor,
    queue: torch.Tensor,
    *,
    temperature: float | torch.Tensor = 0.07,
) -> torch.Tensor:
    """IMU2CLIP-style symmetric InfoNCE between student and teacher embeddings of a batch.

    logits = z_student . z_teacher^T / temperature (B, B), the positive of row i is column i;
    the loss is the mean of the student->teacher and teacher->student cross-entropies.
    ``temperature`` may be a tensor (a learned temperature); the queue is not used.
    """
    del queue
    z_teacher = F.normalize(z_teacher.detach().float(), dim=1)  # (B, D)
    z_student = F.normalize(z_student.float(), dim=1)  # (B, D)
    logits = z_student @ z_teacher.T / temperature  # (B, B)
    target = torch.arange(logits.shape[0], device=logits.device)  # (B,)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


@OBJECTIVES.register("l2")
def l2(z_teacher: torch.Tensor, z_student: torch.Tensor, queue: torch.Tensor) -> torch.Tensor:
    """Mean squared distance between L2-normalised student and teacher embeddings."""
    del queue
    z_teacher = F.normalize(z_teacher.detach().float(), dim=1)  # (B, D)
    z_student = F.normalize(z_student.float(), dim=1)  # (B, D)
    return (z_student - z_teacher).pow(2).sum(dim=1).mean()


def objective_params(name: str) -> dict[str, Any]:
    """The keyword hyper-parameters of objective ``name`` with their defaults."""
    fn = OBJECTIVES.get(name)
    return {
        p.name: p.default
        for p in inspect.signature(fn).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def bind_objective(name: str, available: Mapping[str, Any]) -> tuple[Objective, dict[str, Any]]:
    """Objective ``name`` and the subset of ``available`` values it declares as keywords."""
    fn = OBJECTIVES.get(name)
    return fn, {k: available[k] for k in objective_params(name) if k in available}


def check_objective_params(name: str, params: Mapping[str, Any]) -> None:
    """Refuse keywords that objective ``name`` does not take, listing the ones it does."""
    known = objective_params(name)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ConfigError(
            f"objective {name!r} takes no parameter(s) {unknown}; "
            f"it takes: {', '.join(known) or 'none'}"
        )
