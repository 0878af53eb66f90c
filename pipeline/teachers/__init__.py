"""Frozen teachers: importing this package registers every built-in one in ``TEACHERS``."""

from comodo.pipeline.teachers import hf_auto, hf_video, mobilenet  # noqa: F401
from comodo.pipeline.teachers.base import Preprocessing, Teacher, TeacherInfo, build_teacher

__all__ = ["Preprocessing", "Teacher", "TeacherInfo", "build_teacher"]
