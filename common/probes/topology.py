"""Which modules are activations, what kind, and which tensor dim indexes their units.

Units are features for Linear-like outputs (N, ..., C) and channels for convolutions (N, C, ...).
The probes decide per activation module from the nearest shaping module registered before it
(``named_modules()`` order, the order a model's ``__init__`` builds ``Linear -> [Norm] -> act``
stacks in), from the activation's registry entry (``FusedLeakyReLU.dim``), or from
``ProbeConfig.unit_dims``. Functional calls (``F.relu``) are not modules and stay invisible.
"""

from __future__ import annotations

from typing import Optional

from torch import nn

# SATURATING is re-exported: the remedies and the comparison filter probe records by kind with it.
from common.activations.registry import SATURATING, activation_spec  # noqa: F401

WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                 nn.ConvTranspose3d)
CHANNEL_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.InstanceNorm1d,
                 nn.InstanceNorm2d, nn.InstanceNorm3d, nn.SyncBatchNorm)
LAST_DIM_NORMS = (nn.LayerNorm,) + ((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())


def activation_kind(module: nn.Module) -> Optional[str]:
    """The registry name of an activation module (``relu``, ``leaky_relu``, ``fused_leaky_relu``,
    ``relu6``, ...), or None when ``module`` is not an activation. Activations added with
    ``register_activation`` are reported under their own name."""
    spec = activation_spec(module)
    return None if spec is None else spec.name


def activation_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every activation module, in registration order."""
    return [(n, m) for n, m in model.named_modules() if activation_kind(m) is not None]


def infer_unit_dim(model: nn.Module, name: str) -> Optional[int]:
    """The dim indexing units for activation ``name``, or None to decide from the input's ndim.

    The activation's registry entry decides when the module knows (a fused activation's
    ``.dim``, PReLU's per-channel slopes on dim 1); otherwise the nearest shaping module
    registered before it does: Conv/ConvTranspose and channel norms mean channels (dim 1, NCHW),
    Linear and LayerNorm mean features (last dim).
    """
    mods = list(model.named_modules())
    idx = next(i for i, (n, _) in enumerate(mods) if n == name)
    act = mods[idx][1]
    spec = activation_spec(act)
    own = spec.unit_dim(act) if spec is not None and spec.unit_dim is not None else None
    if isinstance(own, int):
        return own
    for _, m in reversed(mods[:idx]):
        if isinstance(m, (nn.Linear,) + LAST_DIM_NORMS):
            return -1
        if isinstance(m, WEIGHT_LAYERS + CHANNEL_NORMS):
            return 1
    return None


def default_unit_dim(ndim: int) -> int:
    """Fallback when nothing says: (N, C) and (N, T, C) use the last dim, images NC... use dim 1."""
    return 1 if ndim >= 4 else -1
