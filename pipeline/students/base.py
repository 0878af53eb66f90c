"""Student encoders: what every student is, how one is built, saved and loaded.

A student maps an IMU window ``imu`` (B, C, T) to a feature vector (B, D) and exposes
``out_dim`` (D). Students register a factory in ``STUDENTS``::

    factory(n_channels: int, reduction: str | None, **options) -> nn.Module

``reduction`` says how per-channel encodings are combined: ``concat`` (B, C * d) or
``mean`` (B, d). Per-channel students (one shared encoder applied to every channel, as in
the paper) default to ``concat``; a student that can also read all channels jointly (the
1D CNN) does so when ``reduction`` is None.

Every built student reads its input through ``StudentInput`` (``build_student`` wraps it):
each window's valid part (its first ``n_valid`` samples, when the caller passes ``n_valid``)
is linearly resampled to the student's ``n_samples``, so zero padding never reaches the
student as data, and with ``input_norm: instance`` (the default) every channel of every
window is standardised over those samples (instance normalisation, RevIN-style, without the
affine part), so no student depends on the units (g vs deg/s) or on a sensor's offset. The
encoder's forward is ``encoder(imu, n_valid=None)``. A student whose own forward takes an
input mask (MOMENT, which normalises with RevIN over the observed samples and masks padded
patches as the reference does) gets the window as it is and ``n_valid`` as that mask.

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

from comodo.pipeline.config import with_nearest
from comodo.pipeline.registry import STUDENTS
from comodo.stores.errors import ConfigError, ModelLoadError

REDUCTIONS = ("concat", "mean")
INPUT_NORMS = ("instance", "none")
NORM_EPS = 1e-8  # added to the variance: a std floor of 1e-4 in the stored units


@dataclass(frozen=True)
class StudentSpec:
    """Everything needed to rebuild a student: registry name, input layout and options."""

    name: str
    n_channels: int
    n_samples: int
    reduction: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    input_norm: str = "instance"  # "instance": per channel per window; "none": as stored

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
            input_norm=str(data.get("input_norm", "instance")),
        )


def valid_mask(n_valid: torch.Tensor, n_samples: int) -> torch.Tensor:
    """(B, T) bool: True at the first ``n_valid[b]`` samples of window b."""
    return torch.arange(n_samples, device=n_valid.device)[None, :] < n_valid[:, None]


def masked_channel_stats(imu: torch.Tensor, n_valid: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-window per-channel mean and std (B, C, 1) over the valid samples of ``imu``
    (B, C, T) only (all of them when ``n_valid`` is None): padding never enters them."""
    batch, _channels, samples = imu.shape  # (B, C, T)
    if n_valid is None:
        n_valid = torch.full((batch,), samples, device=imu.device)
    mask = valid_mask(n_valid.clamp(1, samples), samples)[:, None, :].to(imu.dtype)  # (B, 1, T)
    count = mask.sum(dim=-1, keepdim=True)  # (B, 1, 1)
    mean = (imu * mask).sum(dim=-1, keepdim=True) / count  # (B, C, 1)
    var = (((imu - mean) * mask) ** 2).sum(dim=-1, keepdim=True) / count  # (B, C, 1)
    return mean, torch.sqrt(var + NORM_EPS)


def resample_valid(imu: torch.Tensor, n_valid: torch.Tensor, n_out: int) -> torch.Tensor:
    """(B, C, T) -> (B, C, n_out): each window's first ``n_valid[b]`` samples linearly
    resampled over the same span (output k at source position ``k * n_valid / n_out``, as
    ``windowing.stretch_windows``); the identity where ``n_valid == T == n_out``."""
    batch, channels, samples = imu.shape  # (B, C, T)
    n = n_valid.to(torch.float64).clamp(1, samples)[:, None]  # (B, 1)
    position = torch.arange(n_out, dtype=torch.float64, device=imu.device)[None, :] * n / n_out
    lo = torch.minimum(position.floor(), n - 1).long()  # (B, n_out)
    hi = torch.minimum(lo + 1, (n - 1).long())
    w = (position - lo).to(imu.dtype)[:, None, :]  # (B, 1, n_out)
    at_lo = imu.gather(2, lo[:, None, :].expand(batch, channels, n_out))  # (B, C, n_out)
    at_hi = imu.gather(2, hi[:, None, :].expand(batch, channels, n_out))  # (B, C, n_out)
    return at_lo * (1 - w) + at_hi * w  # (B, C, n_out)


