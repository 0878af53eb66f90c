"""The teacher interface: a frozen model that maps preprocessed frames to embeddings.

Every teacher takes ``frames`` of shape (B, F, 3, H, W), float, already resized,
centre-cropped to ``image_size`` and normalised with the teacher's own ``mean``/``std``, and
returns ``(pooled (B, D), per_frame (B, F', D))``. ``F'`` is ``F`` for per-frame image
teachers and ``F / tubelet`` for video transformers whose tokens cover several frames.

A factory in ``TEACHERS`` builds a teacher from ``model`` (hub id or local path, optional),
``frames`` and ``pooling`` (optional overrides) and teacher-specific keyword params;
``build_teacher`` checks the params against the factory's signature.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from comodo.pipeline.config import with_nearest
from comodo.pipeline.registry import TEACHERS
from comodo.stores.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How raw frames become model input: resize short side, centre-crop, normalise."""

    image_size: int  # square crop fed to the model
    resize_short: int  # short side after resizing, before the crop (>= image_size)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


@dataclass(frozen=True)
class TeacherInfo:
    """Everything about a teacher that decides its output; goes into store provenance."""

    name: str
    model_id: str
    revision: str
    weights_hash: str
    num_frames: int
    frames_out: int
    dim: int
    pooling: str
    preprocessing: Preprocessing

    def details(self) -> dict[str, Any]:
        out = asdict(self)
        pre = out.pop("preprocessing")
        return {**out, "image_size": pre["image_size"], "resize_short": pre["resize_short"],
                "mean": list(pre["mean"]), "std": list(pre["std"])}


class Teacher(nn.Module, ABC):
    """A frozen embedding model; subclasses set ``info`` and implement ``forward``."""

    info: TeacherInfo

    @property
    def num_frames(self) -> int:
        return self.info.num_frames

    @property
    def frames_out(self) -> int:
        return self.info.frames_out

    @property
    def dim(self) -> int:
        return self.info.dim

    @property
    def pooling(self) -> str:
        return self.info.pooling

    @property
    def image_size(self) -> int:
        return self.info.preprocessing.image_size

    @property
    def mean(self) -> tuple[float, float, float]:
        return self.info.preprocessing.mean

    @property
    def std(self) -> tuple[float, float, float]:
        return self.info.preprocessing.std

    @property
    def weights_hash(self) -> str:
        return self.info.weights_hash

    def freeze(self) -> Teacher:
        self.eval()
        for param in self.parameters():
            param.requires_grad_(False)
        return self

    @abstractmethod
    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, F, 3, H, W) normalised frames -> (pooled (B, D), per_frame (B, F', D))."""


def check_pooling(teacher: str, pooling: str, valid: tuple[str, ...]) -> str:
    if pooling not in valid:
        raise ConfigError(f"teacher {teacher!r}: pooling {pooling!r} is not supported; "
                          f"valid: {', '.join(valid)}")
    return pooling


def build_teacher(name: str, model: str | None = None, frames: int | None = None,
                  pooling: str | None = None, params: dict[str, Any] | None = None) -> Teacher:
    """Look ``name`` up in ``TEACHERS`` and build it; unknown params list the valid ones."""
    factory = TEACHERS.get(name)
    params = dict(params or {})
    accepted = set(inspect.signature(factory).parameters) - {"model", "frames", "pooling"}
    unknown = sorted(set(params) - accepted)
    if unknown:
        named = with_nearest(unknown, accepted)
        raise ConfigError(f"teacher {name!r} has no params {named}; "
                          f"valid: {', '.join(sorted(accepted)) or 'none'}")
    teacher = factory(model=model, frames=frames, pooling=pooling, **params)
    return teacher.freeze()
