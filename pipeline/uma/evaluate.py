"""Accuracy of a fitted method per inference modality and noise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from comodo.pipeline.uma.data import EvalView
from comodo.pipeline.uma.noise import apply_noise

MODALITIES = ("imu", "video", "both")


class Predictor(Protocol):
    def logits(self, imu: np.ndarray | None, video: np.ndarray | None) -> np.ndarray: ...


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(axis=1) == labels).mean()) if labels.size else float("nan")


def evaluate(method: Predictor, view: EvalView, modalities: Sequence[str], noises: Sequence[str],
             seed: int) -> list[dict]:
    """One row per (modality, noise): accuracy on ``view`` with the noise drawn from ``seed``."""
    rows = []
    for noise in noises:
        imu, video = apply_noise(noise, view.imu, view.video, seed)
        for modality in modalities:
            logits = method.logits(imu if modality != "video" else None,
                                   video if modality != "imu" else None)
            rows.append({"modality": modality, "noise": noise, "accuracy": accuracy(logits, view.labels)})
    return rows
