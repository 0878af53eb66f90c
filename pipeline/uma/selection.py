"""Model selection on D_Val: the epoch, then the setting, with the best IMU-only validation accuracy.

``BestEpoch`` is the training loops' epoch hook: after every epoch of every phase it scores the
method on the validation split with IMU alone (the UMA test condition) and keeps a copy of the
weights of the best epoch (the later one on ties); ``restore`` puts them back before testing.
``candidates`` expands a grid of settings (``search``), one fit per candidate; the stage keeps
the candidate whose selected epoch scores best on D_Val. The test split is never read here.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import torch

from comodo.pipeline.uma.data import EvalView
from comodo.pipeline.uma.evaluate import accuracy
from comodo.pipeline.uma.training import UmaSettings


@dataclass(frozen=True)
class Selected:
    """Which epoch was kept: its phase, its number counted over all phases, its D_Val accuracy."""

    phase: str
    epoch: int
    val_accuracy: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Selectable(Protocol):
    def logits(self, imu: np.ndarray | None, video: np.ndarray | None) -> np.ndarray: ...

    def state_dict(self) -> dict[str, torch.Tensor]: ...

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None: ...


class BestEpoch:
    """Epoch hook that keeps the weights of the epoch with the best IMU-only D_Val accuracy."""

    def __init__(self, method: Selectable, val: EvalView):
        self.method, self.val = method, val
        self.epoch = 0
        self.history: list[Selected] = []  # every epoch's score, in order
        self.best: Selected | None = None
        self.state: dict[str, torch.Tensor] | None = None

    def __call__(self, phase: str) -> None:
        self.epoch += 1
        score = accuracy(self.method.logits(self.val.imu, None), self.val.labels)
        scored = Selected(phase, self.epoch, score)
        self.history.append(scored)
        if self.best is None or scored.val_accuracy >= self.best.val_accuracy:
            self.best = scored
            self.state = {k: v.detach().clone() for k, v in self.method.state_dict().items()}

    def restore(self) -> Selected:
        """Load the best epoch's weights into the method; which epoch that was."""
        if self.best is None or self.state is None:
            raise RuntimeError("no epoch was scored: the method's fit never called its epoch hook")
        self.method.load_state_dict(self.state)
        return self.best


def candidates(settings: UmaSettings, grid: dict[str, list[Any]]) -> list[tuple[dict[str, Any], UmaSettings]]:
    """Every combination of the grid's values over ``settings``: (the changed keys, settings)."""
    keys = sorted(grid)
    out = []
    for values in itertools.product(*(grid[k] for k in keys)):
        changed = dict(zip(keys, values))
        out.append((changed, UmaSettings.model_validate(settings.model_dump() | changed)))
    return out