def encode(encoder: nn.Module, imu: torch.Tensor, n_valid: torch.Tensor | None = None
           ) -> torch.Tensor:
    """``encoder(imu)``, with ``n_valid`` passed on where a window is padded (a window whose
    samples are all real needs none, so any (B, C, T) -> (B, D) module serves there)."""
    _batch, _channels, samples = imu.shape  # (B, C, T)
    if n_valid is None or bool((torch.as_tensor(n_valid) >= samples).all()):
        return encoder(imu)
    return encoder(imu, n_valid)


class StudentInput(nn.Module):
    """What a student reads: the valid part of each window at the student's length,
    per-channel standardised unless ``input_norm`` is ``none``; (B, C, T) -> (B, D)."""

    def __init__(self, student: nn.Module, n_samples: int, input_norm: str):
        super().__init__()
        if input_norm not in INPUT_NORMS:
            raise ConfigError(f"unknown input_norm {input_norm!r}; valid: {', '.join(INPUT_NORMS)}")
        self.student = student
        self.n_samples = n_samples
        self.input_norm = input_norm
        self.out_dim = student.out_dim
        # a student whose forward takes an input mask (MOMENT) reads padding and scale itself
        self.native = len(inspect.signature(student.forward).parameters) > 1

    def __getattr__(self, name: str) -> Any:
        """The wrapped student's own attributes (its layers, ``encoder``, ...) read through."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["student"], name)

    def forward(self, imu: torch.Tensor, n_valid: torch.Tensor | None = None) -> torch.Tensor:
        batch, _channels, samples = imu.shape  # (B, C, T)
        if self.native:  # (B,) n_valid -> the student's (B, T) mask, 1 = observed
            if n_valid is not None and torch.as_tensor(n_valid).dim() == 1:
                n_valid = valid_mask(torch.as_tensor(n_valid, device=imu.device), samples)
            return self.student(imu, n_valid)  # (B, D)
        if n_valid is not None or samples != self.n_samples:
            if n_valid is None:
                n_valid = torch.full((batch,), samples, device=imu.device)
            imu = resample_valid(imu, torch.as_tensor(n_valid, device=imu.device),
                                 self.n_samples)  # (B, C, n_samples), every sample valid
        if self.input_norm == "instance":
            mean, std = masked_channel_stats(imu)
            imu = (imu - mean) / std  # (B, C, n_samples)
        return self.student(imu)  # (B, D)


def reduced_dim(encoder_dim: int, n_channels: int, reduction: str) -> int:
    """Feature size after combining ``n_channels`` per-channel features of ``encoder_dim``."""
    if reduction not in REDUCTIONS:
        raise ConfigError(f"unknown reduction {reduction!r}; valid: {', '.join(REDUCTIONS)}")
    return encoder_dim * n_channels if reduction == "concat" else encoder_dim


class PerChannel(nn.Module):
    """Apply one shared encoder to every channel and combine the per-channel features.

    ``encoder`` maps (N, T) -> (N, d); this module maps (B, C, T) -> (B, C * d) or (B, d).
    """

    def __init__(self, encoder: nn.Module, encoder_dim: int, n_channels: int, reduction: str):
        super().__init__()
        self.encoder = encoder
        self.reduction = reduction
        self.n_channels = n_channels
        self.out_dim = reduced_dim(encoder_dim, n_channels, reduction)

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
        named = with_nearest(unknown, known)
        raise ConfigError(f"student {spec.name!r} takes no option(s) {named}; it takes: {', '.join(known)}")
    if spec.reduction is not None and spec.reduction not in REDUCTIONS:
        raise ConfigError(f"unknown reduction {spec.reduction!r}; valid: {', '.join(REDUCTIONS)}")
    if spec.n_channels < 1:
        raise ConfigError(f"a student needs at least one IMU channel, got {spec.n_channels}")
    student = factory(n_channels=spec.n_channels, reduction=spec.reduction, **dict(spec.options))
    return StudentInput(student, spec.n_samples, spec.input_norm)


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
                    {k: v for k, v in spec.options.items() if k != "weights"}, spec.input_norm)
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
