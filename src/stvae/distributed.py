"""Data-parallel training across processes (``torchrun``): gloo on CPU, NCCL on GPU.

Each of W ranks trains on its own 1/W of every global batch, so a run with W ranks does
the arithmetic of a single process with the same global batch:

* the data of step s is made video by video from (seed, s, k) for video k of the global
  batch, and rank r makes only its videos k in [r B/W, (r+1) B/W);
* batch norm uses the statistics of the whole global batch (:class:`SyncBatchNorm`, which
  unlike ``torch.nn.SyncBatchNorm`` also runs on CPU with gloo);
* the sampling noise is drawn for the global batch on every rank (same seed) and sliced;
* DDP averages gradients, and every rank's loss is the mean over its own frames, so the
  update is the one of the mean over all frames.

Only rank 0 writes the run directory; every rank loads the same checkpoint on resume.
A rank that dies ends the others: a collective on a closed connection fails at once,
one that waits on a stuck rank fails after ``TIMEOUT``, and :func:`lost_peer` lets the
training loop turn either into one line (:class:`StvaeError`) naming the rank.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = [
    "Dist",
    "setup",
    "SyncBatchNorm",
    "convert_sync_batchnorm",
    "mean_over_ranks",
    "min_over_ranks",
    "lost_peer",
    "TIMEOUT",
]

# Longer than any legitimate wait between two collectives (compiling the first step,
# rank 0 writing a checkpoint), far shorter than the 30 minutes gloo waits by default.
TIMEOUT = timedelta(minutes=10)


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, total: int) -> range:
        """This rank's indices of ``total`` items (``total`` divisible by the world size)."""
        per = total // self.world
        return range(self.rank * per, (self.rank + 1) * per)


def setup(device: torch.device) -> Dist:
    """Joins the process group that ``torchrun`` describes in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if device.type == "cuda":  # before the group: NCCL binds each rank to its device
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        # a lost peer fails the collective (one line, lost_peer) instead of hanging it
        os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=TIMEOUT)
    return Dist(dist.get_rank(), dist.get_world_size())


def mean_over_ranks(values: dict[str, Tensor], ranks: Dist) -> dict[str, Tensor]:
    """The mean of each scalar over all ranks (for logging the global batch's loss terms)."""
    if ranks.world == 1:
        return values
    keys = sorted(values)
    stacked = torch.stack([values[k].detach().float() for k in keys])
    dist.all_reduce(stacked)
    return {k: v / ranks.world for k, v in zip(keys, stacked, strict=True)}


def lost_peer(e: BaseException, ranks: Dist) -> str | None:
    """The first line of a collective's error when another rank is gone (closed
    connection, timeout), else None."""
    if ranks.world == 1 or not isinstance(e, RuntimeError):
        return None
    text = str(e)
    signs = ("Connection reset", "Connection closed", "timed out", "Timeout", "gloo", "NCCL")
    if isinstance(e, dist.DistError) or any(s in text for s in signs):
        return text.strip().splitlines()[0] if text.strip() else type(e).__name__
    return None


def min_over_ranks(value: int, ranks: Dist, device: torch.device) -> int:
    """The least of every rank's ``value`` (so that all ranks agree on a count)."""
    if ranks.world == 1:
        return value
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return int(t.item())


class _SyncBN(torch.autograd.Function):
    """Batch norm over the union of every rank's batch: sums are all-reduced forward and
    backward, so values and gradients equal those of one process holding all the data."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        dtype, x = x.dtype, x.float()  # statistics in float32 whatever autocast chose
        dims = [0] + list(range(2, x.dim()))  # all but channels
        c = x.shape[1]
        count = x.new_full((1,), x.numel() / c)  # no host-to-device copy (a sync on CUDA)
        packed = torch.cat([x.sum(dims), count])
        dist.all_reduce(packed)
        n = packed[-1]
        mean = packed[:c] / n
        shape = [1, c] + [1] * (x.dim() - 2)
        centred = x - mean.view(shape)
        sq = centred.square().sum(dims)  # two passes, as local batch norm: no cancellation
        dist.all_reduce(sq)
        var = sq / n
        invstd = torch.rsqrt(var + eps)
        xhat = centred * invstd.view(shape)
        ctx.save_for_backward(xhat, weight, invstd, n)
        ctx.dims, ctx.shape = dims, shape
        y = (xhat * weight.view(shape) + bias.view(shape)).to(dtype)
        return y, mean, var * n / (n - 1).clamp_min(1)

    @staticmethod
    def backward(ctx, grad_y, _grad_mean, _grad_var):
        xhat, weight, invstd, n = ctx.saved_tensors
        dtype, grad_y = grad_y.dtype, grad_y.float()
        dims, shape = ctx.dims, ctx.shape
        grad_bias = grad_y.sum(dims)
        grad_weight = (grad_y * xhat).sum(dims)
        sums = torch.cat([grad_bias, grad_weight])
        dist.all_reduce(sums)  # the gradient of every rank's loss flows through the stats
        c = grad_bias.numel()
        mean_dy, mean_dy_xhat = sums[:c] / n, sums[c:] / n
        grad_x = (weight * invstd).view(shape) * (
            grad_y - mean_dy.view(shape) - xhat * mean_dy_xhat.view(shape)
        )
        return grad_x.to(dtype), grad_weight, grad_bias, None


class SyncBatchNorm(nn.Module):
    """Drop-in for BatchNorm1d/2d in training under a process group (any device)."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm):
        super().__init__()
        self.eps, self.momentum = bn.eps, bn.momentum
        self.weight, self.bias = bn.weight, bn.bias
        self.register_buffer("running_mean", bn.running_mean)
        self.register_buffer("running_var", bn.running_var)
        self.register_buffer("num_batches_tracked", bn.num_batches_tracked)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return nn.functional.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        y, mean, var = _SyncBN.apply(x, self.weight, self.bias, self.eps)
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            self.running_mean.lerp_(mean.to(self.running_mean.dtype), self.momentum)
            self.running_var.lerp_(var.to(self.running_var.dtype), self.momentum)
        return y


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replaces every BatchNorm1d/2d in ``module`` (in place) by :class:`SyncBatchNorm`;
    parameter and buffer names stay the same, so checkpoints are interchangeable."""
    for name, child in module.named_children():
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
            setattr(module, name, SyncBatchNorm(child))
        else:
            convert_sync_batchnorm(child)
    return module
