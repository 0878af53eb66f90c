"""HAR heads: an FFN over one latent, and the four C3T heads over t_rec latent vectors."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from comodo.pipeline.registry import Registry
from comodo.pipeline.uma.models import ffn

HeadFactory = Callable[[int, int, int, int], nn.Module]  # (latent, hidden, t_rec, n_classes)
SEQUENCE_HEADS: Registry[HeadFactory] = Registry("c3t head")


def har_head(latent: int, hidden: int, n_classes: int) -> nn.Module:
    """(B, L) -> (B, K)."""
    return ffn(latent, hidden, n_classes)


def _attention(latent: int) -> nn.TransformerEncoderLayer:
    heads = 4 if latent % 4 == 0 else 1
    return nn.TransformerEncoderLayer(latent, heads, dim_feedforward=2 * latent, dropout=0.0,
                                      batch_first=True)


class ClassTokenAttention(nn.Module):
    """Self-attention over [cls; t_rec vectors]; the class token's output is classified."""

    def __init__(self, latent: int, hidden: int, t_rec: int, n_classes: int):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, latent))
        self.position = nn.Parameter(torch.zeros(1, t_rec + 1, latent))
        self.attention = _attention(latent)
        self.out = ffn(latent, hidden, n_classes)

    def forward(self, z_seq: torch.Tensor) -> torch.Tensor:
        batch, _positions, _latent = z_seq.shape  # (B, t_rec, L)
        tokens = torch.cat([self.cls_token.expand(batch, -1, -1), z_seq], dim=1) + self.position
        return self.out(self.attention(tokens)[:, 0])  # (B, K)


class ConcatAttention(nn.Module):
    """Self-attention over the t_rec vectors; all outputs concatenated and classified."""

    def __init__(self, latent: int, hidden: int, t_rec: int, n_classes: int):
        super().__init__()
        self.position = nn.Parameter(torch.zeros(1, t_rec, latent))
        self.attention = _attention(latent)
        self.out = ffn(latent * t_rec, hidden, n_classes)

    def forward(self, z_seq: torch.Tensor) -> torch.Tensor:
        batch, _positions, _latent = z_seq.shape  # (B, t_rec, L)
        return self.out(self.attention(z_seq + self.position).reshape(batch, -1))  # (B, K)


class SumMlp(nn.Module):
    """An MLP over the sum of the t_rec vectors."""

    def __init__(self, latent: int, hidden: int, t_rec: int, n_classes: int):
        super().__init__()
        self.out = ffn(latent, hidden, n_classes)

    def forward(self, z_seq: torch.Tensor) -> torch.Tensor:
        _batch, _positions, _latent = z_seq.shape  # (B, t_rec, L)
        return self.out(z_seq.sum(dim=1))  # (B, K)


class ConcatMlp(nn.Module):
    """An MLP over the concatenated t_rec vectors."""

    def __init__(self, latent: int, hidden: int, t_rec: int, n_classes: int):
        super().__init__()
        self.out = ffn(latent * t_rec, hidden, n_classes)

    def forward(self, z_seq: torch.Tensor) -> torch.Tensor:
        batch, _positions, _latent = z_seq.shape  # (B, t_rec, L)
        return self.out(z_seq.reshape(batch, -1))  # (B, K)


SEQUENCE_HEADS.register("cls_attention", doc="class-token self-attention")(ClassTokenAttention)
SEQUENCE_HEADS.register("concat_attention", doc="self-attention outputs concatenated")(ConcatAttention)
SEQUENCE_HEADS.register("mlp_sum", doc="MLP over the summed latent vectors")(SumMlp)
SEQUENCE_HEADS.register("mlp_concat", doc="MLP over the concatenated latent vectors")(ConcatMlp)
