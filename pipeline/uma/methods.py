"""The UMA methods, registered by name: ``st``, ``ca`` and ``c3t``.

Each method is fitted on a normalised ``TrainView`` (video + labels of D_HAR, video + IMU of
D_Align) and predicts from IMU only, video only or both (``None`` for a missing modality).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from comodo.pipeline.registry import Registry
from comodo.pipeline.uma.data import TrainView
from comodo.pipeline.uma.heads import SEQUENCE_HEADS, har_head
from comodo.pipeline.uma.losses import alignment_loss, classification_loss
from comodo.pipeline.uma.models import imu_encoder, video_encoder
from comodo.pipeline.uma.training import (
    ORDERS,
    AlignParts,
    EpochHook,
    Optimiser,
    UmaSettings,
    no_hook,
    run_epochs,
)

PREDICT_BATCH = 256


class UmaMethod(Protocol):
    def fit(self, view: TrainView, s: UmaSettings, seed: int, device: torch.device,
            on_epoch: EpochHook = no_hook) -> None: ...

    def logits(self, imu: np.ndarray | None, video: np.ndarray | None) -> np.ndarray: ...

    def latents(self, imu: np.ndarray | None, video: np.ndarray | None) -> np.ndarray: ...

    def state_dict(self) -> dict[str, torch.Tensor]: ...

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None: ...


METHODS: Registry[Callable[[], UmaMethod]] = Registry("uma method")


def build_method(name: str) -> UmaMethod:
    return METHODS.get(name)()


def as_tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(x), device=device)


@torch.no_grad()
def batched(fn: Callable[..., torch.Tensor], *arrays: np.ndarray | None,
            device: torch.device) -> np.ndarray:
    """Apply ``fn`` to row batches of ``arrays`` (``None`` passes through); concatenate outputs."""
    n = next(a.shape[0] for a in arrays if a is not None)
    outs = []
    for start in range(0, n, PREDICT_BATCH):
        part = [None if a is None else as_tensor(a[start : start + PREDICT_BATCH], device) for a in arrays]
        outs.append(fn(*part).float().cpu().numpy())
    return np.concatenate(outs)


class Modules(ABC):
    """Weights of a method's named modules as one flat state dict (``<module>.<key>``)."""

    @abstractmethod
    def modules(self) -> dict[str, nn.Module]:
        """The method's modules by name."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"{name}.{k}": v for name, m in self.modules().items() for k, v in m.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name, module in self.modules().items():
            prefix = f"{name}."
            module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})


def seeded(seed: int) -> torch.Generator:
    torch.manual_seed(seed)  # parameter initialisation
    return torch.Generator().manual_seed(seed)  # minibatch order


class StudentTeacher(Modules):
    """A video teacher trained on D_HAR pseudo-labels D_Align; the IMU student learns them."""

    def fit(self, view: TrainView, s: UmaSettings, seed: int, device: torch.device,
            on_epoch: EpochHook = no_hook) -> None:
        gen = seeded(seed)
        (_, _frames, dim), channels = view.har_video.shape, view.align_imu.shape[1]
        self.device = device
        self.video = nn.Sequential(video_encoder(dim, s.latent, s.hidden, s.t_rec, False),
                                   har_head(s.latent, s.hidden, view.n_classes)).to(device)
        self.imu = nn.Sequential(imu_encoder(channels, s.latent, s.hidden, s.t_rec, False),
                                 har_head(s.latent, s.hidden, view.n_classes)).to(device)
        har_video, har_labels = as_tensor(view.har_video, device), as_tensor(view.har_labels, device)
        run_epochs(Optimiser([self.video], [self.video], s),
                   lambda i: classification_loss(self.video(har_video[i]), har_labels[i]),
                   len(har_labels), s.epochs, s.batch_size, gen, on_epoch, "teacher")
        pseudo = batched(self.video, view.align_video, device=device).argmax(axis=1)  # (N_align,)
        align_imu, pseudo_labels = as_tensor(view.align_imu, device), as_tensor(pseudo, device)
        run_epochs(Optimiser([self.imu], [self.imu], s),
                   lambda i: classification_loss(self.imu(align_imu[i]), pseudo_labels[i]),
                   len(pseudo), s.epochs, s.batch_size, gen, on_epoch, "student")

    def _predict(self, imu: torch.Tensor | None, video: torch.Tensor | None) -> torch.Tensor:
        probs = [m(x).softmax(-1) for m, x in ((self.imu, imu), (self.video, video)) if x is not None]
        return torch.stack(probs).mean(0).log()  # late fusion of probabilities

    def logits(self, imu: np.ndarray | None, video: np.ndarray | None) -> np.ndarray:
        return batched(self._predict, imu, video, device=self.device)

    def latents(self, imu: np.ndarray | None, video: np.ndarray | None) -> np.ndarray:
        model, x = (self.imu, imu) if imu is not None else (self.video, video)
        return batched(model[0], x, device=self.device)

    def modules(self) -> dict[str, nn.Module]:
        return {"video": self.video, "imu": self.imu}


class AlignedMethod(Modules):
    """Video and IMU encoders aligned contrastively on D_Align; one HAR head on their latents."""

    def __init__(self, sequence: bool, default_order: str):
        self.sequence = sequence
        self.default_order = default_order

    def _build(self, view: TrainView, s: UmaSettings, device: torch.device) -> None:
        (_, _frames, dim), channels, k = view.har_video.shape, view.align_imu.shape[1], view.n_classes
        self.video = video_encoder(dim, s.latent, s.hidden, s.t_rec, self.sequence).to(device)
        self.imu = imu_encoder(channels, s.latent, s.hidden, s.t_rec, self.sequence).to(device)
        head = (SEQUENCE_HEADS.get(s.head)(s.latent, s.hidden, s.t_rec, k) if self.sequence
                else har_head(s.latent, s.hidden, k))
        self.head = head.to(device)
        self.device = device

    def _embed(self, encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Latents on the unit sphere, where the contrastive loss aligns them."""
        return F.normalize(encoder(x), dim=-1)  # (B, L) or (B, t_rec, L)

    def fit(self, view: TrainView, s: UmaSettings, seed: int, device: torch.device,
            on_epoch: EpochHook = no_hook) -> None:
        order = ORDERS.get(s.order or self.default_order)
        gen = seeded(seed)
        self._build(view, s, device)
        har_video, har_labels = as_tensor(view.har_video, device), as_tensor(view.har_labels, device)
        align_video, align_imu = as_tensor(view.align_video, device), as_tensor(view.align_imu, device)
        parts = AlignParts(
            self.video, self.imu, self.head,
            har_loss=lambda i: classification_loss(self.head(self._embed(self.video, har_video[i])),
                                                  har_labels[i]),
            align_loss=lambda i: alignment_loss(self.video(align_video[i]), self.imu(align_imu[i]),
                                                s.temperature),
            n_har=len(har_labels), n_align=len(align_imu),
        )
        order(parts, s, gen, on_epoch)

    def _latent(self, imu: torch.Tensor | None, video: torch.Tensor | None) -> torch.Tensor:
        z = [self._embed(enc, x) for enc, x in ((self.imu, imu), (self.video, video)) if x is not None]
        return torch.stack(z).mean(0)  # (B, L) or (B, t_rec, L): mean of the present modalities

    def logits(self, imu: np.ndarray | None, video: np.ndarray | None) -> np.ndarray:
        return batched(lambda i, v: self.head(self._latent(i, v)), imu, video, device=self.device)

    def latents(self, imu: np.ndarray | None, video: np.ndarray | None) -> np.ndarray:
        z = batched(self._latent, imu, video, device=self.device)
        return z.reshape(z.shape[0], -1)

    def modules(self) -> dict[str, nn.Module]:
        return {"video": self.video, "imu": self.imu, "head": self.head}


