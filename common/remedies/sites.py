"""Where a unit's parameters live: its incoming weights, its bias, its outgoing weights.

For each activation module (a "site") the remedies need:

- feed: the weight layer whose output features/channels are the units (incoming weights). Taken
  from :func:`common.activations.graph.find_links` — the same rule ``swap_activations`` and the
  leaky-aware init use (fx tracing, else registration order); used only when exactly one layer
  feeds the activation;
- norm: a norm layer between them (BatchNorm etc.): its affine shift is then the unit's
  effective bias and its running statistics belong to the unit too;
- consumer: the weight layer reading the units (outgoing weights) — the nearest Linear/Conv/
  ConvTranspose registered after the activation (registration order; find_links only links
  backwards). A Linear consumer may read a channel-major flatten of C channels (in = C·k).

A link is kept only when the sizes agree; remedies skip what they cannot place. Functional
activations (``F.relu``) are invisible here as everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from common.activations.graph import NORM_TYPES, WEIGHT_TYPES, find_links
from common.activations.registry import own_bias
from common.probes.topology import SATURATING, activation_kind, activation_layers

_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def out_units(layer: nn.Module) -> int:
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


def in_units(layer: nn.Module) -> int:
    return layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels


@dataclass
class UnitSite:
    """One activation module and the layers that own its units' parameters."""

    name: str
    act: nn.Module
    kind: str
    feed: Optional[nn.Module] = None
    norm: Optional[nn.Module] = None
    consumer: Optional[nn.Module] = None

    @property
    def rectifier(self) -> bool:
        """A hidden-unit activation the remedies act on (not an output squasher like tanh)."""
        return self.kind not in SATURATING

    def bias(self) -> Optional[torch.Tensor]:
        """The unit's effective bias: the fused activation's own, else the norm's shift, else the
        feeding layer's (None when there is none)."""
        own = own_bias(self.act)
        if isinstance(own, torch.Tensor):
            return own
        if self.norm is not None:
            return getattr(self.norm, "bias", None)
        return None if self.feed is None else self.feed.bias

    # -- slices: (tensor, dim, index) triples addressing the given units -------------------------

    def incoming(self, idx: torch.Tensor) -> list[tuple[nn.Parameter, int, torch.Tensor]]:
        """Incoming weights and the bias of units ``idx``."""
        out: list[tuple[nn.Parameter, int, torch.Tensor]] = []
        if self.feed is not None:
            # ConvTranspose weights are (in, out/groups, *k): the units are dim 1
            out.append((self.feed.weight, 1 if isinstance(self.feed, _CONV_T) else 0, idx))
        b = self.bias()
        if b is not None:
            out.append((b, 0, idx))
        return out

    def outgoing(self, idx: torch.Tensor) -> list[tuple[nn.Parameter, int, torch.Tensor]]:
        """The consumer's weights reading units ``idx``."""
        c = self.consumer
        if c is None:
            return []
        if isinstance(c, nn.Linear):
            units = self.units()
            k = c.in_features // units  # 1, or a flattened C×k feature map (channel-major)
            cols = (idx[:, None] * k + torch.arange(k, device=idx.device)[None, :]).reshape(-1)
            return [(c.weight, 1, cols)]
        return [(c.weight, 0 if isinstance(c, _CONV_T) else 1, idx)]

    def units(self) -> int:
        own = own_bias(self.act)
        if isinstance(own, torch.Tensor):
            return own.numel()
        return out_units(self.feed) if self.feed is not None else in_units(self.consumer)


def unit_sites(model: nn.Module, method: str = "auto") -> list[UnitSite]:
    """Every activation module of ``model`` with its feed, norm and consumer (see module doc)."""
    graph = find_links(model, method)  # type: ignore[arg-type]
    modules = dict(model.named_modules())
    leaves = [(n, m) for n, m in modules.items() if not any(True for _ in m.children())]
    position = {n: i for i, (n, _) in enumerate(leaves)}
    sites: list[UnitSite] = []
    for name, act in activation_layers(model):
        site = UnitSite(name, act, activation_kind(act))
        feeders = graph.feeders(name)
        if len(feeders) == 1:
            site.feed = modules[feeders[0]]
            link = graph.link(feeders[0], name)
            norms = [modules[b] for b in (link.between if link else ()) if isinstance(modules.get(b), NORM_TYPES)]
            site.norm = norms[-1] if norms else None
        for _, m in leaves[position.get(name, len(leaves)) + 1:]:
            if isinstance(m, WEIGHT_TYPES):
                site.consumer = m
                break
        _check_sizes(site)
        sites.append(site)
    return sites


def _check_sizes(site: UnitSite) -> None:
    """Drop links whose sizes do not match the units (or whose grouping we cannot slice)."""
    own = own_bias(site.act)
    n = own.numel() if isinstance(own, torch.Tensor) else None
    if site.feed is not None:
        grouped_t = isinstance(site.feed, _CONV_T) and site.feed.groups != 1
        if (n is not None and out_units(site.feed) != n) or grouped_t:
            site.feed = site.norm = None
        else:
            n = out_units(site.feed)
    c = site.consumer
    if c is not None:
        ok = n is not None and (in_units(c) % n == 0 if isinstance(c, nn.Linear)
                                else in_units(c) == n and getattr(c, "groups", 1) == 1)
        if not ok:
            site.consumer = None
