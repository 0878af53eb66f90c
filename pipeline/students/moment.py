"""MOMENT-1-small student served through transformers' T5 encoder.

momentfm pins an old transformers release, so the MOMENT pieces are rebuilt here: RevIN
(per-series mean/std over observed samples, no affine), patching (8 samples, stride 8), a
linear patch embedding with a learned mask embedding for unobserved patches, sinusoidal
positions, and the T5 encoder stack taken from ``T5EncoderModel``. Parameter names follow
``AutonLab/MOMENT-1-small`` (``patch_embedding.*``, ``encoder.block.*``), so its checkpoint
loads strictly; only its pre-training head, the unused token embedding and the fixed
positional table are skipped.

As the reference (Breezelled/COMODO's ``IMUStudentMLP`` over momentfm ``MOMENT.classify``):
a series shorter than ``seq_len`` (512) is left-padded with zeros and masked (the reference's
MMEA collate); a longer one goes in whole (``input_length: full``, 1000 samples -> 125
patches) or is resized linearly to ``seq_len`` (``input_length: resize``). An input mask
(B, T) (1 = observed) may come with the series: RevIN uses the observed samples only, a patch
is observed only if all its samples are, unobserved patches get the mask embedding and are
masked out as attention keys. The channel feature is the mean of the encoder outputs over
all patches (masked ones included); ``concat`` lays the channels out feature-major,
``pooled[b, k * C + c]`` for feature k of channel c, the layout of MOMENT's ``concat``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from comodo.pipeline.registry import STUDENTS
from comodo.pipeline.students.base import reduced_dim
from comodo.stores.errors import ConfigError, ModelLoadError

SKIPPED_KEYS = ("head.", "encoder.embed_tokens.", "patch_embedding.position_embedding.")
REVIN_EPS = 1e-5


class PatchEmbedding(nn.Module):
    """(N, P, L) patches + (N, P) observed-mask -> (N, P, d): value or mask embedding + pos."""

    def __init__(self, d_model: int, patch_len: int):
        super().__init__()
        self.value_embedding = nn.Linear(patch_len, d_model, bias=False)
        self.mask_embedding = nn.Parameter(torch.zeros(d_model))
        nn.init.orthogonal_(self.value_embedding.weight, gain=1.41)

    def forward(self, patches: torch.Tensor, patch_mask: torch.Tensor) -> torch.Tensor:
        _n, n_patches, _len = patches.shape  # (N, P, L)
        observed = patch_mask.unsqueeze(-1).to(patches.dtype)  # (N, P, 1)
        tokens = observed * self.value_embedding(patches) + (1 - observed) * self.mask_embedding
        return tokens + positions(n_patches, tokens.shape[-1], tokens.device)  # (N, P, d)


def positions(n_positions: int, dim: int, device: torch.device) -> torch.Tensor:
    """MOMENT's fixed sinusoidal table, first ``n_positions`` rows: (P, d)."""
    position = torch.arange(n_positions, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(
        torch.arange(0, dim, 2, device=device, dtype=torch.float32) * -(math.log(10000.0) / dim)
    )
    table = torch.zeros(n_positions, dim, device=device)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq)
    return table