METHODS.register("st", doc="student-teacher: video teacher pseudo-labels D_Align for the IMU")(
    StudentTeacher)
METHODS.register("ca", doc="contrastive alignment of one latent vector per modality (order: combined)")(
    lambda: AlignedMethod(sequence=False, default_order="combined"))
METHODS.register("c3t", doc="position-wise contrastive alignment of t_rec latents (order: align_first)")(
    lambda: AlignedMethod(sequence=True, default_order="align_first"))


class SupervisedImu(Modules):
    """Reference row, not a UMA method: an IMU encoder + head trained on labelled IMU."""

    def fit(self, imu: np.ndarray, labels: np.ndarray, n_classes: int, s: UmaSettings, seed: int,
            device: torch.device, on_epoch: EpochHook = no_hook) -> None:
        gen = seeded(seed)
        self.device = device
        self.model = nn.Sequential(imu_encoder(imu.shape[1], s.latent, s.hidden, s.t_rec, False),
                                   har_head(s.latent, s.hidden, n_classes)).to(device)
        x, y = as_tensor(imu, device), as_tensor(labels, device)
        run_epochs(Optimiser([self.model], [self.model], s),
                   lambda i: classification_loss(self.model(x[i]), y[i]), len(y), s.epochs, s.batch_size, gen,
                   on_epoch, "supervised")

    def logits(self, imu: np.ndarray | None, video: np.ndarray | None) -> np.ndarray:
        return batched(self.model, imu, device=self.device)

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}
