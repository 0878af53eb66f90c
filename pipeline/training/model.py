"""The modules one distillation run trains and keeps, in one state_dict.

``DistillModel`` holds the student encoder, its projector, the frozen teacher projector, the
queue and (optionally) a learned temperature. ``forward`` maps a batch to the two
embeddings; the training loop alone orders teacher, student, loss and enqueue.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from comodo.pipeline.heads import LearnedTemperature, TeacherProjector, student_projector
from comodo.pipeline.queue import EmbeddingQueue
from comodo.pipeline.students import StudentSpec, build_student
from comodo.pipeline.students.base import encode


@dataclass(frozen=True)
class HeadSettings:
    """Sizes and kinds of the heads, the queue and the temperature."""

    teacher_dim: int
    projector_hidden: int = 2048
    projector_dim: int = 128
    teacher_projector: str = "random_mlp"
    student_projector: str = "mlp"  # mlp (Linear-BN-GELU-Linear) | linear
    queue_size: int = 4096
    learned_temperature: float | None = None  # initial value when the temperature is learned
    temperature_parametrisation: str = "direct"  # direct (tau itself) | log


class DistillModel(nn.Module):
    """Student + projector (trained), teacher projector (frozen), queue, temperature."""

    def __init__(self, student: nn.Module, heads: HeadSettings, seed: int):
        super().__init__()
        self.student = student
        self.teacher_projector = TeacherProjector(
            heads.teacher_projector, heads.teacher_dim, heads.projector_hidden,
            heads.projector_dim, seed=seed,
        )
        dim = self.teacher_projector.out_dim
        self.projector = student_projector(heads.student_projector, student.out_dim,
                                           heads.projector_hidden, dim)
        self.queue = EmbeddingQueue(heads.queue_size, dim)
        self.temperature = (
            LearnedTemperature(heads.learned_temperature, heads.temperature_parametrisation)
            if heads.learned_temperature is not None else None
        )

    @torch.no_grad()
    def embed_teacher(self, feat_teacher: torch.Tensor) -> torch.Tensor:
        """Projected, L2-normalised teacher embeddings (B, D_z); never trained."""
        _batch, _dim = feat_teacher.shape  # (B, D_teacher)
        with torch.autocast(feat_teacher.device.type, enabled=False):  # anchors stay float32
            return F.normalize(self.teacher_projector(feat_teacher.float()), dim=1)  # (B, D_z)

    def forward(self, imu: torch.Tensor, feat_teacher: torch.Tensor,
                n_valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        _batch, _channels, _samples = imu.shape  # (B, C, T)
        z_teacher = self.embed_teacher(feat_teacher)  # (B, D_z)
        z_student = self.projector(encode(self.student, imu, n_valid))  # (B, D_z)
        return z_student, z_teacher


def build_model(spec: StudentSpec, heads: HeadSettings, seed: int) -> DistillModel:
    """Build every module from ``seed``: the same seed gives the same initial weights."""
    torch.manual_seed(seed)
    student = build_student(spec)
    return DistillModel(student, heads, seed)


def build_initial_encoder(spec: StudentSpec, seed: int) -> nn.Module:
    """The student exactly as a run with ``seed`` starts it (the random-init baseline)."""
    torch.manual_seed(seed)
    return build_student(spec).eval()
