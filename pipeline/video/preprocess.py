"""Frame preprocessing in torch: resize the short side, centre-crop, normalise.

Two steps, split so that decode workers ship small uint8 tensors and the device does the
float work:

1. ``resize_crop`` (decode workers): (F, H, W, 3) uint8 -> (F, 3, S, S) uint8. Bilinear
   resize with antialiasing so the short side is ``resize_short`` (the long side keeps the
   aspect ratio, rounded), then the centred S x S crop (offsets floor((h - S) / 2),
   floor((w - S) / 2)), rounded back to uint8 like an image processor's resized image.
2. ``normalise`` (model device): uint8 -> float, / 255, minus mean, over std, per channel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

PREPROCESS_RULE = ("bilinear antialiased resize of the short side to resize_short (uint8-rounded), "
                   "centre crop image_size, x/255, (x - mean) / std per channel")


def resize_crop(frames_rgb: np.ndarray, resize_short: int, crop: int) -> torch.Tensor:
    """(F, H, W, 3) uint8 -> (F, 3, crop, crop) uint8."""
    n_frames, height, width, _ = frames_rgb.shape
    video = torch.from_numpy(np.ascontiguousarray(frames_rgb)).permute(0, 3, 1, 2)  # (F, 3, H, W)
    scale = resize_short / min(height, width)
    new_h, new_w = max(crop, round(height * scale)), max(crop, round(width * scale))
    if (new_h, new_w) != (height, width):
        resized = F.interpolate(video.float(), size=(new_h, new_w), mode="bilinear",
                                antialias=True, align_corners=False)
        video = resized.round_().clamp_(0, 255).to(torch.uint8)
    top, left = (new_h - crop) // 2, (new_w - crop) // 2
    return video[:, :, top : top + crop, left : left + crop].contiguous()  # (F, 3, S, S)


def normalise(frames_u8: torch.Tensor, mean: Sequence[float], std: Sequence[float],
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(..., 3, S, S) uint8 -> float ``(x / 255 - mean) / std`` on the tensor's device."""
    mean_t = torch.tensor(mean, dtype=dtype, device=frames_u8.device).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=dtype, device=frames_u8.device).view(3, 1, 1)
    frames = frames_u8.to(dtype)  # one allocation; the rest is in place
    return frames.div_(255.0).sub_(mean_t).div_(std_t)
