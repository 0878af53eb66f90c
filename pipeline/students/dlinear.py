"""DLinear (Zeng et al., "Are Transformers Effective for Time Series Forecasting?", AAAI 2023)
as a supervised baseline encoder.

Each channel is split by a moving average (kernel ``moving_avg``, ends padded by repeating
the edge values) into a trend and a seasonal remainder; one linear layer maps the trend and
another the seasonal part from ``seq_len`` time steps to ``d_out`` values, and their sum is
the channel's feature. As in the paper's channel-independent form, one set of weights is
shared by every channel; ``reduction`` concatenates (default) or averages the channels.

The linear layers need a fixed length: a series of another length is linearly resampled
to ``seq_len`` first (default 1000, 5 s at 200 Hz).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from comodo.pipeline.registry import STUDENTS
from comodo.pipeline.students.base import PerChannel
from comodo.stores.errors import ConfigError


class MovingAverage(nn.Module):
    """(N, T) -> (N, T) centred moving average with edge-replicated ends."""

    def __init__(self, kernel: int):
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ConfigError(f"dlinear: moving_avg must be an odd kernel >= 1, got {kernel}")
        self.kernel = kernel

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        half = (self.kernel - 1) // 2
        padded = F.pad(series[:, None, :], (half, half), mode="replicate")  # (N, 1, T + k - 1)
        return F.avg_pool1d(padded, self.kernel, stride=1)[:, 0]  # (N, T)


class DLinear(nn.Module):
    """(N, T) -> (N, d_out): trend and seasonal linear maps, summed."""

    def __init__(self, seq_len: int, d_out: int, moving_avg: int):
        super().__init__()
        self.seq_len = seq_len
        self.decompose = MovingAverage(moving_avg)
        self.trend = nn.Linear(seq_len, d_out)
        self.seasonal = nn.Linear(seq_len, d_out)
        self.out_dim = d_out

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        n, samples = series.shape  # (N, T)
        if samples != self.seq_len:
            series = F.interpolate(series[:, None], size=self.seq_len, mode="linear",
                                   align_corners=True)[:, 0]  # (N, seq_len)
        trend = self.decompose(series)  # (N, seq_len)
        return self.seasonal(series - trend) + self.trend(trend)  # (N, d_out)


@STUDENTS.register("dlinear")
def build_dlinear(n_channels: int, reduction: str | None = None, seq_len: int = 1000,
                  d_out: int = 64, moving_avg: int = 25) -> nn.Module:
    """DLinear baseline: moving-average trend + seasonal, two linear maps per channel."""
    if seq_len < 2 or d_out < 1:
        raise ConfigError(f"dlinear: need seq_len >= 2 and d_out >= 1, got {seq_len}, {d_out}")
    encoder = DLinear(seq_len, d_out, moving_avg)
    return PerChannel(encoder, d_out, n_channels, reduction or "concat")