def left_pad(series: torch.Tensor, mask: torch.Tensor, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Zeros before a series shorter than ``seq_len``, masked: (N, T) -> (N, max(T, seq_len))."""
    pad = max(0, seq_len - series.shape[1])
    return F.pad(series, (pad, 0)), F.pad(mask, (pad, 0), value=False)


def resize_length(series: torch.Tensor, mask: torch.Tensor,
                  seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad a short series; resize a long one (and its mask, nearest) to ``seq_len``."""
    if series.shape[1] <= seq_len:
        return left_pad(series, mask, seq_len)
    series = F.interpolate(series[:, None], size=seq_len, mode="linear", align_corners=False)[:, 0]
    mask = F.interpolate(mask[:, None].float(), size=seq_len, mode="nearest")[:, 0] > 0.5
    return series, mask


INPUT_LENGTHS = {"full": left_pad, "resize": resize_length}  # how a series meets seq_len


def revin(series: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Normalise each series by the mean/std (no Bessel) of its observed samples: (N, T)."""
    observed = mask.to(series.dtype)  # (N, T)
    count = observed.sum(dim=1, keepdim=True).clamp(min=1)  # (N, 1)
    mean = (series * observed).sum(dim=1, keepdim=True) / count
    var = (((series - mean) * observed) ** 2).sum(dim=1, keepdim=True) / count
    return ((series - mean) / (var.sqrt() + REVIN_EPS)) * observed


class MomentEncoder(nn.Module):
    """(N, T) -> (N, d_model): MOMENT embedding of one channel."""

    def __init__(self, seq_len: int, patch_len: int, t5_options: dict[str, object],
                 input_length: str = "full"):
        super().__init__()
        from transformers import T5Config, T5EncoderModel

        if input_length not in INPUT_LENGTHS:
            raise ConfigError(f"student 'moment': input_length {input_length!r} is unknown; "
                              f"valid: {', '.join(INPUT_LENGTHS)}")
        config = T5Config(vocab_size=2, **t5_options)  # token embedding unused: inputs_embeds
        self.fit_length = INPUT_LENGTHS[input_length]
        self.seq_len = seq_len
        self.patch_len = patch_len
        self.patch_embedding = PatchEmbedding(config.d_model, patch_len)
        self.encoder = T5EncoderModel(config).get_encoder()
        self.encoder.embed_tokens = None
        self.out_dim = int(config.d_model)

    def prepare(self, series: torch.Tensor, mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Series and bool mask (N, S) at the model's input length (see the module doc)."""
        if mask is None:
            mask = torch.ones_like(series, dtype=torch.bool)  # (N, T)
        return self.fit_length(series, mask.bool(), self.seq_len)

    def forward(self, series: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(N, T) series [+ (N, T) mask, 1 = observed] -> (N, d)."""
        n, _samples = series.shape  # (N, T)
        series, mask = self.prepare(series, mask)  # (N, S), (N, S)
        series = torch.nan_to_num(revin(series, mask), nan=0.0, posinf=0.0, neginf=0.0)
        n_patches = series.shape[-1] // self.patch_len  # a tail < L is dropped
        span = n_patches * self.patch_len  # patches by reshape, not unfold: exports to ONNX
        patches = series[:, :span].reshape(n, n_patches, self.patch_len)  # (N, P, L)
        patch_mask = mask[:, :span].reshape(n, n_patches, self.patch_len).all(dim=-1)  # (N, P)
        tokens = self.patch_embedding(patches, patch_mask)  # (N, P, d)
        hidden = self.encoder(inputs_embeds=tokens,
                              attention_mask=patch_mask.long()).last_hidden_state  # (N, P, d)
        return hidden.mean(dim=1)  # (N, d): every patch, masked ones included

    def load_moment_checkpoint(self, weights: str) -> None:
        """Load a MOMENT checkpoint strictly (skipping ``SKIPPED_KEYS`` prefixes)."""
        state = read_checkpoint(weights)
        state = {k: v for k, v in state.items() if not k.startswith(SKIPPED_KEYS)}
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        bad_shape = [k for k in own if k in state and state[k].shape != own[k].shape]
        if missing or unexpected or bad_shape:
            raise ModelLoadError(
                f"MOMENT checkpoint {weights} does not match the configured architecture: "
                f"missing {missing[:5]}, unexpected {unexpected[:5]}, wrong shape {bad_shape[:5]}; "
                f"set the student options (d_model, num_layers, num_heads, d_kv, d_ff) to the "
                f"checkpoint's T5 config"
            )
        self.load_state_dict(state)


def read_checkpoint(weights: str) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors/.bin file, a folder holding one, or a hub id."""
    path = Path(weights)
    if path.is_dir():
        for name in ("model.safetensors", "pytorch_model.bin"):
            if (path / name).is_file():
                path = path / name
                break
    if not path.exists():
        try:
            from huggingface_hub import hf_hub_download

            path = Path(hf_hub_download(weights, "model.safetensors"))
        except Exception as err:  # offline, unknown repo, ...
            raise ModelLoadError(
                f"MOMENT weights {weights!r} are neither a local file/folder nor a reachable hub "
                f"id ({err}); download AutonLab/MOMENT-1-small and pass its folder"
            ) from None
    if path.suffix == ".safetensors":
        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


REDUCE = {
    "concat": lambda h_channel: h_channel.transpose(1, 2).flatten(1),  # (B, C, d) -> (B, d * C)
    "mean": lambda h_channel: h_channel.mean(dim=1),  # (B, C, d) -> (B, d)
}


class MomentStudent(nn.Module):
    """(B, C, T) [+ input mask (B, T)] -> (B, d * C) feature-major, or (B, d) channel mean."""

    def __init__(self, encoder: MomentEncoder, n_channels: int, reduction: str):
        super().__init__()
        self.encoder = encoder
        self.reduction = reduction
        self.n_channels = n_channels
        self.out_dim = reduced_dim(encoder.out_dim, n_channels, reduction)

    def forward(self, imu: torch.Tensor, input_mask: torch.Tensor | None = None) -> torch.Tensor:
        batch, channels, samples = imu.shape  # (B, C, T)
        mask = None if input_mask is None else input_mask.repeat_interleave(channels, dim=0)  # (B * C, T)
        h_channel = self.encoder(imu.reshape(batch * channels, samples), mask)  # (B * C, d)
        return REDUCE[self.reduction](h_channel.reshape(batch, channels, -1))


@STUDENTS.register("moment")
def build_moment(
    n_channels: int,
    reduction: str | None = None,
    weights: str | None = None,
    seq_len: int = 512,
    patch_len: int = 8,
    d_model: int = 512,
    num_layers: int = 8,
    num_heads: int = 6,
    d_kv: int = 64,
    d_ff: int = 1024,
    feed_forward_proj: str = "gated-gelu",
    dropout_rate: float = 0.1,
    input_length: str = "full",
) -> nn.Module:
    """MOMENT-1-small (T5 encoder, patches of 8) per channel; ``weights``: its checkpoint;
    ``input_length``: ``full`` (the reference: long windows go in whole) or ``resize`` (to seq_len)."""
    t5_options = {"d_model": d_model, "num_layers": num_layers, "num_heads": num_heads,
                  "d_kv": d_kv, "d_ff": d_ff, "feed_forward_proj": feed_forward_proj,
                  "dropout_rate": dropout_rate}
    encoder = MomentEncoder(seq_len, patch_len, t5_options, input_length)
    if weights is not None:
        encoder.load_moment_checkpoint(weights)
    return MomentStudent(encoder, n_channels, reduction or "concat")
