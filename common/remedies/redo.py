"""ReDo (Sokar et al. 2023): recycle dormant units.

For each unit with score s_i = E|h_i| / mean_k E|h_k| <= tau: re-initialise its incoming weights
(leaky-aware Kaiming for the activation that follows, :mod:`common.init`), reset its bias (and a
norm's scale/shift/running statistics in between), zero its outgoing weights — so the network's
function is unchanged at the moment of the reset — and zero the optimizer's moments for every
touched slice, so stale Adam statistics do not throw the fresh unit straight back.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
from torch import nn

from common.init import effective_fans, init_gain
from common.remedies.sites import UnitSite, unit_sites
from common.remedies.surgery import MaskSource, noise_like, reset_moments, resolve_masks

Optimizers = Union[torch.optim.Optimizer, Sequence[torch.optim.Optimizer], None]


def reinit_std(site: UnitSite) -> float:
    """The std the leaky-aware init gives the feeding layer of ``site`` (fan-in mode)."""
    return init_gain(site.act) / math.sqrt(effective_fans(site.feed)[0])


@torch.no_grad()
def redo_recycle(model: nn.Module, optimizer: Optimizers, dormant: MaskSource, *, tau: Optional[float] = None,
                 bias: float = 0.0, generator: Optional[torch.Generator] = None,
                 sites: Optional[list[UnitSite]] = None) -> int:
    """Recycle the dormant units of ``model``; returns how many.

    ``dormant``: ``{activation layer name: bool mask [units]}`` or a Probes object (units of its
    last read window with score <= ``tau``, the probes' tau by default). ``optimizer``: one or
    several (or None) whose state for the touched parameters is zeroed. ``bias``: value for the
    recycled units' bias. Layers without a known feeding layer are skipped; without a known
    consumer their outgoing weights cannot be zeroed (the function then changes) but the
    incoming side is still recycled.
    """
    opts = [] if optimizer is None else [optimizer] if isinstance(optimizer, torch.optim.Optimizer) else list(optimizer)
    masks = resolve_masks(model, dormant, "dormant", tau)
    recycled = 0
    for site in sites if sites is not None else unit_sites(model):
        mask = masks.get(site.name)
        if mask is None or site.feed is None or not site.rectifier:
            continue
        idx = mask.nonzero().flatten()
        if idx.numel() == 0:
            continue
        std = reinit_std(site)
        (w, wdim, widx), *rest = site.incoming(idx)
        widx = widx.to(w.device)
        w.index_copy_(wdim, widx, noise_like(w.index_select(wdim, widx), std, generator))
        touched = [(w, wdim, widx)]
        for b, bdim, bidx in rest:
            b.index_fill_(bdim, bidx.to(b.device), bias)
            touched.append((b, bdim, bidx))
        if site.norm is not None:
            touched += _reset_norm(site.norm, idx, shift_too=getattr(site.norm, "bias", None) is not site.bias())
        for p, dim, i in site.outgoing(idx):
            p.index_fill_(dim, i.to(p.device), 0.0)
            touched.append((p, dim, i))
        for p, dim, i in touched:
            reset_moments(opts, p, dim, i)
        recycled += idx.numel()
    return recycled


def _reset_norm(norm: nn.Module, idx: torch.Tensor, shift_too: bool) -> list[tuple[torch.Tensor, int, torch.Tensor]]:
    """Scale 1 and fresh running statistics for the recycled channels. ``shift_too``: also zero the
    norm's shift — when a fused activation after the norm holds the unit's bias (otherwise the
    shift *is* the unit's bias and the caller has already reset it)."""
    touched = []
    for name, value in (("weight", 1.0), ("bias", 0.0)):
        p = getattr(norm, name, None)
        if isinstance(p, torch.Tensor) and p.dim() == 1 and (name == "weight" or shift_too):
            p.index_fill_(0, idx.to(p.device), value)
            touched.append((p, 0, idx))
    for name, value in (("running_mean", 0.0), ("running_var", 1.0)):
        buf = getattr(norm, name, None)
        if isinstance(buf, torch.Tensor) and buf.dim() == 1:
            buf.index_fill_(0, idx.to(buf.device), value)
    return touched
