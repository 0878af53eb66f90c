"""Student encoders (B, C, T) -> (B, D); importing this package registers the built-in ones."""

from comodo.pipeline.students import cnn1d, dlinear, informer, mantis, moment, timesnet, transformer  # noqa: F401
from comodo.pipeline.students.base import (
    REDUCTIONS,
    PerChannel,
    StudentSpec,
    build_student,
    count_parameters,
    load_encoder,
)

__all__ = [
    "REDUCTIONS",
    "PerChannel",
    "StudentSpec",
    "build_student",
    "count_parameters",
    "load_encoder",
]
