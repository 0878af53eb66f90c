"""Checkpoints that resume a run exactly, and the learning-rate schedule they restore.

A checkpoint holds the model (student, heads, queue, temperature), optimizer, scheduler,
every RNG the run draws from (torch CPU and CUDA, numpy, random), the position (epoch and
the next batch of that epoch), the running sums of the current epoch and the history so
far. It is written to a temporary file and renamed, so a process killed while writing
leaves the previous checkpoint intact.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from comodo.stores.errors import ConfigError

FORMAT = 1


DECAYS = {  # LR factor after warm-up, from progress in [0, 1] to the last step
    "linear": lambda progress: 1.0 - progress,
    "cosine": lambda progress: 0.5 * (1.0 + math.cos(math.pi * progress)),
    "constant": lambda progress: 1.0,
}


@dataclass(frozen=True)
class WarmupSchedule:
    """LR factor per optimizer step: linear warmup over ``warmup`` steps, then linear or cosine
    decay to 0 at ``total``, or constant. Step ``s`` (0-based) of warmup uses
    ``(s + 1) / warmup``; linear decay is ``(total - s) / (total - warmup)``."""

    total: int
    warmup: int
    kind: str = "cosine"

    def __post_init__(self) -> None:
        if self.kind not in DECAYS:
            raise ConfigError(f"unknown schedule {self.kind!r}; valid: {', '.join(DECAYS)}")

    @classmethod
    def from_fraction(cls, total: int, fraction: float, kind: str) -> WarmupSchedule:
        warmup = max(1, math.ceil(fraction * total)) if fraction > 0 else 0
        return cls(total, min(warmup, total), kind)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return DECAYS[self.kind](progress)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` atomically (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        torch.save({"format": FORMAT, **state}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path, config_hash: str) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it was written by the same config, else None."""
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("format") != FORMAT or state.get("config_hash") != config_hash:
        return None
    return state
