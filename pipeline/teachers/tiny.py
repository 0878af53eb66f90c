"""Tiny random-weight TimeSformer and VideoMAE checkpoints, for tests and quick checks.

``save_tiny_timesformer(folder)`` / ``save_tiny_videomae(folder)`` write a ``save_pretrained``
folder (config + safetensors + a processor config with non-ImageNet mean/std) that the
``timesformer`` / ``videomae`` teachers load like any hub checkpoint. Biases are random (not
zero) so that a loader that drops them would be caught.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

TINY = {"image_size": 32, "patch_size": 16, "hidden_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 64, "num_labels": 3}
TINY_MEAN = [0.45, 0.45, 0.45]
TINY_STD = [0.225, 0.225, 0.225]


def _randomise_biases(model: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.copy_(torch.randn(param.shape, generator=gen) * 0.5)


def _save(model: torch.nn.Module, folder: Path, resize_short: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    crop = model.config.image_size
    processor = {"size": {"shortest_edge": resize_short}, "crop_size": {"height": crop, "width": crop},
                 "do_center_crop": True, "image_mean": TINY_MEAN, "image_std": TINY_STD}
    (folder / "preprocessor_config.json").write_text(json.dumps(processor, indent=2))
    return folder


def save_tiny_timesformer(folder: str | Path, num_frames: int = 4, seed: int = 0,
                          classifier: bool = True) -> Path:
    from transformers import TimesformerConfig, TimesformerForVideoClassification, TimesformerModel

    torch.manual_seed(seed)
    config = TimesformerConfig(num_frames=num_frames, **TINY)
    cls = TimesformerForVideoClassification if classifier else TimesformerModel
    model = cls(config).eval()
    _randomise_biases(model, seed)
    return _save(model, Path(folder), 36)


def save_tiny_videomae(folder: str | Path, num_frames: int = 4, seed: int = 0,
                       classifier: bool = True, use_mean_pooling: bool = True) -> Path:
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEModel

    torch.manual_seed(seed)
    config = VideoMAEConfig(num_frames=num_frames, tubelet_size=2, use_mean_pooling=use_mean_pooling,
                            **TINY)
    cls = VideoMAEForVideoClassification if classifier else VideoMAEModel
    model = cls(config).eval()
    _randomise_biases(model, seed)
    return _save(model, Path(folder), 36)
