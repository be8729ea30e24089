"""Pure-PyTorch implementation of the two primitives behind ``fused_leaky_relu``.

Every backend (this one, and the Triton one in ``triton_leaky.py``) provides the same two
functions, which the autograd Functions in ``autograd.py`` compose into a forward pass and
gradients of any order:

* ``forward(x, bias, alpha, gain, dim, out)`` -> ``y = gain * leaky_relu(x + bias, alpha)``
* ``grad(g, y, alpha, gain, dim, add, want_bias)`` -> ``(gx, gb)`` with
  ``gx = (g + add) * slope(y)`` and ``gb = gx`` summed over every dim except ``dim``.

``slope(y)`` is ``gain`` where ``y > 0`` and ``alpha * gain`` elsewhere: since ``alpha >= 0`` and
``gain > 0`` the sign of the output is the sign of the pre-activation, so the saved output alone
decides the local gradient and the input never has to be kept alive.

Arithmetic runs in float32 (float64 for float64 inputs) whatever the storage dtype, like the
Triton kernels, so both paths round once at the end. This path serves CPU tensors, machines
without Triton, ``LEAKYLAB_FUSED_BACKEND=torch``, and float64 gradcheck in the tests.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the arithmetic runs in: float32, or float64 for float64 storage."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def channel_view(v: Tensor, ndim: int, dim: int) -> Tensor:
    """Reshape a per-channel vector so it broadcasts along ``dim`` of an ``ndim``-D tensor."""
    shape = [1] * ndim
    shape[dim] = v.numel()
    return v.reshape(shape)


def reduce_dims(ndim: int, dim: int) -> list[int]:
    """Every dim except ``dim``: the bias gradient sums over these."""
    return [d for d in range(ndim) if d != dim]


def forward(
    x: Tensor, bias: Optional[Tensor], alpha: float, gain: float, dim: int, out: Optional[Tensor]
) -> Tensor:
    """``gain * leaky_relu(x + bias, alpha)``; written into ``out`` when given (in-place use)."""
    ct = compute_dtype(x.dtype)
    # Always a fresh buffer (x may be the in-place output, or a leaf), made by the first op.
    if bias is not None:
        z = x.to(ct) + channel_view(bias.to(ct), x.ndim, dim)
    else:
        z = x.to(ct, copy=True)
    F.leaky_relu(z, alpha, inplace=True)
    if gain != 1.0:
        z.mul_(gain)
    if out is None:
        return z.to(x.dtype)
    return out.copy_(z)


def grad(
    g: Tensor,
    y: Tensor,
    alpha: float,
    gain: float,
    dim: int,
    add: Optional[Tensor],
    want_bias: bool,
) -> tuple[Tensor, Optional[Tensor]]:
    """``gx = (g + add) * slope(y)`` and, if ``want_bias``, its per-channel sum (in compute dtype)."""
    ct = compute_dtype(g.dtype)
    gg = g.to(ct)
    if add is not None:
        gg = gg + channel_view(add.to(ct), g.ndim, dim)
    gx = torch.where(y > 0, gg, gg * alpha)
    if gain != 1.0:
        gx = gx * gain
    gb = None
    if want_bias:
        dims = reduce_dims(g.ndim, dim)
        gb = gx.sum(dim=dims) if dims else gx.clone()
    return gx.to(g.dtype), gb
