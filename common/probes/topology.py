"""Which modules are activations, which layer feeds each one, and which dim indexes its units.

The probes and the remedies see a model only through its modules, so "the layer that feeds an
activation" is read from registration order (``named_modules()``), the same order a model's
``__init__`` builds ``Linear -> [Norm] -> act -> Linear`` stacks in:

- feed: the nearest Linear/Conv/ConvTranspose registered before the activation;
- norm: a BatchNorm/GroupNorm/InstanceNorm/LayerNorm registered between that layer and the
  activation (its affine bias then is the unit's effective bias, the conv bias is washed out);
- consumer: the nearest Linear/Conv/ConvTranspose registered after it (its input columns are the
  unit's outgoing weights).

A link is kept only when the sizes agree (feed's out features == units == consumer's in features,
or a multiple of them for a channel-major flatten into a Linear). Models whose ``__init__`` order
differs from the data flow (e.g. ``nn.TransformerEncoderLayer`` registers ``activation`` last)
get wrong or missing links: pass modules explicitly there. Functional calls (``F.relu``) are not
modules, so neither the probes nor the remedies can see them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                 nn.ConvTranspose3d)
CHANNEL_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.InstanceNorm1d,
                 nn.InstanceNorm2d, nn.InstanceNorm3d, nn.SyncBatchNorm)
LAST_DIM_NORMS = (nn.LayerNorm,) + ((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())
NORMS = CHANNEL_NORMS + LAST_DIM_NORMS

_KINDS = {
    nn.ReLU: "relu", nn.LeakyReLU: "leaky_relu", nn.PReLU: "prelu", nn.RReLU: "rrelu",
    nn.ReLU6: "relu6", nn.ELU: "elu", nn.CELU: "celu", nn.SELU: "selu", nn.GELU: "gelu",
    nn.SiLU: "silu", nn.Mish: "mish", nn.Softplus: "softplus", nn.Tanh: "tanh",
    nn.Sigmoid: "sigmoid", nn.Hardtanh: "hardtanh", nn.Hardswish: "hardswish",
    nn.Hardsigmoid: "hardsigmoid", nn.LogSigmoid: "logsigmoid", nn.Softsign: "softsign",
    nn.Tanhshrink: "tanhshrink",
}
# Bounded/saturating outputs: no "dead unit" story, so the remedies leave them alone.
SATURATING = {"tanh", "sigmoid", "hardtanh", "hardsigmoid", "logsigmoid", "softsign", "tanhshrink"}


def activation_kind(module: nn.Module) -> Optional[str]:
    """A short name for an activation module (``relu``, ``leaky_relu``, ``fused_leaky_relu``, ...),
    or None when ``module`` is not an activation.

    ``common.activations.is_activation`` decides when that module is importable, so activations
    the project adds are recognised without a change here.
    """
    if type(module).__name__ == "FusedLeakyReLU":
        return "fused_leaky_relu"
    try:
        from common.activations import is_activation  # type: ignore[attr-defined]
    except ImportError:
        is_activation = None
    if is_activation is not None:
        if not is_activation(module):
            return None
    elif not isinstance(module, tuple(_KINDS)):
        return None
    for cls in type(module).__mro__:
        if cls in _KINDS:
            return _KINDS[cls]
    return type(module).__name__.lower()


def alpha_gain(module: nn.Module) -> tuple[float, float]:
    """(negative slope, output gain) of a rectifier: ReLU (0, 1), LeakyReLU (α, 1), Fused (α, gain);
    PReLU reports its mean slope. Used for leaky-aware re-init; other kinds report (0, 1)."""
    kind = activation_kind(module)
    if kind == "leaky_relu":
        return float(module.negative_slope), 1.0
    if kind == "fused_leaky_relu":
        return float(module.alpha), float(module.gain)
    if kind == "prelu":
        return float(module.weight.detach().float().mean()), 1.0
    return 0.0, 1.0


def activation_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every activation module, in registration order."""
    return [(n, m) for n, m in model.named_modules() if activation_kind(m) is not None]


def out_units(layer: nn.Module) -> int:
    """Number of output units (features / channels) of a Linear/Conv/ConvTranspose."""
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


def in_units(layer: nn.Module) -> int:
    return layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels


