"""``FusedLeakyReLU``: bias + LeakyReLU + gain as one module (StyleGAN2's ``bias_act`` idea).

The module owns the per-channel bias, so the layer in front of it is built with ``bias=False``:
``Conv(bias=False) → FusedLeakyReLU(C)`` has exactly the parameters of
``Conv(bias=True) → LeakyReLU`` and computes the same function (times ``gain``), but the bias
add, the nonlinearity and the scaling happen in one pass and only the output is kept for
backward. The arithmetic lives in :func:`common.kernels.fused_leaky_relu` (a Triton kernel on
GPUs, a pure-PyTorch reference elsewhere); this file is only the ``nn.Module`` around it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from common.kernels import fused_leaky_relu


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
        for key, value, positive in (("alpha", alpha, False), ("gain", gain, True)):
            ok = (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
                and (value > 0 if positive else value >= 0)
            )
            if not ok:
                bound = "> 0" if positive else ">= 0"
                raise ValueError(
                    f"FusedLeakyReLU needs a finite {key} {bound} (got {value!r}): its backward "
                    "pass reads the local slope from the sign of the output"
                )
        if channels is not None and (
            isinstance(channels, bool) or not isinstance(channels, int) or channels < 1
        ):
            raise ValueError(f"FusedLeakyReLU: channels must be a positive int (got {channels!r})")
        if bias and channels is None:
            raise ValueError("FusedLeakyReLU: channels is required when bias=True (it sizes the bias)")
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise ValueError(f"FusedLeakyReLU: dim must be an int (got {dim!r})")
        self.channels = channels
        self.alpha = float(alpha)
        self.gain = float(gain)
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
