"""Student encoders: what every student is, how one is built, saved and loaded.

A student maps an IMU window ``imu`` (B, C, T) to a feature vector (B, D) and exposes
``out_dim`` (D). Students register a factory in ``STUDENTS``::

    factory(n_channels: int, reduction: str | None, **options) -> nn.Module

``reduction`` says how per-channel encodings are combined: ``concat`` (B, C * d) or
``mean`` (B, d). Per-channel students (one shared encoder applied to every channel, as in
the paper) default to ``concat``; a student that can also read all channels jointly (the
1D CNN) does so when ``reduction`` is None.

An exported encoder is two files: ``<name>.safetensors`` (the weights) and ``<name>.json``
(the ``StudentSpec`` plus facts about it: parameter count, CPU latency, lineage).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from comodo.pipeline.registry import STUDENTS
from comodo.stores.errors import ConfigError, ModelLoadError

REDUCTIONS = ("concat", "mean")


@dataclass(frozen=True)
class StudentSpec:
    """Everything needed to rebuild a student: registry name, input layout and options."""

    name: str
    n_channels: int
    n_samples: int
    reduction: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["options"] = dict(self.options)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StudentSpec:
        return cls(
            name=str(data["name"]),
            n_channels=int(data["n_channels"]),
            n_samples=int(data["n_samples"]),
            reduction=data.get("reduction"),
            options=dict(data.get("options") or {}),
        )


class PerChannel(nn.Module):
    """Apply one shared encoder to every channel and combine the per-channel features.

    ``encoder`` maps (N, T) -> (N, d); this module maps (B, C, T) -> (B, C * d) or (B, d).
    """

    def __init__(self, encoder: nn.Module, encoder_dim: int, n_channels: int, reduction: str):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ConfigError(f"unknown reduction {reduction!r}; valid: {', '.join(REDUCTIONS)}")
        self.encoder = encoder
        self.reduction = reduction
        self.n_channels = n_channels
        self.out_dim = encoder_dim * n_channels if reduction == "concat" else encoder_dim

    def forward(self, imu: torch.Tensor) -> torch.Tensor:
        batch, channels, samples = imu.shape  # (B, C, T)
        h_channel = self.encoder(imu.reshape(batch * channels, samples))  # (B * C, d)
        h_channel = h_channel.reshape(batch, channels, -1)  # (B, C, d)
        if self.reduction == "concat":
            return h_channel.flatten(1)  # (B, C * d)
        return h_channel.mean(dim=1)  # (B, d)


def build_student(spec: StudentSpec) -> nn.Module:
    """Instantiate ``spec``; unknown names and options fail with the valid ones."""
    factory = STUDENTS.get(spec.name)
    params = inspect.signature(factory).parameters
    known = [p for p in params if p not in ("n_channels", "reduction")]
    unknown = sorted(set(spec.options) - set(known))
    if unknown:
        raise ConfigError(
            f"student {spec.name!r} takes no option(s) {unknown}; it takes: {', '.join(known)}"
        )
    if spec.reduction is not None and spec.reduction not in REDUCTIONS:
        raise ConfigError(f"unknown reduction {spec.reduction!r}; valid: {', '.join(REDUCTIONS)}")
    if spec.n_channels < 1:
        raise ConfigError(f"a student needs at least one IMU channel, got {spec.n_channels}")
    return factory(n_channels=spec.n_channels, reduction=spec.reduction, **dict(spec.options))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def load_encoder(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild an exported encoder from ``<path>.safetensors`` + ``<path>.json``.

    ``path`` may name either file or their common stem. Returns the module in eval mode and
    the JSON record (its ``spec`` entry is the ``StudentSpec``).
    """
    stem = Path(path)
    if stem.suffix in (".safetensors", ".json"):
        stem = stem.with_suffix("")
    meta_path, weights_path = stem.with_suffix(".json"), stem.with_suffix(".safetensors")
    for p in (meta_path, weights_path):
        if not p.is_file():
            raise ModelLoadError(
                f"encoder file {p} not found; run the distill stage that exports it first"
            )
    meta = json.loads(meta_path.read_text())
    spec = StudentSpec.from_dict(meta["spec"])
    # weights come from the file, not from a pretrained checkpoint named in the options
    encoder = build_student(
        StudentSpec(spec.name, spec.n_channels, spec.n_samples, spec.reduction,
                    {k: v for k, v in spec.options.items() if k != "weights"})
    )
    state = load_file(str(weights_path))
    result = encoder.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ModelLoadError(
            f"{weights_path} does not match student {spec.name!r}: missing "
            f"{result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}; "
            f"re-export it with the code that reads it"
        )
    return encoder.eval(), meta
