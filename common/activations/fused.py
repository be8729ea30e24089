"""``FusedLeakyReLU``: bias + LeakyReLU + gain as one module (StyleGAN2's ``bias_act`` idea).

The module owns the per-channel bias, so the layer in front of it is built with ``bias=False``:
``Conv(bias=False) → FusedLeakyReLU(C)`` has exactly the parameters of
``Conv(bias=True) → LeakyReLU`` and computes the same function (times ``gain``), but the bias
add, the nonlinearity and the scaling happen in one pass and only the output is kept for
backward. The arithmetic lives in :func:`common.kernels.fused_leaky_relu` (a Triton kernel on
GPUs, a pure-PyTorch reference elsewhere); this file is only the ``nn.Module`` around it.
"""

from __future__ import annotations

import torch
from torch import nn

from common.activations.params import boolean, explained, nonnegative, placement, positive
from common.kernels import fused_leaky_relu

_NAME = "fused_leaky_relu"
_WHY = "its backward pass reads the local slope from the output's sign, valid only for alpha >= 0 and gain > 0"
#: The checks of ``alpha`` and ``gain``, shared with the registry entry ``fused_leaky_relu``.
check_alpha = explained(nonnegative, _WHY)
check_gain = explained(positive, _WHY)


class FusedLeakyReLU(nn.Module):
    """``gain * leaky_relu(x + bias, alpha)`` with ``bias`` broadcast along ``dim``.

    Args:
        channels: size of ``x``'s channel dim; required when ``bias`` is True (it sizes the
            bias), optional otherwise.
        alpha: negative slope, ``>= 0`` (the backward pass reads the local slope from the
            output's sign, which is only valid for ``alpha >= 0`` and ``gain > 0``).
        gain: constant output scale, ``> 0`` (StyleGAN uses ``sqrt(2)``; a following layer's
            init divides by it, see :func:`common.init.kaiming_leaky_`).
        bias: whether to hold a per-channel bias (zeros at init).
        dim: the channel dim: 1 for NCHW / (N, C), -1 for (N, ..., C) such as Linear outputs.

    Attributes ``channels``, ``alpha``, ``gain``, ``dim`` and ``bias`` (a Parameter or None).
    """

    def __init__(
        self,
        channels: int | None,
        alpha: float = 0.2,
        gain: float = 1.0,
        bias: bool = True,
        dim: int = 1,
    ) -> None:
        super().__init__()
        alpha = check_alpha(_NAME, "alpha", alpha)
        gain = check_gain(_NAME, "gain", gain)
        bias = boolean(_NAME, "bias", bias)
        placement(_NAME, channels, dim)
        if bias and channels is None:
            raise ValueError(f"activation '{_NAME}': channels is required when bias=True (it sizes the bias)")
        self.channels = channels
        self.alpha = alpha
        self.gain = gain
        self.dim = dim
        if bias:
            self.bias = nn.Parameter(torch.zeros(channels))  # type: ignore[arg-type]
        else:
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        """Zero the bias (its init value; see ``common.init`` for a positive bias init)."""
        if self.bias is not None:
            with torch.no_grad():
                self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias, self.alpha, self.gain, dim=self.dim)

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, alpha={self.alpha}, gain={self.gain}, "
            f"bias={self.bias is not None}, dim={self.dim}"
        )
