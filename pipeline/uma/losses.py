"""UMA losses: pure functions of tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def symmetric_contrastive_loss(z_video: torch.Tensor, z_imu: torch.Tensor,
                               temperature: float) -> torch.Tensor:
    """InfoNCE in both directions between paired latents (B, L); row i of each is a pair."""
    batch, _latent = z_video.shape  # (B, L)
    logits = F.normalize(z_video, dim=-1) @ F.normalize(z_imu, dim=-1).T / temperature  # (B, B)
    target = torch.arange(batch, device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def positionwise_contrastive_loss(z_video_seq: torch.Tensor, z_imu_seq: torch.Tensor,
                                  temperature: float) -> torch.Tensor:
    """The symmetric contrastive loss at each of t_rec positions, averaged over positions."""
    batch, positions, _latent = z_video_seq.shape  # (B, t_rec, L)
    a = F.normalize(z_video_seq, dim=-1).transpose(0, 1)  # (t_rec, B, L)
    b = F.normalize(z_imu_seq, dim=-1).transpose(0, 1)  # (t_rec, B, L)
    logits = a @ b.transpose(1, 2) / temperature  # (t_rec, B, B)
    target = torch.arange(batch, device=logits.device).repeat(positions)  # (t_rec * B,)
    forward = F.cross_entropy(logits.reshape(-1, batch), target)
    backward = F.cross_entropy(logits.transpose(1, 2).reshape(-1, batch), target)
    return 0.5 * (forward + backward)


def alignment_loss(z_video: torch.Tensor, z_imu: torch.Tensor, temperature: float) -> torch.Tensor:
    """Vector latents (B, L) or sequences (B, t_rec, L): the matching contrastive loss."""
    if z_video.dim() == 3:
        return positionwise_contrastive_loss(z_video, z_imu, temperature)
    return symmetric_contrastive_loss(z_video, z_imu, temperature)


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of (B, K) logits against (B,) class ids (true or pseudo labels)."""
    return F.cross_entropy(logits, labels)
