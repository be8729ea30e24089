"""Autograd Functions for the fused bias + LeakyReLU + gain, shared by every backend.

The backward of ``y = gain * leaky_relu(x + b, alpha)`` is a *linear* map of the incoming
gradient ``g`` whose coefficients depend only on the saved output ``y``:

    L(g)      = (g * s(y),  sum_{not dim}(g * s(y)))        -> (grad_x, grad_b)
    L^T(u, v) = (u + broadcast(v)) * s(y)                   -> its adjoint

with ``s(y) = gain`` where ``y > 0`` and ``alpha * gain`` elsewhere. ``s`` is piecewise constant,
so its derivative is zero almost everywhere (the same convention as ``torch``'s own
``leaky_relu_backward``) and the only thing left to differentiate is the linear map itself:
the backward of ``L`` is ``L^T`` and the backward of ``L^T`` is ``L``. Two small Functions that
call each other therefore give gradients of every order (R1 and WGAN-GP penalties need the
second) while each step stays one fused kernel on the Triton backend.

A backend is a module with ``forward`` and ``grad`` as documented in ``reference.py``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Optional

import torch

Tensor = torch.Tensor


class FusedLeakyReLUFn(torch.autograd.Function):
    """``y = gain * leaky_relu(x + bias, alpha)``, saving only ``y`` for backward."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: Tensor,
        bias: Optional[Tensor],
        alpha: float,
        gain: float,
        dim: int,
        inplace: bool,
        backend: ModuleType,
    ) -> Tensor:
        y = backend.forward(x, bias, alpha, gain, dim, x if inplace else None)
        if inplace:
            ctx.mark_dirty(x)
        ctx.save_for_backward(y)
        ctx.cfg = (alpha, gain, dim, backend)
        ctx.bias_dtype = None if bias is None else bias.dtype
        return y

    @staticmethod
    def backward(ctx: Any, gy: Tensor):  # type: ignore[override]
        (y,) = ctx.saved_tensors
        has_bias = ctx.bias_dtype is not None
        want_bias = has_bias and ctx.needs_input_grad[1]
        out = _LeakyGrad.apply(gy, y, want_bias, *ctx.cfg)
        gx, gb = (out if want_bias else (out, None))
        if gb is not None:
            gb = gb.to(ctx.bias_dtype)
        if not ctx.needs_input_grad[0]:
            gx = None
        return gx, gb, None, None, None, None, None


class _LeakyGrad(torch.autograd.Function):
    """``L``: ``g -> (g * s(y), per-channel sum)`` (the second output only if ``want_bias``)."""

    @staticmethod
    def forward(ctx, g, y, want_bias, alpha, gain, dim, backend):  # type: ignore[override]
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(y)
        ctx.cfg = (alpha, gain, dim, backend)
        ctx.want_bias = want_bias
        gx, gb = backend.grad(g, y, alpha, gain, dim, None, want_bias)
        return (gx, gb) if want_bias else gx

    @staticmethod
    def backward(ctx, ggx, ggb=None):  # type: ignore[override]
        (y,) = ctx.saved_tensors
        if ggx is None and ggb is None:
            return (None,) * 7
        if ggx is None:
            ggx = torch.zeros_like(y)
        return _LeakyGradT.apply(ggx, ggb, y, *ctx.cfg), None, None, None, None, None, None


class _LeakyGradT(torch.autograd.Function):
    """``L^T``: ``(u, v) -> (u + broadcast(v)) * s(y)``; ``v`` may be None."""

    @staticmethod
    def forward(ctx, u, v, y, alpha, gain, dim, backend):  # type: ignore[override]
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(y)
        ctx.cfg = (alpha, gain, dim, backend)
        ctx.v_dtype = None if v is None else v.dtype
        gu, _ = backend.grad(u, y, alpha, gain, dim, v, False)
        return gu

    @staticmethod
    def backward(ctx, gg):  # type: ignore[override]
        if gg is None:
            return (None,) * 7
        (y,) = ctx.saved_tensors
        want_v = ctx.v_dtype is not None and ctx.needs_input_grad[1]
        out = _LeakyGrad.apply(gg, y, want_v, *ctx.cfg)
        gu, gv = (out if want_v else (out, None))
        if gv is not None:
            gv = gv.to(ctx.v_dtype)
        return gu, gv, None, None, None, None, None
