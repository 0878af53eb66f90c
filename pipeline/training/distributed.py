"""Data-parallel training under ``torchrun`` (DDP), or a single process without it.

``torchrun --nproc_per_node N --no-python comodo distill ...`` sets RANK / WORLD_SIZE /
LOCAL_RANK; ``DistEnv.from_environment`` then joins the process group (nccl on CUDA, gloo on
CPU). Each global batch is split into one contiguous slice per rank, so N processes see the
same global batches as one process would:

- teacher embeddings of the whole global batch are all-gathered, so every rank computes the
  loss against the same anchors and enqueues the same embeddings (identical queues);
- BatchNorm statistics are computed over the global batch (``GlobalBatchNorm``, built on a
  differentiable all-reduce, works with gloo on CPU as well as nccl);
- each rank scales its local mean loss by ``local_n * world / global_n`` so DDP's gradient
  average equals the gradient of the global mean, also for an uneven last batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class DistEnv:
    """This process's place in the job: rank, world size and local rank."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environment(cls, device: torch.device) -> DistEnv:
        """Join the torchrun process group when WORLD_SIZE > 1; else a single process."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))

    def rank_slice(self, n_rows: int) -> slice:
        """The contiguous share of a global batch of ``n_rows`` that this rank trains on."""
        start = n_rows * self.rank // self.world_size
        stop = n_rows * (self.rank + 1) // self.world_size
        return slice(start, stop)

    def all_gather(self, tensor: torch.Tensor, n_rows: int) -> torch.Tensor:
        """Concatenate every rank's rows (rank order) of a global batch of ``n_rows``: (N, ...)."""
        if not self.enabled:
            return tensor
        sizes = [
            n_rows * (r + 1) // self.world_size - n_rows * r // self.world_size
            for r in range(self.world_size)
        ]
        biggest = max(sizes)
        padded = F.pad(tensor, (0, 0, 0, biggest - tensor.shape[0]))  # (max_n, D)
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded.contiguous())
        return torch.cat([p[:n] for p, n in zip(parts, sizes, strict=True)], dim=0)

    def mean(self, value: float) -> float:
        """Average a Python number over ranks."""
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        if dist.get_backend() == "nccl":
            t = t.cuda(torch.cuda.current_device())
        dist.all_reduce(t)
        return float(t.item()) / self.world_size

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


class AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose gradient is the sum of every rank's gradient."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d whose training statistics span every rank's rows (any backend)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            return super().forward(x)
        dtype = x.dtype
        x = x.float()  # statistics in float32 also under bf16 autocast
        dims = [0] if x.dim() == 2 else [0, 2]  # (N, F) or (N, F, L)
        count = torch.tensor([x.numel() / x.shape[1]], device=x.device, dtype=x.dtype)
        stats = torch.cat([x.sum(dim=dims), (x * x).sum(dim=dims), count])  # (2F + 1,)
        stats = AllReduceSum.apply(stats)
        n_features = x.shape[1]
        total = stats[-1]
        mean = stats[:n_features] / total
        var = stats[n_features : 2 * n_features] / total - mean * mean  # biased, as BN uses
        shape = (1, n_features) if x.dim() == 2 else (1, n_features, 1)
        out = (x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + self.eps)
        if self.affine:
            out = out * self.weight.reshape(shape) + self.bias.reshape(shape)
        if self.track_running_stats:
            with torch.no_grad():
                unbiased = var * total / (total - 1).clamp(min=1)
                self.num_batches_tracked.add_(1)
                factor = self.momentum or 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), factor)
                self.running_var.lerp_(unbiased.detach(), factor)
        return out.to(dtype)


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm1d in ``module`` by a GlobalBatchNorm with the same state."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm1d) and not isinstance(child, GlobalBatchNorm):
            new = GlobalBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                  child.track_running_stats)
            new.load_state_dict(child.state_dict())
            setattr(module, name, new)
        else:
            convert_batchnorm(child)
    return module
