"""Projection heads applied at training time, and a learnable temperature.

- ``StudentProjector``: Linear-BN-GELU-Linear on the student encoder's output; trained, then
  dropped when the encoder is exported. ``LinearStudentProjector``: one Linear layer (the
  reference's baseline head: the student mapped to the teacher's dimension).
- ``TeacherProjector``: maps stored raw teacher features (e.g. 768-d pooled) into the shared
  embedding space. ``random_mlp`` is a frozen MLP drawn from its own seed (weights are
  buffers: no optimizer sees them, a checkpoint restores them); ``identity`` passes the
  features through unchanged.
- ``LearnedTemperature``: a learned scalar temperature, either the value itself (``direct``,
  as IMU2CLIP learns it) or its logarithm clamped at a minimum (``log``, CLIP style).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from comodo.stores.errors import ConfigError

TEACHER_PROJECTORS = ("random_mlp", "identity")
TEMPERATURE_PARAMETRISATIONS = ("direct", "log")


class StudentProjector(nn.Module):
    """Linear(in, hidden, no bias) - BatchNorm - GELU - Linear(hidden, out)."""

    def __init__(self, in_dim: int, hidden_dim: int = 2048, out_dim: int = 128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim, bias=False),  # a bias before BatchNorm is a no-op
            nn.BatchNorm1d(hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, out_dim),
        )
        self.out_dim = out_dim

    def forward(self, h_student: torch.Tensor) -> torch.Tensor:
        _batch, _dim = h_student.shape  # (B, D_encoder)
        return self.net(h_student)  # (B, out)


class LinearStudentProjector(nn.Module):
    """Linear(in, out) with bias: the student mapped straight to the embedding dimension."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.net = nn.Linear(in_dim, out_dim)
        self.out_dim = out_dim

    def forward(self, h_student: torch.Tensor) -> torch.Tensor:
        _batch, _dim = h_student.shape  # (B, D_encoder)
        return self.net(h_student)  # (B, out)


STUDENT_PROJECTORS: dict[str, Callable[[int, int, int], nn.Module]] = {
    "mlp": lambda in_dim, hidden, out: StudentProjector(in_dim, hidden, out),
    "linear": lambda in_dim, _hidden, out: LinearStudentProjector(in_dim, out),
}


def student_projector(kind: str, in_dim: int, hidden_dim: int, out_dim: int) -> nn.Module:
    """``mlp`` (StudentProjector) or ``linear`` (LinearStudentProjector)."""
    if kind not in STUDENT_PROJECTORS:
        raise ConfigError(
            f"unknown student projector {kind!r}; valid: {', '.join(STUDENT_PROJECTORS)}"
        )
    return STUDENT_PROJECTORS[kind](in_dim, hidden_dim, out_dim)


class TeacherProjector(nn.Module):
    """Frozen random MLP (Linear-GELU-Linear from ``seed``) or identity on teacher features."""

    def __init__(self, kind: str, in_dim: int, hidden_dim: int = 2048, out_dim: int = 128,
                 seed: int = 0):
        super().__init__()
        if kind not in TEACHER_PROJECTORS:
            raise ConfigError(
                f"unknown teacher projector {kind!r}; valid: {', '.join(TEACHER_PROJECTORS)}"
            )
        self.kind = kind
        self.in_dim = in_dim
        self.out_dim = in_dim if kind == "identity" else out_dim
        if kind == "random_mlp":
            gen = torch.Generator().manual_seed(seed)
            self.register_buffer("w1", _kaiming(hidden_dim, in_dim, gen))  # (H, D_teacher)
            self.register_buffer("b1", torch.zeros(hidden_dim))  # (H,)
            self.register_buffer("w2", _kaiming(out_dim, hidden_dim, gen))  # (out, H)
            self.register_buffer("b2", torch.zeros(out_dim))  # (out,)

    def forward(self, feat_teacher: torch.Tensor) -> torch.Tensor:
        _batch, dim = feat_teacher.shape  # (B, D_teacher)
        if dim != self.in_dim:
            raise ValueError(f"teacher projector expects {self.in_dim}-d features, got {dim}-d")
        if self.kind == "identity":
            return feat_teacher
        hidden = F.gelu(F.linear(feat_teacher, self.w1, self.b1))  # (B, H)
        return F.linear(hidden, self.w2, self.b2)  # (B, out)

    def extra_repr(self) -> str:
        return f"kind={self.kind}, in_dim={self.in_dim}, out_dim={self.out_dim}"


def _kaiming(rows: int, cols: int, gen: torch.Generator) -> torch.Tensor:
    """Kaiming-uniform weights (as nn.Linear draws them) from an explicit generator."""
    bound = 1.0 / math.sqrt(cols)
    return (torch.rand(rows, cols, generator=gen) * 2 - 1) * bound


class LearnedTemperature(nn.Module):
    """A learned temperature: tau itself (``direct``) or log tau clamped at ``minimum``."""

    def __init__(self, init: float, parametrisation: str = "direct", minimum: float = 0.01):
        super().__init__()
        if init <= 0:
            raise ConfigError(f"temperature must be > 0, got {init}")
        if parametrisation not in TEMPERATURE_PARAMETRISATIONS:
            raise ConfigError(f"unknown temperature parametrisation {parametrisation!r}; "
                              f"valid: {', '.join(TEMPERATURE_PARAMETRISATIONS)}")
        self.parametrisation = parametrisation
        value = init if parametrisation == "direct" else math.log(init)
        self.value = nn.Parameter(torch.tensor(float(value)))
        self.minimum = minimum

    def forward(self) -> torch.Tensor:
        if self.parametrisation == "direct":
            return self.value
        return self.value.exp().clamp(min=self.minimum)

    def extra_repr(self) -> str:
        return f"parametrisation={self.parametrisation}"
