"""The activations the suite knows out of the box: one :class:`ActivationSpec` each.

Buildable by name (``make_activation``, configs), in this order:

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

Recognised in users' models but not buildable by name: the rest of torch's elementwise
nonlinearities (ReLU6, RReLU, CELU, SELU, Mish, Softplus, Hardswish, Hardtanh, Hardsigmoid,
LogSigmoid, Softsign, Tanhshrink).
"""

from __future__ import annotations

from typing import Optional

from torch import nn

from common.activations.fused import FusedLeakyReLU, check_alpha, check_gain
from common.activations.params import boolean, nonnegative, one_of, positive
from common.activations.spec import ActivationSpec, Param


def _prelu(channels: Optional[int], dim: int, alpha: float) -> nn.Module:
    return nn.PReLU(num_parameters=1 if channels is None else channels, init=alpha)


def _prelu_placement(channels: Optional[int], dim: int) -> None:
    if channels is not None and channels > 1 and dim != 1:
        # nn.PReLU always applies per-channel slopes along dim 1.
        raise ValueError(f"activation 'prelu': per-channel slopes work on dim 1 only (got dim={dim})")


def _fused(channels: Optional[int], dim: int, alpha: float, gain: float, bias: bool) -> nn.Module:
    return FusedLeakyReLU(channels, alpha=alpha, gain=gain, bias=bias, dim=dim)


def _rrelu_zero_below(m: nn.RReLU) -> bool:
    # training draws each slope from [lower, upper]: exactly 0 only when both ends are
    return float(m.lower) == 0.0 and float(m.upper) == 0.0


BUILTIN: tuple[ActivationSpec, ...] = (
    # -- buildable by name, in the order of ACTIVATIONS -------------------------------------------
    ActivationSpec("relu", (nn.ReLU,), "rectifier", build=lambda c, d: nn.ReLU(),
                   alpha=lambda m: 0.0, zero_below=lambda m: True),
    ActivationSpec("leaky_relu", (nn.LeakyReLU,), "rectifier",
                   build=lambda c, d, alpha: nn.LeakyReLU(alpha), params=(Param("alpha", 0.2, nonnegative),),
                   alpha=lambda m: float(m.negative_slope), zero_below=lambda m: float(m.negative_slope) == 0.0),
    ActivationSpec("prelu", (nn.PReLU,), "rectifier", build=_prelu, params=(Param("alpha", 0.25, nonnegative),),
                   # the init assumes the initial slope, not what training made of it:
                   # re-initialising restarts training
                   alpha=lambda m: float(m.init), zero_below=lambda m: m.weight.detach() == 0,
                   unit_dim=lambda m: 1 if m.num_parameters > 1 else None, placement=_prelu_placement),
    ActivationSpec("elu", (nn.ELU,), "smooth", build=lambda c, d, alpha: nn.ELU(alpha=alpha),
                   params=(Param("alpha", 1.0, positive),)),
    ActivationSpec("gelu", (nn.GELU,), "smooth", build=lambda c, d, approximate: nn.GELU(approximate=approximate),
                   params=(Param("approximate", "none", one_of("none", "tanh")),)),
    ActivationSpec("silu", (nn.SiLU,), "smooth", build=lambda c, d: nn.SiLU()),
    ActivationSpec("sigmoid", (nn.Sigmoid,), "saturating", build=lambda c, d: nn.Sigmoid()),
    ActivationSpec("tanh", (nn.Tanh,), "saturating", build=lambda c, d: nn.Tanh()),
    ActivationSpec("fused_leaky_relu", (FusedLeakyReLU,), "rectifier", build=_fused,
                   params=(Param("alpha", 0.2, check_alpha), Param("gain", 1.0, check_gain),
                           Param("bias", True, boolean)),
                   alpha=lambda m: float(m.alpha), gain=lambda m: float(m.gain),
                   zero_below=lambda m: float(m.alpha) == 0.0, unit_dim=lambda m: m.dim, carries_bias=True),
    # -- recognised only ---------------------------------------------------------------------------
    # ReLU6 has α = 0 for the init, but its derivative is also 0 above 6: no zero_below.
    ActivationSpec("relu6", (nn.ReLU6,), "rectifier", alpha=lambda m: 0.0),
    ActivationSpec("rrelu", (nn.RReLU,), "rectifier", alpha=lambda m: (float(m.lower) + float(m.upper)) / 2.0,
                   zero_below=_rrelu_zero_below),
    ActivationSpec("celu", (nn.CELU,), "smooth"),
    ActivationSpec("selu", (nn.SELU,), "smooth"),
    ActivationSpec("mish", (nn.Mish,), "smooth"),
    ActivationSpec("softplus", (nn.Softplus,), "smooth"),
    ActivationSpec("hardswish", (nn.Hardswish,), "smooth"),
    ActivationSpec("hardtanh", (nn.Hardtanh,), "saturating"),
    ActivationSpec("hardsigmoid", (nn.Hardsigmoid,), "saturating"),
    ActivationSpec("logsigmoid", (nn.LogSigmoid,), "saturating"),
    ActivationSpec("softsign", (nn.Softsign,), "saturating"),
    ActivationSpec("tanhshrink", (nn.Tanhshrink,), "saturating"),
)
