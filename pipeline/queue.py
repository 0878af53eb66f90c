"""A FIFO queue of teacher embeddings kept as registered buffers (MoCo style).

The queue lives in the module's ``state_dict``: a checkpoint restores its contents, its write
pointer and which slots hold an embedding, so a resumed run continues with the very same
anchors. Any batch size is accepted; writes wrap around the end of the buffer, and a batch
larger than the queue keeps only its last ``size`` rows.

Two ways to start (``init`` in the distill config):
- ``train_sample``: the trainer fills the whole queue with teacher embeddings of ``size``
  random training windows before the first step (those windows sit out the first epoch);
- ``empty``: every slot starts invalid; ``valid`` marks the slots written so far and
  ``features()`` returns only those.
"""

from __future__ import annotations

import torch
from torch import nn

from comodo.stores.errors import ConfigError

QUEUE_INITS = ("train_sample", "empty")


class EmbeddingQueue(nn.Module):
    """FIFO of L2-normalised teacher embeddings with a valid-mask."""

    bank: torch.Tensor
    valid: torch.Tensor
    ptr: torch.Tensor

    def __init__(self, size: int, dim: int):
        super().__init__()
        if size < 0 or dim < 1:
            raise ConfigError(f"queue needs size >= 0 and dim >= 1, got size={size}, dim={dim}")
        self.size = size
        self.dim = dim
        self.register_buffer("bank", torch.zeros(size, dim))  # (K, D)
        self.register_buffer("valid", torch.zeros(size, dtype=torch.bool))  # (K,)
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))  # next slot to write

    def __len__(self) -> int:
        return int(self.valid.sum())

    @property
    def is_full(self) -> bool:
        return bool(self.valid.all())

    def features(self) -> torch.Tensor:
        """The valid entries, oldest slot first in memory order: (K_valid, D)."""
        if self.is_full:
            return self.bank
        return self.bank[self.valid]

    @torch.no_grad()
    def enqueue(self, z_teacher: torch.Tensor) -> None:
        """Write a batch (B, D) at the pointer, wrapping around; the oldest entries go first."""
        batch, dim = z_teacher.shape
        if dim != self.dim:
            raise ValueError(f"queue holds {self.dim}-d embeddings, got a batch of {dim}-d")
        if self.size == 0 or batch == 0:
            return
        z_teacher = z_teacher.detach()[-self.size :].to(self.bank.dtype)  # (min(B, K), D)
        batch = z_teacher.shape[0]
        slots = (self.ptr + torch.arange(batch, device=self.bank.device)) % self.size  # (B,)
        self.bank[slots] = z_teacher
        self.valid[slots] = True
        self.ptr.copy_((self.ptr + batch) % self.size)

    @torch.no_grad()
    def fill(self, z_teacher: torch.Tensor) -> None:
        """Replace the whole queue with exactly ``size`` embeddings (K, D); pointer back to 0."""
        if z_teacher.shape != (self.size, self.dim):
            raise ValueError(
                f"fill needs a ({self.size}, {self.dim}) tensor, got {tuple(z_teacher.shape)}"
            )
        self.bank.copy_(z_teacher.detach())
        self.valid.fill_(True)
        self.ptr.zero_()

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}"
