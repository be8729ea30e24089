"""Fused bias + LeakyReLU + gain: ``gain * leaky_relu(x + bias, alpha)`` in one pass.

The design follows StyleGAN2's ``bias_act`` (bias, lrelu and gain fused; backward from the
saved output only) without its build step: the GPU path is a Triton kernel compiled on first
use, and everything else runs a pure-PyTorch reference with the same numerics and autograd.

Backend choice, per call (``LEAKYLAB_FUSED_BACKEND``):

* ``auto`` (default): Triton for CUDA tensors when Triton works, the reference otherwise;
* ``triton``: always Triton — for CPU tensors this needs ``TRITON_INTERPRET=1`` set before this
  package is imported (that is how CI exercises the kernels without a GPU);
* ``torch``: always the reference.

Importing never fails: without Triton one warning is issued and the reference path is used.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from types import ModuleType
from typing import Optional

import torch

from . import reference
from .autograd import FusedLeakyReLUFn

ENV_BACKEND = "LEAKYLAB_FUSED_BACKEND"
BACKENDS = ("auto", "triton", "torch")

try:
    from . import triton_leaky as _triton_backend

    TRITON_IMPORT_ERROR: Optional[str] = None
except Exception as exc:  # ImportError, or a broken Triton install: both mean "no Triton here"
    _triton_backend = None
    TRITON_IMPORT_ERROR = f"{type(exc).__name__}: {exc}"
    warnings.warn(
        f"leakylab: Triton is unavailable ({TRITON_IMPORT_ERROR}); fused_leaky_relu will use "
        "the pure-PyTorch reference path (same results, slower on GPU).",
        RuntimeWarning,
        stacklevel=2,
    )

# Set when the Triton path failed its one-time self-test on a GPU under ``auto``.
_triton_broken: Optional[str] = None

__all__ = ["fused_leaky_relu", "check_params", "select_backend", "TRITON_IMPORT_ERROR"]


def check_params(alpha: float, gain: float) -> None:
    """Refuse parameters for which the output's sign does not give the input's sign.

    The backward pass reads the local slope from the saved output, which is only valid for
    ``alpha >= 0`` and ``gain > 0``; anything else would give silently wrong gradients.
    """
    if not (isinstance(alpha, numbers.Real) and math.isfinite(alpha) and alpha >= 0):
        raise ValueError(
            f"fused_leaky_relu needs a finite alpha >= 0 (got {alpha!r}): its backward pass "
            "reads the slope from the output's sign; use F.leaky_relu for negative slopes"
        )
    if not (isinstance(gain, numbers.Real) and math.isfinite(gain) and gain > 0):
        raise ValueError(
            f"fused_leaky_relu needs a finite gain > 0 (got {gain!r}): its backward pass "
            "reads the slope from the output's sign; multiply by the sign separately"
        )


def _requested_backend() -> str:
    name = os.environ.get(ENV_BACKEND, "auto").strip().lower() or "auto"
    if name not in BACKENDS:
        raise ValueError(f"{ENV_BACKEND}={name!r} is not one of {', '.join(BACKENDS)}")
    return name


def select_backend(x: torch.Tensor) -> ModuleType:
    """The backend module a call with tensor ``x`` would run on (see the module docstring)."""
    global _triton_broken
    name = _requested_backend()
    if name == "torch":
        return reference
    if name == "triton":
        if _triton_backend is None:
            raise RuntimeError(f"{ENV_BACKEND}=triton but Triton is unavailable: {TRITON_IMPORT_ERROR}")
        if not x.is_cuda and not _triton_backend.INTERPRET:
            raise RuntimeError(
                f"{ENV_BACKEND}=triton on a {x.device.type} tensor needs TRITON_INTERPRET=1 in the "
                "environment before common.kernels is imported"
            )
        return _triton_backend
    # auto
    if not x.is_cuda or _triton_backend is None or _triton_broken is not None:
        return reference
    if not _triton_backend.self_test_passed(x.device):
        try:
            _triton_backend.self_test(x.device)
        except torch.OutOfMemoryError:
            raise
        except Exception as exc:  # a GPU Triton cannot compile for: fall back, loudly, once
            _triton_broken = f"{type(exc).__name__}: {exc}"
            warnings.warn(
                f"leakylab: the Triton LeakyReLU kernel failed on {x.device} ({_triton_broken}); "
                "using the pure-PyTorch reference path from now on.",
                RuntimeWarning,
                stacklevel=3,
            )
            return reference
    return _triton_backend


# Opaque to torch.compile: Dynamo cannot trace the launch wrapper (layout logic, device guard,
# the interpreter), so a compiled model runs this op eagerly between its compiled graphs.
@torch.compiler.disable
def fused_leaky_relu(
    x: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    alpha: float = 0.2,
    gain: float = 1.0,
    dim: int = 1,
    inplace: bool = False,
) -> torch.Tensor:
    """``gain * leaky_relu(x + bias, alpha)`` with ``bias`` broadcast along ``dim``.

    Args:
        x: input of any shape with at least one dim; float16/bfloat16/float32 (float64 runs the
            reference path's arithmetic in float64). Any memory layout; contiguous and
            channels_last are processed without a copy.
        bias: optional per-channel vector of ``x.shape[dim]`` elements; may be float32 while
            ``x`` is 16-bit (mixed precision). Its gradient is returned in its own dtype.
        alpha: negative slope, ``>= 0``. gain: output scale, ``> 0`` (e.g. ``sqrt(2)``).
        dim: channel dim (1 for NCHW, -1 for (N, ..., C)); negative values count from the end.
        inplace: overwrite ``x`` with the result (for layers that own their input).

    Returns a tensor of ``x``'s dtype and layout. Only the output is kept for backward, so the
    pre-activation is freed as soon as the caller drops it; gradients of any order work.
    """
    check_params(alpha, gain)
    if x.dim() == 0:
        raise ValueError("fused_leaky_relu needs a tensor with at least one dim")
    if not -x.dim() <= dim < x.dim():
        raise ValueError(f"dim={dim} is out of range for a {x.dim()}-D input")
    dim = dim % x.dim()
    if not x.is_floating_point():
        raise ValueError(f"fused_leaky_relu needs a floating-point input (got {x.dtype})")
    if bias is not None:
        if bias.numel() != x.shape[dim] or bias.dim() != 1:
            raise ValueError(
                f"bias must be a 1-D tensor of x.shape[{dim}] = {x.shape[dim]} elements "
                f"(got shape {tuple(bias.shape)})"
            )
        if bias.device != x.device or not bias.is_floating_point():
            raise ValueError(f"bias must be a floating tensor on {x.device} (got {bias.dtype} on {bias.device})")
    backend = select_backend(x)
    return FusedLeakyReLUFn.apply(x, bias, float(alpha), float(gain), dim, bool(inplace), backend)
