"""The thermal kick: shake the incoming weights and bias of dead units so they can fire again.

A dead ReLU unit gets no gradient, so no optimizer step will ever move it; a random perturbation
of its incoming weights w and bias b (w += N(0, std²), b += N(0, std²)) gives it a fresh chance to
be positive on some inputs, after which gradients take over. Live units are not touched. ``std``
is absolute, in the weights' own units: pick it from the layer's weight scale.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from common.remedies.sites import UnitSite, unit_sites
from common.remedies.surgery import MaskSource, add_noise, resolve_masks


def thermal_kick(model: nn.Module, dead: MaskSource, std: float, *, generator: Optional[torch.Generator] = None,
                 sites: Optional[list[UnitSite]] = None) -> int:
    """Add N(0, std²) noise to the incoming weights and bias of each dead unit of ``model``.

    ``dead``: ``{activation layer name: bool mask [units]}`` or a Probes object (its last read
    window's dead units). Layers without a known feeding layer are skipped. Returns the number of
    units kicked.
    """
    masks = resolve_masks(model, dead, "dead")
    kicked = 0
    for site in sites if sites is not None else unit_sites(model):
        mask = masks.get(site.name)
        if mask is None or site.feed is None or not site.rectifier:
            continue
        idx = mask.nonzero().flatten()
        if idx.numel() == 0:
            continue
        for param, dim, i in site.incoming(idx):
            add_noise(param, dim, i, std, generator)
        kicked += idx.numel()
    return kicked
