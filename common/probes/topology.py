"""Which modules are activations, what kind, and which tensor dim indexes their units.

Units are features for Linear-like outputs (N, ..., C) and channels for convolutions (N, C, ...).
The probes decide per activation module from the nearest shaping module registered before it
(``named_modules()`` order, the order a model's ``__init__`` builds ``Linear -> [Norm] -> act``
stacks in), from ``FusedLeakyReLU.dim``, or from ``ProbeConfig.unit_dims``. Functional calls
(``F.relu``) are not modules and stay invisible.
"""

from __future__ import annotations

from typing import Optional

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


_IS_ACTIVATION: list = []


def _project_is_activation():
    """``common.activations``' predicate, looked up once (None when that package is absent)."""
    if not _IS_ACTIVATION:
        try:
            from common.activations.factory import is_activation
        except ImportError:
            is_activation = None
        _IS_ACTIVATION.append(is_activation)
    return _IS_ACTIVATION[0]


def activation_kind(module: nn.Module) -> Optional[str]:
    """A short name for an activation module (``relu``, ``leaky_relu``, ``fused_leaky_relu``, ...),
    or None when ``module`` is not an activation.

    ``common.activations.is_activation`` decides when that module is importable, so activations
    the project adds are recognised without a change here.
    """
    if type(module).__name__ == "FusedLeakyReLU":
        return "fused_leaky_relu"
    is_activation = _project_is_activation()
    if is_activation is not None:
        if not is_activation(module):
            return None
    elif not isinstance(module, tuple(_KINDS)):
        return None
    for cls in type(module).__mro__:
        if cls in _KINDS:
            return _KINDS[cls]
    return type(module).__name__.lower()


def activation_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every activation module, in registration order."""
    return [(n, m) for n, m in model.named_modules() if activation_kind(m) is not None]


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
