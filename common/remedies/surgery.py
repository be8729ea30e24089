"""Unit-level edits shared by the thermal kick and ReDo: which units, noise, optimizer moments.

Masks come either straight from the caller (``{layer name: bool tensor [units]}``) or from a
:class:`~common.probes.Probes` object's last read window (dead units, or ReDo scores <= tau).
Noise is drawn on the CPU from an explicit generator and then moved, so the same seed gives the
same edit on any device.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import nn

from common.probes import Probes

MaskSource = Union[Probes, dict[str, torch.Tensor]]


def resolve_masks(model: nn.Module, source: MaskSource, which: str, tau: Optional[float] = None) -> dict[str, torch.Tensor]:
    """``{layer: bool mask}`` for ``model``: given masks as they are, or from the probes' last window
    (``which='dead'``: never positive; ``'dormant'``: ReDo score <= tau, probes' tau by default)."""
    if not isinstance(source, Probes):
        return {k: torch.as_tensor(v, dtype=torch.bool).cpu() for k, v in source.items()}
    out: dict[str, torch.Tensor] = {}
    for layer, m in source.masks(model).items():
        if which == "dead":
            out[layer] = m["dead"]
        else:
            out[layer] = m["score"] <= (source.cfg.tau if tau is None else tau)
    return out


def noise_like(t: torch.Tensor, std: float, generator: Optional[torch.Generator]) -> torch.Tensor:
    """N(0, std²) noise with ``t``'s shape, drawn on the CPU (reproducible), on ``t``'s device."""
    return (torch.randn(t.shape, generator=generator, dtype=torch.float32) * std).to(t.device, t.dtype)


@torch.no_grad()
def add_noise(param: torch.Tensor, dim: int, idx: torch.Tensor, std: float,
              generator: Optional[torch.Generator]) -> None:
    idx = idx.to(param.device)
    param.index_add_(dim, idx, noise_like(param.index_select(dim, idx), std, generator))


@torch.no_grad()
def reset_moments(optimizers: list[torch.optim.Optimizer], param: torch.Tensor, dim: int, idx: torch.Tensor) -> None:
    """Zero the optimizer state slices of ``param`` at ``idx`` along ``dim``: every state tensor with
    the parameter's shape (Adam's exp_avg / exp_avg_sq / max_exp_avg_sq, SGD's momentum, ...)."""
    for opt in optimizers:
        state = opt.state.get(param)
        if not state:
            continue
        for value in state.values():
            if torch.is_tensor(value) and value.shape == param.shape:
                value.index_fill_(dim, idx.to(value.device), 0)
