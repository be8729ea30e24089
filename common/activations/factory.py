"""One factory for every activation the suite compares, and what other modules need to know
about an activation module (its negative slope, its own output gain, whether it carries a bias).

Names (the public tuple :data:`ACTIVATIONS`, which app configs validate against):

- ``relu`` → ``nn.ReLU``
- ``leaky_relu`` (``alpha=0.2``, ≥ 0) → ``nn.LeakyReLU(alpha)``
- ``prelu`` (``alpha=0.25``: the initial slope; ``channels``: one slope per channel, else one
  shared) → ``nn.PReLU``
- ``elu`` (``alpha=1.0``: ELU's saturation level, > 0) → ``nn.ELU``
- ``gelu`` (``approximate='none'`` or ``'tanh'``) → ``nn.GELU``
- ``silu`` → ``nn.SiLU``; ``sigmoid`` → ``nn.Sigmoid``; ``tanh`` → ``nn.Tanh``
- ``fused_leaky_relu`` (``channels``, needed when ``bias``; ``alpha=0.2``; ``gain=1.0``;
  ``bias=True``; ``dim=1``) → :class:`FusedLeakyReLU`

Why ``alpha=0.2`` for ``leaky_relu`` when torch's default is 0.01: 0.2 is what DCGAN's
discriminator and StyleGAN's fused ``bias_act`` use, and at 0.01 the leak is too small to matter
for most of the effects this suite measures. Pass ``alpha=0.01`` to get torch's choice.

``channels`` and ``dim`` are accepted for every name so that model code can call
``make_activation(name, channels=C)`` uniformly; elementwise activations ignore them.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from torch import nn

from common.activations.fused import FusedLeakyReLU

#: Every name :func:`make_activation` accepts, in a stable order (configs validate against it).
ACTIVATIONS: tuple[str, ...] = (
    "relu",
    "leaky_relu",
    "prelu",
    "elu",
    "gelu",
    "silu",
    "sigmoid",
    "tanh",
    "fused_leaky_relu",
)

#: Module types :func:`is_activation` recognises (torch's elementwise nonlinearities + ours).
ACTIVATION_TYPES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Softplus,
    nn.Hardswish,
    nn.Hardtanh,
    nn.Sigmoid,
    nn.Tanh,
    FusedLeakyReLU,
)

#: The hidden-unit (rectifier-family) activations that :func:`swap_activations` replaces by
#: default. Sigmoid, Tanh and Hardtanh are left out on purpose: in real models they are output
#: squashers (DCGAN's generator ends in Tanh) or gates, and replacing them breaks the model.
SWAPPABLE_TYPES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Softplus,
    nn.Hardswish,
    FusedLeakyReLU,
)


def _number(name: str, key: str, value: Any, *, positive: bool = False) -> float:
    """A finite real number (bools refused), >= 0, or > 0 when ``positive``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"activation '{name}': {key} must be a finite number (got {value!r})")
    if positive and value <= 0:
        raise ValueError(f"activation '{name}': {key} must be > 0 (got {value!r})")
    if value < 0:
        raise ValueError(f"activation '{name}': {key} must be >= 0 (got {value!r})")
    return float(value)


def _relu(channels: int | None, dim: int) -> nn.Module:
    return nn.ReLU()


def _leaky_relu(channels: int | None, dim: int, alpha: float = 0.2) -> nn.Module:
    return nn.LeakyReLU(_number("leaky_relu", "alpha", alpha))


def _prelu(channels: int | None, dim: int, alpha: float = 0.25) -> nn.Module:
    slope = _number("prelu", "alpha", alpha)
    n = 1 if channels is None else channels
    if n > 1 and dim != 1:
        # nn.PReLU always applies per-channel slopes along dim 1.
        raise ValueError(f"activation 'prelu': per-channel slopes work on dim 1 only (got dim={dim})")
    return nn.PReLU(num_parameters=n, init=slope)


def _elu(channels: int | None, dim: int, alpha: float = 1.0) -> nn.Module:
    return nn.ELU(alpha=_number("elu", "alpha", alpha, positive=True))


def _gelu(channels: int | None, dim: int, approximate: str = "none") -> nn.Module:
    if approximate not in ("none", "tanh"):
        raise ValueError(
            f"activation 'gelu': approximate must be 'none' or 'tanh' (got {approximate!r})"
        )
    return nn.GELU(approximate=approximate)


def _silu(channels: int | None, dim: int) -> nn.Module:
    return nn.SiLU()


def _sigmoid(channels: int | None, dim: int) -> nn.Module:
    return nn.Sigmoid()


