"""MOMENT-1-small student served through transformers' T5 encoder.

momentfm pins an old transformers release, so the MOMENT pieces are rebuilt here: RevIN
(per-series mean/std over observed samples, no affine), patching (8 samples, stride 8), a
linear patch embedding with a learned mask embedding for unobserved patches, sinusoidal
positions, and the T5 encoder stack taken from ``T5EncoderModel``. Parameter names follow
``AutonLab/MOMENT-1-small`` (``patch_embedding.*``, ``encoder.block.*``), so its checkpoint
loads strictly; only its pre-training head, the unused token embedding and the fixed
positional table are skipped.

Every series is brought to ``seq_len`` (512) samples: shorter ones are left-padded with
zeros and masked (attention and RevIN ignore them), longer ones are resized linearly. The
channel feature is the mean of the encoder outputs over observed patches.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from comodo.pipeline.registry import STUDENTS
from comodo.pipeline.students.base import PerChannel
from comodo.stores.errors import ModelLoadError

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


def revin(series: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Normalise each series by the mean/std (no Bessel) of its observed samples: (N, T)."""
    observed = mask.to(series.dtype)  # (N, T)
    count = observed.sum(dim=1, keepdim=True).clamp(min=1)  # (N, 1)
    mean = (series * observed).sum(dim=1, keepdim=True) / count
    var = (((series - mean) * observed) ** 2).sum(dim=1, keepdim=True) / count
    return ((series - mean) / (var.sqrt() + REVIN_EPS)) * observed


class MomentEncoder(nn.Module):
    """(N, T) -> (N, d_model): MOMENT embedding of one channel."""

    def __init__(self, seq_len: int, patch_len: int, t5_options: dict[str, object]):
        super().__init__()
        from transformers import T5Config, T5EncoderModel

        config = T5Config(vocab_size=2, **t5_options)  # token embedding unused: inputs_embeds
        self.seq_len = seq_len
        self.patch_len = patch_len
        self.patch_embedding = PatchEmbedding(config.d_model, patch_len)
        self.encoder = T5EncoderModel(config).get_encoder()
        self.encoder.embed_tokens = None
        self.out_dim = int(config.d_model)

    def prepare(self, series: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-pad (and mask) or resize to ``seq_len``: series (N, S), mask (N, S)."""
        n, samples = series.shape  # (N, T)
        if samples > self.seq_len:
            series = F.interpolate(series[:, None], size=self.seq_len, mode="linear",
                                   align_corners=False)[:, 0]
            return series, torch.ones_like(series, dtype=torch.bool)
        pad = self.seq_len - samples
        mask = torch.ones(n, self.seq_len, dtype=torch.bool, device=series.device)
        mask[:, :pad] = False
        return F.pad(series, (pad, 0)), mask

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        n, _samples = series.shape  # (N, T)
        series, mask = self.prepare(series)  # (N, S), (N, S)
        series = revin(series, mask)
        patches = series.unfold(-1, self.patch_len, self.patch_len)  # (N, P, L)
        patch_mask = mask.unfold(-1, self.patch_len, self.patch_len).all(dim=-1)  # (N, P)
        tokens = self.patch_embedding(patches, patch_mask)  # (N, P, d)
        hidden = self.encoder(inputs_embeds=tokens,
                              attention_mask=patch_mask.long()).last_hidden_state  # (N, P, d)
        weight = patch_mask.unsqueeze(-1).to(hidden.dtype)  # (N, P, 1)
        return (hidden * weight).sum(dim=1) / weight.sum(dim=1).clamp(min=1)  # (N, d)

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
) -> nn.Module:
    """MOMENT-1-small (T5 encoder, patches of 8) per channel; ``weights``: its checkpoint."""
    t5_options = {"d_model": d_model, "num_layers": num_layers, "num_heads": num_heads,
                  "d_kv": d_kv, "d_ff": d_ff, "feed_forward_proj": feed_forward_proj,
                  "dropout_rate": dropout_rate}
    encoder = MomentEncoder(seq_len, patch_len, t5_options)
    if weights is not None:
        encoder.load_moment_checkpoint(weights)
    return PerChannel(encoder, encoder.out_dim, n_channels, reduction or "concat")
