"""Informer (Zhou et al., AAAI 2021) encoder as a supervised baseline encoder.

- Embedding: a circular 1D convolution (kernel 3) over all channels into ``d_model`` plus
  fixed sinusoidal positions.
- ProbSparse self-attention: the sparsity of each query, M(q) = max_j(q.k_j) - mean_j(q.k_j),
  is estimated on ``factor * ln(L)`` sampled keys; only the ``factor * ln(L)`` queries with the
  largest M attend over all keys, the other ("lazy") queries output the mean of the values.
  Keys are sampled at random in training and evenly spaced in eval mode (deterministic
  features); one sample of keys is shared by all queries of a batch.
- Self-attention distilling: between attention layers a conv (kernel 3, circular), BatchNorm,
  ELU and max-pool (stride 2) halve the sequence.
- The last layer's output, layer-normalised and averaged over time, is the feature (B, d_model).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from comodo.pipeline.registry import STUDENTS
from comodo.pipeline.students.transformer import sinusoidal_positions
from comodo.stores.errors import ConfigError


class ProbSparseAttention(nn.Module):
    """Multi-head ProbSparse self-attention over (B, L, d_model)."""

    def __init__(self, d_model: int, heads: int, factor: int, dropout: float):
        super().__init__()
        if d_model % heads:
            raise ConfigError(f"informer: d_model {d_model} is not divisible by heads {heads}")
        self.heads, self.factor = heads, factor
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def _n(self, length: int) -> int:
        return max(1, min(length, int(self.factor * math.ceil(math.log(length + 1)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, d_model = x.shape  # (B, L, d)
        q, k, v = self.qkv(x).reshape(batch, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        # q, k, v: (B, H, L, E)
        n_sample, n_top = self._n(length), self._n(length)
        if self.training:
            picked = torch.randint(length, (n_sample,), device=x.device)
        else:
            picked = torch.linspace(0, length - 1, n_sample, device=x.device).round().long()
        qk_sample = q @ k[:, :, picked].transpose(-2, -1)  # (B, H, L, n_sample)
        sparsity = qk_sample.amax(-1) - qk_sample.sum(-1) / length  # (B, H, L)
        top = sparsity.topk(n_top, dim=-1).indices  # (B, H, u)
        q_top = torch.gather(q, 2, top[..., None].expand(-1, -1, -1, q.shape[-1]))  # (B, H, u, E)
        scores = q_top @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, u, L)
        attended = self.dropout(scores.softmax(-1)) @ v  # (B, H, u, E)
        context = v.mean(dim=2, keepdim=True).expand_as(v).clone()  # (B, H, L, E) lazy queries
        context.scatter_(2, top[..., None].expand_as(attended), attended)
        return self.out(context.transpose(1, 2).reshape(batch, length, d_model))  # (B, L, d)


class EncoderLayer(nn.Module):
    """Attention + position-wise feed-forward (conv 1x1), post-norm, as in Informer."""

    def __init__(self, d_model: int, heads: int, factor: int, d_ff: int, dropout: float):
        super().__init__()
        self.attention = ProbSparseAttention(d_model, heads, factor, dropout)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout),
                                nn.Linear(d_ff, d_model))
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.dropout(self.attention(x)))  # (B, L, d)
        return self.norm2(x + self.dropout(self.ff(x)))  # (B, L, d)


class DistilConv(nn.Module):
    """(B, L, d) -> (B, ceil(L / 2), d): conv, BatchNorm, ELU, max-pool stride 2."""

    def __init__(self, d_model: int):
        super().__init__()
        self.conv = nn.Conv1d(d_model, d_model, 3, padding=1, padding_mode="circular")
        self.norm = nn.BatchNorm1d(d_model)
        self.pool = nn.MaxPool1d(3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.elu(self.norm(self.conv(x.transpose(1, 2))))  # (B, d, L)
        return self.pool(h).transpose(1, 2)  # (B, L', d)


class InformerEncoder(nn.Module):
    """(B, C, T) -> (B, d_model)."""

    def __init__(self, n_channels: int, d_model: int, heads: int, layers: int, d_ff: int,
                 factor: int, distil: bool, dropout: float):
        super().__init__()
        self.embed = nn.Conv1d(n_channels, d_model, 3, padding=1, padding_mode="circular")
        self.layers = nn.ModuleList(EncoderLayer(d_model, heads, factor, d_ff, dropout)
                                    for _ in range(layers))
        self.distil = nn.ModuleList(DistilConv(d_model) for _ in range(layers - 1)) if distil \
            else nn.ModuleList()
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.out_dim = d_model

    def forward(self, imu: torch.Tensor) -> torch.Tensor:
        batch, channels, samples = imu.shape  # (B, C, T)
        x = self.embed(imu).transpose(1, 2)  # (B, T, d)
        x = self.dropout(x + sinusoidal_positions(samples, x.shape[-1], x.device))
        for i, layer in enumerate(self.layers):
            x = layer(x)  # (B, L, d)
            if i < len(self.distil):
                x = self.distil[i](x)  # (B, L / 2, d)
        return self.norm(x).mean(dim=1)  # (B, d)


@STUDENTS.register("informer")
def build_informer(n_channels: int, reduction: str | None = None, d_model: int = 64,
                   heads: int = 4, layers: int = 2, d_ff: int = 128, factor: int = 5,
                   distil: bool = True, dropout: float = 0.1) -> nn.Module:
    """Informer baseline: ProbSparse self-attention encoder with distilling convolutions."""
    if reduction is not None:
        raise ConfigError(f"informer reads all channels jointly; set reduction to null, "
                          f"not {reduction!r}")
    if layers < 1:
        raise ConfigError(f"informer: layers must be >= 1, got {layers}")
    return InformerEncoder(n_channels, d_model, heads, layers, d_ff, factor, distil, dropout)
