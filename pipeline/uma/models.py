"""UMA encoders and heads.

Video: stored per-frame teacher features (B, F, D) -> trainable temporal convolution ->
t_rec positions -> (vector mode) a 2-layer FFN to one latent (B, L). IMU: a 1D CNN on
(B, C, T) -> t_rec positions -> (vector mode) a 2-layer FFN. In sequence mode (C3T) the
final FFN is left out and the encoder returns t_rec latent vectors (B, t_rec, L).
"""

from __future__ import annotations

import torch
from torch import nn


def ffn(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out))


class VideoBackbone(nn.Module):
    """(B, F, D) per-frame features -> (B, L, F) by a temporal convolution over frames."""

    def __init__(self, d_in: int, latent: int, kernel: int = 3):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv1d(d_in, latent, kernel, padding=kernel // 2), nn.ReLU())

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        _batch, _frames, _dim = video.shape  # (B, F, D)
        return self.conv(video.transpose(1, 2))  # (B, L, F)


class ImuBackbone(nn.Module):
    """(B, C, T) IMU -> (B, L, T / 8) by three strided conv blocks."""

    def __init__(self, channels: int, latent: int, width: int = 32):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv1d(channels, width, 7, stride=2, padding=3), nn.ReLU(),
            nn.Conv1d(width, width, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv1d(width, latent, 5, stride=2, padding=2), nn.ReLU(),
        )

    def forward(self, imu: torch.Tensor) -> torch.Tensor:
        _batch, _channels, _samples = imu.shape  # (B, C, T)
        return self.conv(imu)  # (B, L, T / 8)


class Encoder(nn.Module):
    """A backbone pooled to t_rec positions; then an FFN to (B, L) unless ``sequence``."""

    def __init__(self, backbone: nn.Module, latent: int, hidden: int, t_rec: int, sequence: bool):
        super().__init__()
        self.backbone = backbone
        self.pool = nn.AdaptiveAvgPool1d(t_rec)
        self.sequence = sequence
        self.head = None if sequence else ffn(latent * t_rec, hidden, latent)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        h_seq = self.pool(self.backbone(x)).transpose(1, 2)  # (B, t_rec, L)
        if self.head is None:
            return h_seq
        return self.head(h_seq.reshape(batch, -1))  # (B, L)


def video_encoder(d_in: int, latent: int, hidden: int, t_rec: int, sequence: bool) -> Encoder:
    return Encoder(VideoBackbone(d_in, latent), latent, hidden, t_rec, sequence)


def imu_encoder(channels: int, latent: int, hidden: int, t_rec: int, sequence: bool) -> Encoder:
    return Encoder(ImuBackbone(channels, latent), latent, hidden, t_rec, sequence)
