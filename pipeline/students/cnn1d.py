"""A small 1D CNN student for CPU training (~1.6 M parameters with the default widths).

Six strided Conv1d-BN-GELU blocks (each halves the time axis) and global average pooling.
With ``reduction`` unset it reads all channels jointly (in_channels = C); with ``concat`` or
``mean`` one single-channel CNN encodes every channel and the features are combined.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from comodo.pipeline.registry import STUDENTS
from comodo.pipeline.students.base import PerChannel
from comodo.stores.errors import ConfigError

DEFAULT_WIDTHS = (64, 128, 256, 256, 512, 512)
DEFAULT_KERNELS = (7, 5, 5, 3, 3, 3)


class ConvEncoder(nn.Module):
    """(N, C_in, T) -> (N, widths[-1]) through strided conv blocks and average pooling."""

    def __init__(self, in_channels: int, widths: Sequence[int], kernels: Sequence[int],
                 dropout: float = 0.0):
        super().__init__()
        if len(widths) != len(kernels) or not widths:
            raise ConfigError(
                f"cnn1d needs as many kernels as widths (got widths={list(widths)}, "
                f"kernels={list(kernels)})"
            )
        layers: list[nn.Module] = []
        prev = in_channels
        for width, kernel in zip(widths, kernels, strict=True):
            layers += [
                nn.Conv1d(prev, width, kernel, stride=2, padding=kernel // 2, bias=False),
                nn.BatchNorm1d(width),
                nn.GELU(),
            ]
            prev = width
        self.blocks = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.out_dim = prev

    def forward(self, imu: torch.Tensor) -> torch.Tensor:
        _batch, _channels, _samples = imu.shape  # (N, C_in, T)
        h = self.blocks(imu)  # (N, width, T / 2^depth)
        return self.dropout(h.mean(dim=-1))  # (N, width)


class SingleChannelConv(nn.Module):
    """(N, T) -> (N, d): the conv encoder on one channel, for per-channel use."""

    def __init__(self, conv: ConvEncoder):
        super().__init__()
        self.conv = conv
        self.out_dim = conv.out_dim

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        _n, _samples = series.shape  # (N, T)
        return self.conv(series.unsqueeze(1))  # (N, d)


class CNN1DStudent(nn.Module):
    """(B, C, T) -> (B, D): joint over channels, or per channel with a reduction."""

    def __init__(self, n_channels: int, reduction: str | None, widths: Sequence[int],
                 kernels: Sequence[int], dropout: float):
        super().__init__()
        if reduction is None:
            self.net: nn.Module = ConvEncoder(n_channels, widths, kernels, dropout)
        else:
            single = SingleChannelConv(ConvEncoder(1, widths, kernels, dropout))
            self.net = PerChannel(single, single.out_dim, n_channels, reduction)
        self.out_dim: int = self.net.out_dim

    def forward(self, imu: torch.Tensor) -> torch.Tensor:
        _batch, _channels, _samples = imu.shape  # (B, C, T)
        return self.net(imu)  # (B, D)


@STUDENTS.register("cnn1d")
def build_cnn1d(
    n_channels: int,
    reduction: str | None = None,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    kernels: Sequence[int] = DEFAULT_KERNELS,
    dropout: float = 0.0,
) -> nn.Module:
    """1D CNN (~1.6 M params), fast on CPU; joint channels unless a reduction is given."""
    return CNN1DStudent(n_channels, reduction, tuple(widths), tuple(kernels), dropout)
