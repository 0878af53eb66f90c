"""Mantis-8M student, through the optional extra ``mantis-tsfm`` (imported lazily).

Mantis reads one channel of exactly 512 samples and returns a 256-d feature. Every channel
is resized to 512 samples by linear interpolation (``align_corners=False``, the reference's
``resize``) and encoded by the same network; the per-channel features are combined by
``reduction`` (concat: 256 * C channel-major, ``[b, c * 256 + k]``, as the reference).
``weights`` is a hub id (``paris-noah/Mantis-8M``) or a local folder written by
``save_pretrained``; without it the network starts from random weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from comodo.pipeline.registry import STUDENTS
from comodo.pipeline.students.base import PerChannel
from comodo.stores.errors import ModelLoadError

MANTIS_LENGTH = 512
MANTIS_DIM = 256
EXTRA = "pip install 'comodo[mantis]' (or: pip install mantis-tsfm)"


def resize(series: torch.Tensor, length: int = MANTIS_LENGTH) -> torch.Tensor:
    """(N, C, T) -> (N, C, length), linear, ``align_corners=False`` (the reference's ``resize``)."""
    if series.shape[-1] == length:
        return series
    return F.interpolate(series, size=length, mode="linear", align_corners=False)


class ResizedMantis(nn.Module):
    """(N, T) -> (N, 256): linear resize to 512 samples, then Mantis-8M."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network
        self.out_dim = int(getattr(network, "hidden_dim", MANTIS_DIM))

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        _n, _samples = series.shape  # (N, T)
        return self.network(resize(series.unsqueeze(1)))  # (N, 1, 512) -> (N, 256)


def load_mantis(weights: str | None) -> nn.Module:
    """A Mantis8M network, random or from ``weights``; clear errors when unavailable."""
    try:
        from mantis.architecture import Mantis8M
    except ImportError as err:
        raise ModelLoadError(
            f"student 'mantis' needs the optional extra mantis-tsfm, which is not installed "
            f"({err}); install it with {EXTRA}, or pick another student (cnn1d, transformer)"
        ) from None
    if weights is None:
        return Mantis8M(device="cpu")
    try:
        return Mantis8M.from_pretrained(weights, device="cpu", strict=True)
    except Exception as err:  # hub, file-system and state-dict errors all mean "cannot load"
        raise ModelLoadError(
            f"could not load Mantis-8M weights from {weights!r}: {err}; pass a local folder "
            f"written by save_pretrained or a reachable hub id (paris-noah/Mantis-8M)"
        ) from err


@STUDENTS.register("mantis")
def build_mantis(
    n_channels: int,
    reduction: str | None = None,
    weights: str | None = None,
) -> nn.Module:
    """Mantis-8M per channel (each resized to 512 samples); needs the mantis-tsfm extra."""
    encoder = ResizedMantis(load_mantis(weights))
    return PerChannel(encoder, encoder.out_dim, n_channels, reduction or "concat")
