"""``hf_auto``: any transformers checkpoint (hub id or local folder) as a teacher.

The checkpoint is loaded strictly into its declared architecture. Declared by params:

- ``frames``: frames per window (default: the config's ``num_frames``, else 8).
- ``input_kind``: ``video`` feeds (B, F, 3, H, W) at once; ``image`` feeds the B*F frames one by
  one, as (B*F, 3, H, W), and averages over frames. ``auto``: ``video`` when the config has
  ``num_frames``.
- ``pooling``: ``mean`` (all output tokens, or the spatial mean of a feature map) or ``cls``
  (the first token).
- ``token_order`` / ``prefix_tokens`` (video input): the token layout used to average tokens
  per temporal position; ``prefix_tokens`` defaults to N mod (F / tubelet).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from comodo.pipeline.registry import TEACHERS
from comodo.pipeline.teachers.base import Preprocessing, Teacher, TeacherInfo, check_pooling
from comodo.pipeline.teachers.hf_video import TokenLayout, load_net
from comodo.pipeline.teachers.hub import preprocessing_of, resolve_checkpoint, weights_hash
from comodo.stores.errors import ConfigError


def _tokens(output: object) -> torch.Tensor:
    """(B, N, D) tokens from a model output; a (B, C, h, w) feature map becomes (B, h*w, C)."""
    hidden = output.last_hidden_state  # type: ignore[attr-defined]
    if hidden.ndim == 4:
        return hidden.flatten(2).transpose(1, 2)
    return hidden


class AutoTeacher(Teacher):
    """Any backbone with a declared input kind, pooling and token layout."""

    def __init__(self, net: nn.Module, info: TeacherInfo, video_input: bool, layout: TokenLayout):
        super().__init__()
        self.net = net
        self.backbone = getattr(net, net.base_model_prefix, net)
        self.video_input = video_input
        self.layout = layout
        self.info = info

    def _pool(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens[:, 0] if self.pooling == "cls" else tokens.mean(1)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, n_frames, channels, height, width = frames.shape
        if self.video_input:
            tokens = _tokens(self.backbone(pixel_values=frames))  # (B, N, D)
            per_frame = self._layout(tokens, n_frames).per_frame(tokens, n_frames)  # (B, F', D)
            return self._pool(tokens), per_frame
        images = frames.reshape(batch * n_frames, channels, height, width)
        tokens = _tokens(self.backbone(pixel_values=images))  # (B*F, N, D)
        per_frame = self._pool(tokens).reshape(batch, n_frames, -1)  # (B, F, D)
        return per_frame.mean(1), per_frame

    def _layout(self, tokens: torch.Tensor, n_frames: int) -> TokenLayout:
        if self.layout.prefix >= 0:
            return self.layout
        n_time = n_frames // self.layout.tubelet
        return TokenLayout(tokens.shape[1] % n_time, self.layout.order, self.layout.tubelet)


def _image_size(config: object, pre: dict) -> int:
    size = getattr(config, "image_size", None)
    if isinstance(size, (list, tuple)):
        size = min(size)
    if isinstance(size, int):
        return size
    crop = pre.get("crop_size") or pre.get("size") or {}
    if isinstance(crop, dict):
        return int(crop.get("height") or crop.get("shortest_edge") or 224)
    return int(crop) if isinstance(crop, int) else 224


def _dim(net: nn.Module, pre: Preprocessing, video_input: bool, n_frames: int) -> int:
    config = net.config
    for name in ("hidden_size", "embed_dim"):
        if isinstance(getattr(config, name, None), int):
            return int(getattr(config, name))
    sizes = getattr(config, "hidden_sizes", None)
    if sizes:
        return int(sizes[-1])
    shape = (1, n_frames, 3) if video_input else (1, 3)
    with torch.no_grad():
        probe = torch.zeros(*shape, pre.image_size, pre.image_size)
        backbone = getattr(net, net.base_model_prefix, net)
        return int(_tokens(backbone(pixel_values=probe)).shape[-1])


@TEACHERS.register("hf_auto", doc="any transformers AutoModel id or folder; declared frames and pooling")
def hf_auto(model: str | None = None, frames: int | None = None, pooling: str | None = None,
            revision: str | None = None, input_kind: Literal["auto", "video", "image"] = "auto",
            token_order: Literal["time_major", "space_major"] = "time_major",
            prefix_tokens: int | None = None) -> Teacher:
    if not model:
        raise ConfigError("teacher 'hf_auto' needs 'model': a hub id or a local checkpoint folder")
    ckpt = resolve_checkpoint(model, revision)
    pooling = check_pooling("hf_auto", pooling or "mean", ("mean", "cls"))
    net = load_net(ckpt, None, "hf_auto")
    config = net.config
    video_input = input_kind == "video" or (input_kind == "auto" and hasattr(config, "num_frames"))
    n_frames = int(frames or getattr(config, "num_frames", None) or 8)
    tubelet = int(getattr(config, "tubelet_size", 1) or 1) if video_input else 1
    if video_input and n_frames % tubelet:
        raise ConfigError(f"hf_auto {model}: frames={n_frames} is not a multiple of tubelet_size={tubelet}")
    pre = preprocessing_of(ckpt, _image_size(config, ckpt.preprocessor))
    layout = TokenLayout(-1 if prefix_tokens is None else prefix_tokens, token_order, tubelet)
    info = TeacherInfo(
        name="hf_auto", model_id=ckpt.model_id, revision=ckpt.revision,
        weights_hash=weights_hash(ckpt.weight_files), num_frames=n_frames,
        frames_out=n_frames // tubelet, dim=_dim(net, pre, video_input, n_frames), pooling=pooling,
        preprocessing=pre,
    )
    return AutoTeacher(net, info, video_input, layout)
