"""TimesNet (Wu et al., ICLR 2023) as a supervised baseline encoder.

- Embedding: a circular 1D convolution (kernel 3) over all channels into ``d_model`` plus
  fixed sinusoidal positions.
- TimesBlock: the FFT amplitude, averaged over the batch and the features, picks the
  ``top_k`` strongest frequencies f (the constant term excluded); each gives a period
  p = T // f. The sequence is zero-padded to a multiple of p and folded 1D -> 2D into
  (T / p) x p, two Inception blocks (parallel 2D convolutions of kernels 1, 3, ...,
  2 * num_kernels - 1, averaged) with a GELU between them process it, and it is unfolded
  back. The ``top_k`` results are summed with softmax weights of their amplitudes (per
  sample) and added to the block's input; a LayerNorm follows each block.
- The feature is the last block's output after GELU, averaged over time: (B, d_model).

As in the paper, the periods are chosen from the batch's mean spectrum, so a window's
features can depend on the other windows of its batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from comodo.pipeline.registry import STUDENTS
from comodo.pipeline.students.transformer import sinusoidal_positions
from comodo.stores.errors import ConfigError


class InceptionBlock(nn.Module):
    """(B, C_in, H, W) -> (B, C_out, H, W): mean of same-padded 2D convs of odd kernels."""

    def __init__(self, c_in: int, c_out: int, num_kernels: int):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(c_in, c_out, 2 * i + 1, padding=i)
                                   for i in range(num_kernels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([conv(x) for conv in self.convs], dim=-1).mean(-1)


def fft_periods(x: torch.Tensor, top_k: int) -> tuple[list[int], torch.Tensor]:
    """Periods of the ``top_k`` strongest frequencies of x (B, T, d), and (B, k) amplitudes."""
    amplitude = torch.fft.rfft(x, dim=1).abs()  # (B, T // 2 + 1, d)
    spectrum = amplitude.mean(0).mean(-1)  # (T // 2 + 1,)
    spectrum[0] = 0
    k = min(top_k, len(spectrum) - 1)
    freqs = torch.topk(spectrum, k).indices.clamp(min=1)  # (k,)
    periods = [max(1, x.shape[1] // int(f)) for f in freqs.tolist()]
    return periods, amplitude.mean(-1)[:, freqs]  # (B, k)


class TimesBlock(nn.Module):
    """(B, T, d) -> (B, T, d)."""

    def __init__(self, d_model: int, d_ff: int, num_kernels: int, top_k: int):
        super().__init__()
        self.top_k = top_k
        self.conv = nn.Sequential(InceptionBlock(d_model, d_ff, num_kernels), nn.GELU(),
                                  InceptionBlock(d_ff, d_model, num_kernels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, samples, d_model = x.shape  # (B, T, d)
        periods, weights = fft_periods(x, self.top_k)
        outs = []
        for period in periods:
            length = -(-samples // period) * period
            padded = F.pad(x, (0, 0, 0, length - samples))  # (B, T', d)
            grid = padded.reshape(batch, length // period, period, d_model).permute(0, 3, 1, 2)
            # grid: (B, d, T' / p, p)
            h = self.conv(grid).permute(0, 2, 3, 1).reshape(batch, length, d_model)  # (B, T', d)
            outs.append(h[:, :samples])
        stacked = torch.stack(outs, dim=-1)  # (B, T, d, k)
        w = weights.softmax(dim=1)[:, None, None, :]  # (B, 1, 1, k)
        return (stacked * w).sum(-1) + x  # (B, T, d)


class TimesNetEncoder(nn.Module):
    """(B, C, T) -> (B, d_model)."""

    def __init__(self, n_channels: int, d_model: int, d_ff: int, layers: int, top_k: int,
                 num_kernels: int, dropout: float):
        super().__init__()
        self.embed = nn.Conv1d(n_channels, d_model, 3, padding=1, padding_mode="circular")
        self.blocks = nn.ModuleList(TimesBlock(d_model, d_ff, num_kernels, top_k)
                                    for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.out_dim = d_model

    def forward(self, imu: torch.Tensor) -> torch.Tensor:
        batch, channels, samples = imu.shape  # (B, C, T)
        x = self.embed(imu).transpose(1, 2)  # (B, T, d)
        x = self.dropout(x + sinusoidal_positions(samples, x.shape[-1], x.device))
        for block in self.blocks:
            x = self.norm(block(x))  # (B, T, d)
        return self.dropout(F.gelu(x)).mean(dim=1)  # (B, d)


@STUDENTS.register("timesnet")
def build_timesnet(n_channels: int, reduction: str | None = None, d_model: int = 16,
                   d_ff: int = 32, layers: int = 2, top_k: int = 3, num_kernels: int = 3,
                   dropout: float = 0.1) -> nn.Module:
    """TimesNet baseline: FFT periods, 1D -> 2D folding, Inception 2D conv blocks."""
    if reduction is not None:
        raise ConfigError(f"timesnet reads all channels jointly; set reduction to null, "
                          f"not {reduction!r}")
    if min(layers, top_k, num_kernels) < 1:
        raise ConfigError(f"timesnet: layers, top_k and num_kernels must be >= 1, got "
                          f"{layers}, {top_k}, {num_kernels}")
    return TimesNetEncoder(n_channels, d_model, d_ff, layers, top_k, num_kernels, dropout)
