"""Exponential moving average of the generator's weights (used for sampling and evaluation).

Averaging G's weights over the last ~1/(1 - decay) steps smooths the oscillation of adversarial
training; on small data it is the cheapest large FID gain there is (Yazıcı et al. 2019). The
decay warms up as ``min(decay, (1 + step) / (10 + step))`` so early, random weights are forgotten
quickly. Buffers (BatchNorm running statistics) are copied, not averaged. The average lives in an
ordinary module (``G_ema`` in checkpoints), so saving and loading it needs nothing special.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_decay_at(decay: float, step: int) -> float:
    """The effective decay at optimisation step ``step`` (0-based), with warm-up."""
    return min(decay, (1.0 + step) / (10.0 + step))


class EMA:
    """Keeps ``self.module``, a frozen copy of ``model`` whose weights follow the average."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = float(decay)
        self.module = copy.deepcopy(model)
        self.module.requires_grad_(False)
        self.module.eval()  # its BatchNorm layers use the running statistics copied from the model
        self._dst = [p for p in self.module.parameters()]
        self._dst_buf = [b for b in self.module.buffers()]

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move the average towards ``model``'s current weights (call after each G step)."""
        d = ema_decay_at(self.decay, step)
        src = [p.detach() for p in model.parameters()]
        # one fused kernel over all tensors: avg += (1 - d) * (w - avg)
        torch._foreach_lerp_(self._dst, src, 1.0 - d)
        for dst, buf in zip(self._dst_buf, model.buffers()):
            dst.copy_(buf)