def _tanh(channels: int | None, dim: int) -> nn.Module:
    return nn.Tanh()


def _fused(
    channels: int | None, dim: int, alpha: float = 0.2, gain: float = 1.0, bias: bool = True
) -> nn.Module:
    if not isinstance(bias, bool):
        raise ValueError(f"activation 'fused_leaky_relu': bias must be true or false (got {bias!r})")
    return FusedLeakyReLU(channels, alpha=alpha, gain=gain, bias=bias, dim=dim)


_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "relu": _relu,
    "leaky_relu": _leaky_relu,
    "prelu": _prelu,
    "elu": _elu,
    "gelu": _gelu,
    "silu": _silu,
    "sigmoid": _sigmoid,
    "tanh": _tanh,
    "fused_leaky_relu": _fused,
}
assert tuple(_BUILDERS) == ACTIVATIONS

_PARAMS: dict[str, tuple[str, ...]] = {
    "relu": (),
    "leaky_relu": ("alpha",),
    "prelu": ("alpha",),
    "elu": ("alpha",),
    "gelu": ("approximate",),
    "silu": (),
    "sigmoid": (),
    "tanh": (),
    "fused_leaky_relu": ("alpha", "gain", "bias"),
}


def check_activation_name(name: str) -> str:
    """Return ``name`` if it is in :data:`ACTIVATIONS`, else raise ValueError listing them."""
    if name not in _BUILDERS:
        raise ValueError(
            f"unknown activation {name!r}; allowed: {', '.join(ACTIVATIONS)}"
        )
    return name


def activation_params(name: str) -> tuple[str, ...]:
    """The keyword parameters ``name`` accepts besides ``channels`` and ``dim``."""
    return _PARAMS[check_activation_name(name)]


def make_activation(name: str, *, channels: int | None = None, dim: int = 1, **params: Any) -> nn.Module:
    """Build the activation module called ``name`` (see the module docstring for parameters).

    ``channels`` is the size of the channel dimension ``dim`` of the tensors it will see: PReLU
    uses it for per-channel slopes, ``fused_leaky_relu`` for its bias; the others ignore it.
    Unknown names, unknown parameters and impossible values raise ValueError.
    """
    check_activation_name(name)
    unknown = sorted(set(params) - set(_PARAMS[name]))
    if unknown:
        allowed = ", ".join(_PARAMS[name] + ("channels", "dim"))
        raise ValueError(
            f"activation {name!r} got unknown parameter(s) {', '.join(unknown)}; allowed: {allowed}"
        )
    if channels is not None and (
        isinstance(channels, bool) or not isinstance(channels, int) or channels < 1
    ):
        raise ValueError(f"activation {name!r}: channels must be a positive int (got {channels!r})")
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise ValueError(f"activation {name!r}: dim must be an int (got {dim!r})")
    return _BUILDERS[name](channels, dim, **params)


def carries_bias(name: str, **params: Any) -> bool:
    """Whether activation ``name`` (with these parameters) holds the per-channel bias itself.

    True for ``fused_leaky_relu`` (unless ``bias=False``): the layer before it must then be built
    with ``bias=False`` so that a leaky and a fused-leaky model have the same parameters.
    """
    check_activation_name(name)
    return name == "fused_leaky_relu" and bool(params.get("bias", True))


def is_activation(module: nn.Module) -> bool:
    """True for the elementwise nonlinearity modules in :data:`ACTIVATION_TYPES`."""
    return isinstance(module, ACTIVATION_TYPES)


def activation_alpha(module: nn.Module | None) -> float | None:
    """Negative slope α the init of the layer *feeding* ``module`` should assume.

    0 for ReLU/ReLU6, α for LeakyReLU and FusedLeakyReLU, the initial slope for PReLU (its
    ``init`` value, not whatever training made of it: re-initialising restarts training), the
    mean of the range for RReLU, and None for activations that are not piecewise linear through
    the origin (ELU, GELU, sigmoid, tanh, ...) or when ``module`` is None.
    """
    if isinstance(module, (nn.ReLU, nn.ReLU6)):
        return 0.0
    if isinstance(module, nn.LeakyReLU):
        return float(module.negative_slope)
    if isinstance(module, FusedLeakyReLU):
        return float(module.alpha)
    if isinstance(module, nn.PReLU):
        return float(module.init)
    if isinstance(module, nn.RReLU):
        return (float(module.lower) + float(module.upper)) / 2.0
    return None


def activation_gain(module: nn.Module | None) -> float:
    """The constant the module multiplies its output by (``FusedLeakyReLU.gain``), else 1."""
    if isinstance(module, FusedLeakyReLU):
        return float(module.gain)
    return 1.0