def fan_in(layer: nn.Module) -> int:
    """The fan-in the forward pass sees. For ConvTranspose each output element receives
    in_channels * prod(kernel) / prod(stride) products on average, not torch's size(1)*prod(k)."""
    if isinstance(layer, nn.Linear):
        return layer.in_features
    k = math.prod(layer.kernel_size)
    if isinstance(layer, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        return max(1, (layer.in_channels // layer.groups) * k // math.prod(layer.stride))
    return (layer.in_channels // layer.groups) * k


@dataclass
class UnitSite:
    """One activation layer and the parameters that own its units."""

    name: str
    act: nn.Module
    kind: str
    feed: Optional[nn.Module] = None
    norm: Optional[nn.Module] = None
    consumer: Optional[nn.Module] = None

    def bias(self) -> Optional[torch.Tensor]:
        """The effective bias of each unit: the fused activation's own, else the norm's affine
        shift, else the feeding layer's bias (None when there is none)."""
        if getattr(self.act, "bias", None) is not None and isinstance(self.act.bias, torch.Tensor):
            return self.act.bias
        if self.norm is not None:
            return getattr(self.norm, "bias", None)
        return None if self.feed is None else self.feed.bias


def unit_sites(model: nn.Module) -> list[UnitSite]:
    """Every activation of ``model`` with its feeding layer, norm and consumer (registration order;
    links that do not fit by size are left None)."""
    mods = list(model.named_modules())
    sites: list[UnitSite] = []
    for i, (name, act) in enumerate(mods):
        kind = activation_kind(act)
        if kind is None:
            continue
        site = UnitSite(name, act, kind)
        for _, m in reversed(mods[:i]):
            if isinstance(m, NORMS) and site.norm is None:
                site.norm = m
            if isinstance(m, WEIGHT_LAYERS):
                site.feed = m
                break
            if activation_kind(m) is not None:
                break  # another activation comes first: nothing feeds this one directly
        for _, m in mods[i + 1:]:
            if isinstance(m, WEIGHT_LAYERS):
                site.consumer = m
                break
        units = _units_hint(site)
        if site.feed is not None and units is not None and out_units(site.feed) != units:
            site.feed = site.norm = None
        if site.feed is None:
            site.norm = None
        n = units if units is not None else (out_units(site.feed) if site.feed is not None else None)
        if site.consumer is not None and (n is None or in_units(site.consumer) % n != 0
                                          or (not isinstance(site.consumer, nn.Linear)
                                              and in_units(site.consumer) != n)):
            site.consumer = None
        sites.append(site)
    return sites


def _units_hint(site: UnitSite) -> Optional[int]:
    """Units known from the activation itself (fused bias length, PReLU slopes), else None."""
    bias = getattr(site.act, "bias", None)
    if isinstance(bias, torch.Tensor):
        return bias.numel()
    if site.kind == "prelu" and site.act.num_parameters > 1:
        return site.act.num_parameters
    return None


def infer_unit_dim(model: nn.Module, name: str) -> Optional[int]:
    """The dim indexing units for activation ``name``, or None to decide from the input's ndim.

    Fused activations carry ``.dim``; PReLU with per-channel slopes uses dim 1; otherwise the
    nearest shaping module registered before it decides: Conv/ConvTranspose and channel norms
    mean channels (dim 1, NCHW), Linear and LayerNorm mean features (last dim).
    """
    mods = list(model.named_modules())
    idx = next(i for i, (n, _) in enumerate(mods) if n == name)
    act = mods[idx][1]
    if hasattr(act, "dim") and isinstance(getattr(act, "dim"), int) and activation_kind(act) == "fused_leaky_relu":
        return act.dim
    if isinstance(act, nn.PReLU) and act.num_parameters > 1:
        return 1
    for _, m in reversed(mods[:idx]):
        if isinstance(m, (nn.Linear,) + LAST_DIM_NORMS):
            return -1
        if isinstance(m, WEIGHT_LAYERS + CHANNEL_NORMS):
            return 1
    return None


def default_unit_dim(ndim: int) -> int:
    """Fallback when nothing says: (N, C) and (N, T, C) use the last dim, images NC... use dim 1."""
    return 1 if ndim >= 4 else -1
