"""A small per-channel patch transformer student.

Each channel is cut into non-overlapping patches of ``patch_len`` samples (the series is
zero-padded at the end to a whole number of patches and the padded patch is masked out),
patches are embedded linearly, a CLS token is prepended, sinusoidal positions are added and
a pre-norm transformer encoder runs over them; the normalised CLS output is the channel's
feature. One encoder is shared by all channels; ``reduction`` combines them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from comodo.pipeline.registry import STUDENTS
from comodo.pipeline.students.base import PerChannel


def sinusoidal_positions(n_positions: int, dim: int, device: torch.device) -> torch.Tensor:
    """(n_positions, dim) fixed sin/cos positions, as in "Attention is all you need"."""
    position = torch.arange(n_positions, device=device, dtype=torch.float32)[:, None]  # (P, 1)
    freq = torch.exp(
        torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim)
    )  # (dim / 2,)
    table = torch.zeros(n_positions, dim, device=device)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return table


class PatchTransformer(nn.Module):
    """(N, T) -> (N, d_model): patch embedding, CLS token, transformer encoder."""

    def __init__(self, patch_len: int, d_model: int, depth: int, heads: int, mlp_ratio: int,
                 dropout: float):
        super().__init__()
        self.patch_len = patch_len
        self.embed = nn.Linear(patch_len, d_model)
        self.cls = nn.Parameter(torch.zeros(d_model))
        layer = nn.TransformerEncoderLayer(
            d_model, heads, dim_feedforward=mlp_ratio * d_model, dropout=dropout,
            activation="gelu", batch_first=True, norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.out_dim = d_model
        nn.init.normal_(self.cls, std=0.02)

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        n, samples = series.shape  # (N, T)
        n_patches = -(-samples // self.patch_len)
        pad = n_patches * self.patch_len - samples
        patches = F.pad(series, (0, pad)).reshape(n, n_patches, self.patch_len)  # (N, P, L)
        tokens = self.embed(patches)  # (N, P, d)
        tokens = torch.cat([self.cls.expand(n, 1, -1), tokens], dim=1)  # (N, 1 + P, d)
        tokens = tokens + sinusoidal_positions(1 + n_patches, tokens.shape[-1], tokens.device)
        padding = torch.zeros(n, 1 + n_patches, dtype=torch.bool, device=series.device)
        if pad * 2 > self.patch_len:  # a last patch that is mostly padding is masked out
            padding[:, -1] = True
        hidden = self.encoder(tokens, src_key_padding_mask=padding)  # (N, 1 + P, d)
        return self.norm(hidden[:, 0])  # (N, d)


@STUDENTS.register("transformer")
def build_transformer(
    n_channels: int,
    reduction: str | None = None,
    patch_len: int = 25,
    d_model: int = 128,
    depth: int = 4,
    heads: int = 4,
    mlp_ratio: int = 2,
    dropout: float = 0.1,
) -> nn.Module:
    """Per-channel patch transformer (~0.5 M params); channels combined by ``reduction``."""
    encoder = PatchTransformer(patch_len, d_model, depth, heads, mlp_ratio, dropout)
    return PerChannel(encoder, encoder.out_dim, n_channels, reduction or "concat")
