"""Distillation objectives: pure functions of tensors, registered by name.

Every objective has the signature ``fn(z_teacher, z_student, queue, **params) -> loss``:

- ``z_teacher`` (B, D): projected teacher embeddings of the batch. Treated as a constant:
  each objective detaches it, so no gradient ever reaches the teacher side.
- ``z_student`` (B, D): projected student embeddings of the same windows.
- ``queue`` (K, D): teacher embeddings of earlier batches (K may be 0).
- ``params``: keyword-only hyper-parameters with defaults (temperatures). The trainer passes
  only the keywords an objective declares (``objective_params``).

Objectives L2-normalise the student themselves, so callers may pass raw projections. COMODO
and InfoNCE normalise the teacher side too; ``l2`` takes it as given, as the reference does
(the trainer's teacher embeddings are unit rows either way).
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


def _infonce_logits(z_teacher: torch.Tensor, z_student: torch.Tensor,
                    temperature: float | torch.Tensor) -> torch.Tensor:
    """(B, B) cosine similarities of student rows (queries) and teacher rows (keys) / tau."""
    z_teacher = F.normalize(z_teacher.detach().float(), dim=1)  # (B, D)
    z_student = F.normalize(z_student.float(), dim=1)  # (B, D)
    return z_student @ z_teacher.T / temperature  # (B, B), positives on the diagonal


@OBJECTIVES.register("infonce")
def infonce(
    z_teacher: torch.Tensor,
    z_student: torch.Tensor,
    queue: torch.Tensor,
    *,
    temperature: float | torch.Tensor = 0.1,
) -> torch.Tensor:
    """InfoNCE as IMU2CLIP trains it: the SUM of the two directions' cross-entropies.

    logits = z_student . z_teacher^T / temperature (B, B), the positive of row i is column i;
    the loss is CE over each row (student -> all teachers) plus CE over each column
    (teacher -> all students), each averaged over the batch. ``temperature`` may be a tensor
    (learned; IMU2CLIP learns tau itself, starting at 0.1); the queue is not used.
    """
    del queue
    logits = _infonce_logits(z_teacher, z_student, temperature)  # (B, B)
    target = torch.arange(logits.shape[0], device=logits.device)  # (B,)
    return F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)


@OBJECTIVES.register("infonce_asymmetric")
def infonce_asymmetric(
    z_teacher: torch.Tensor,
    z_student: torch.Tensor,
    queue: torch.Tensor,
    *,
    temperature: float | torch.Tensor = 0.1,
) -> torch.Tensor:
    """InfoNCE one way (student -> teachers), the defaults of the COMODO code's ``InfoNCE``.

    The mean over rows of CE(z_student . z_teacher^T / temperature, row index); the queue is
    not used.
    """
    del queue
    logits = _infonce_logits(z_teacher, z_student, temperature)  # (B, B)
    return F.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device))


@OBJECTIVES.register("l2")
def l2(z_teacher: torch.Tensor, z_student: torch.Tensor, queue: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the L2-normalised student and the teacher as given.

    ``mean((z_student / |z_student| - z_teacher)^2)`` over all B x D elements, as the
    reference's ``L2DistillLoss`` (``nn.MSELoss``); the trainer passes teacher embeddings
    that are already L2-normalised (``DistillModel.embed_teacher``).
    """
    del queue
    z_student = F.normalize(z_student.float(), dim=1)  # (B, D)
    return F.mse_loss(z_student, z_teacher.detach().float())


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
