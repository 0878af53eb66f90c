"""Sensor-fusion baselines adapted to UMA: early, feature-level and late fusion.

Each fusion model takes (IMU, video) and is trained in two phases that use only the training
view: on D_HAR with its video and labels and zeros for the IMU it does not have; then on
D_Align with both modalities and pseudo-labels from a video-only pass (IMU zeros) of the
phase-one model. A missing modality at inference is zeros as well.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from comodo.pipeline.uma.data import TrainView
from comodo.pipeline.uma.heads import har_head
from comodo.pipeline.uma.losses import classification_loss
from comodo.pipeline.uma.methods import METHODS, Modules, as_tensor, batched, seeded
from comodo.pipeline.uma.models import ffn, imu_encoder, video_encoder
from comodo.pipeline.uma.training import EpochHook, Optimiser, UmaSettings, no_hook, run_epochs


class EarlyFusion(nn.Module):
    """Inputs resampled to one time axis and stacked as channels, then one conv encoder + head."""

    def __init__(self, channels: int, dim: int, n_classes: int, s: UmaSettings):
        super().__init__()
        self.length = 4 * s.t_rec
        self.conv = nn.Sequential(nn.Conv1d(channels + dim, s.latent, 3, padding=1), nn.ReLU(),
                                  nn.AdaptiveAvgPool1d(s.t_rec))
        self.embed = ffn(s.latent * s.t_rec, s.hidden, s.latent)
        self.head = har_head(s.latent, s.hidden, n_classes)

    def features(self, imu: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        batch, _channels, _samples = imu.shape  # (B, C, T); video (B, F, D)
        imu_p = F.adaptive_avg_pool1d(imu, self.length)  # (B, C, P)
        video_p = F.interpolate(video.transpose(1, 2), size=self.length, mode="linear")  # (B, D, P)
        return self.embed(self.conv(torch.cat([imu_p, video_p], dim=1)).reshape(batch, -1))  # (B, L)

    def forward(self, imu: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(imu, video))  # (B, K)


class FeatureFusion(nn.Module):
    """One encoder per modality; the two latents concatenated into one head."""

    def __init__(self, channels: int, dim: int, n_classes: int, s: UmaSettings):
        super().__init__()
        self.imu = imu_encoder(channels, s.latent, s.hidden, s.t_rec, False)
        self.video = video_encoder(dim, s.latent, s.hidden, s.t_rec, False)
        self.head = har_head(2 * s.latent, s.hidden, n_classes)

    def features(self, imu: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.imu(imu), self.video(video)], dim=-1)  # (B, 2L)

    def forward(self, imu: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(imu, video))  # (B, K)


class LateFusion(nn.Module):
    """One encoder + head per modality; the two logits averaged."""

    def __init__(self, channels: int, dim: int, n_classes: int, s: UmaSettings):
        super().__init__()
        self.imu = nn.Sequential(imu_encoder(channels, s.latent, s.hidden, s.t_rec, False),
                                 har_head(s.latent, s.hidden, n_classes))
        self.video = nn.Sequential(video_encoder(dim, s.latent, s.hidden, s.t_rec, False),
                                   har_head(s.latent, s.hidden, n_classes))

    def features(self, imu: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.imu[0](imu), self.video[0](video)], dim=-1)  # (B, 2L)

    def forward(self, imu: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.imu(imu) + self.video(video))  # (B, K)


class FusionBaseline(Modules):
    """A fusion model adapted with video-only pseudo-labels and zeros for the missing modality."""

    def __init__(self, model: type[nn.Module]):
        self.model_type = model

    def fit(self, view: TrainView, s: UmaSettings, seed: int, device: torch.device,
            on_epoch: EpochHook = no_hook) -> None:
        gen = seeded(seed)
        (n_har, _frames, dim), (_, channels, samples) = view.har_video.shape, view.align_imu.shape
        self.device, self.imu_shape, self.video_shape = device, (channels, samples), view.har_video.shape[1:]
        self.model = self.model_type(channels, dim, view.n_classes, s).to(device)
        har_video, har_labels = as_tensor(view.har_video, device), as_tensor(view.har_labels, device)
        no_imu = torch.zeros(n_har, channels, samples, device=device)  # (N_har, C, T)
        opt = Optimiser([self.model], [self.model], s)
        run_epochs(opt, lambda i: classification_loss(self.model(no_imu[i], har_video[i]), har_labels[i]),
                   n_har, s.epochs, s.batch_size, gen, on_epoch, "video")
        pseudo = self.logits(None, view.align_video).argmax(axis=1)  # video-only pass, (N_align,)
        align_imu, align_video = as_tensor(view.align_imu, device), as_tensor(view.align_video, device)
        pseudo_labels = as_tensor(pseudo, device)
        run_epochs(opt, lambda i: classification_loss(self.model(align_imu[i], align_video[i]),
                                                      pseudo_labels[i]),
                   len(pseudo), s.epochs, s.batch_size, gen, on_epoch, "fusion")

    def _filled(self, imu: torch.Tensor | None, video: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        batch = (imu if imu is not None else video).shape[0]
        zeros = torch.zeros
        return (imu if imu is not None else zeros(batch, *self.imu_shape, device=self.device),
                video if video is not None else zeros(batch, *self.video_shape, device=self.device))

    def logits(self, imu: np.ndarray | None, video: np.ndarray | None) -> np.ndarray:
        return batched(lambda i, v: self.model(*self._filled(i, v)), imu, video, device=self.device)

    def latents(self, imu: np.ndarray | None, video: np.ndarray | None) -> np.ndarray:
        return batched(lambda i, v: self.model.features(*self._filled(i, v)), imu, video,
                       device=self.device)

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}


METHODS.register("early_fusion", doc="baseline: early fusion, video pseudo-labels, zero-filled IMU")(
    lambda: FusionBaseline(EarlyFusion))
METHODS.register("feature_fusion", doc="baseline: feature-level fusion, video pseudo-labels")(
    lambda: FusionBaseline(FeatureFusion))
METHODS.register("late_fusion", doc="baseline: late fusion, video pseudo-labels")(
    lambda: FusionBaseline(LateFusion))
