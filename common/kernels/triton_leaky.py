"""Triton backend: one kernel per pass for bias + LeakyReLU + gain and its gradients.

Layout. Any non-overlapping, dense tensor (contiguous, channels_last, or any other permutation)
is, in memory, a 3-D array ``(O, C, I)``: ``C = x.shape[dim]`` channels, ``I = x.stride(dim)``
elements of the dims stored faster than the channel, ``O`` of those stored slower. NCHW
contiguous is ``(N, C, H*W)``; channels_last and (N, ..., C) are ``(N*H*W, C, 1)``. The kernels
walk 3-D tiles ``(BO, BC, BI)`` of that array, so the channel of an element is its tile index,
not an integer division per element, and the bias is loaded once per tile. Other layouts are
copied to contiguous first; the output always has the input's layout.

Passes (all arithmetic in float32, storage in the tensor's dtype):

* forward: read x (+ bias), write y — the minimum traffic.
* grad: read g and y, write ``gx = (g + add) * s(y)``; when the bias gradient is wanted, each
  tile also writes its per-channel partial sum of ``gx`` to a small buffer (``numel / (BO*BI)``
  floats) that one ``torch.sum`` reduces — deterministic, no atomics, no second pass over gx.
  ``add`` (a per-channel vector) is only used by the double-backward pass.

Tile sizes come from ``tile_config``; they target ~16 KiB per tensor per program and have not
been tuned on a GPU yet (the bench in ``bench/kernel.py`` is where that happens).
"""

from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl

from . import reference

Tensor = torch.Tensor

SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
TILE_BYTES = 16384  # per tensor per program: 4096 fp32 or 8192 16-bit elements
MAX_BC_TIMES_BI = 256  # channels per tile when rows are short: keep contiguous runs >= 1 KiB
MIN_PROGRAMS = 1024  # below this many tiles, shrink them (an H100 has 132 SMs)
MIN_TILE_BYTES = 2048  # 16 bytes per thread at 4 warps: still one full vector access each


@triton.jit
def _tile(pid, O, C, I, n_cb, n_ib, BO: tl.constexpr, BC: tl.constexpr, BI: tl.constexpr,
          INT64: tl.constexpr):
    """Offsets, mask and channel indices of tile ``pid`` (i-blocks fastest: memory order)."""
    ib = pid % n_ib
    rest = pid // n_ib
    cb = rest % n_cb
    ob = rest // n_cb
    o = ob * BO + tl.arange(0, BO)
    c = cb * BC + tl.arange(0, BC)
    if INT64:  # > 2**31 elements: promote before the multiplications overflow
        o = o.to(tl.int64)
    if BI == 1:
        # I == 1 (channels last): the channel is the fastest axis. Writing the offsets without I
        # keeps them provably contiguous and aligned (Triton then emits 16-byte vector accesses)
        # whether or not Triton specialises I == 1 itself.
        offs = o[:, None, None] * C + c[None, :, None] + tl.arange(0, 1)[None, None, :]
        mask = (o < O)[:, None, None] & (c < C)[None, :, None]
    else:
        i = ib * BI + tl.arange(0, BI)
        offs = o[:, None, None] * (C * I) + c[None, :, None] * I + i[None, None, :]
        mask = (o < O)[:, None, None] & (c < C)[None, :, None] & (i < I)[None, None, :]
    return offs, mask, c, ob, ib


@triton.jit
def _forward_kernel(x_ptr, b_ptr, y_ptr, O, C, I, n_cb, n_ib, gain, alpha_gain,
                    HAS_BIAS: tl.constexpr, BO: tl.constexpr, BC: tl.constexpr,
                    BI: tl.constexpr, INT64: tl.constexpr):
    offs, mask, c, ob, ib = _tile(tl.program_id(0), O, C, I, n_cb, n_ib, BO, BC, BI, INT64)
    z = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    if HAS_BIAS:
        b = tl.load(b_ptr + c, mask=c < C, other=0.0).to(tl.float32)
        z = z + b[None, :, None]
    y = tl.where(z > 0, z * gain, z * alpha_gain)
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _grad_kernel(g_ptr, y_ptr, add_ptr, gx_ptr, part_ptr, O, C, I, n_cb, n_ib, gain, alpha_gain,
                 HAS_ADD: tl.constexpr, WANT_BIAS: tl.constexpr, BO: tl.constexpr,
                 BC: tl.constexpr, BI: tl.constexpr, INT64: tl.constexpr):
    offs, mask, c, ob, ib = _tile(tl.program_id(0), O, C, I, n_cb, n_ib, BO, BC, BI, INT64)
    g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    y = tl.load(y_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    if HAS_ADD:
        a = tl.load(add_ptr + c, mask=c < C, other=0.0).to(tl.float32)
        g = g + a[None, :, None]
    gx = tl.where(y > 0, g * gain, g * alpha_gain)
    tl.store(gx_ptr + offs, gx.to(gx_ptr.dtype.element_ty), mask=mask)
    if WANT_BIAS:
        # Masked lanes must not leak into the sum (with HAS_ADD they would hold the bias).
        part = tl.sum(tl.sum(tl.where(mask, gx, 0.0), axis=2), axis=0)
        row = (ob * n_ib + ib).to(tl.int64)
        tl.store(part_ptr + row * C + c, part, mask=c < C)


def _pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _pow2_floor(n: int) -> int:
    return 1 << max(0, n.bit_length() - 1)


def tile_config(O: int, C: int, I: int, itemsize: int) -> tuple[int, int, int, int]:
    """Block sizes ``(BO, BC, BI)`` and ``num_warps`` for an ``(O, C, I)`` array.

    Big tensors get ~16 KiB tiles; small ones (the 4x4 DCGAN layers) get smaller tiles so that
    at least ~MIN_PROGRAMS programs keep every SM busy, but never below 16 bytes per thread.
    """
    numel = O * C * I
    tile = TILE_BYTES // itemsize
    tile = max(MIN_TILE_BYTES // itemsize, min(tile, _pow2_floor(max(numel // MIN_PROGRAMS, 1))))
    bi = min(_pow2(I), tile)
    bc = min(_pow2(C), max(1, MAX_BC_TIMES_BI // bi), tile // bi)
    bo = min(_pow2(O), max(1, tile // (bc * bi)))
    warps = max(4, min(8, (bo * bc * bi) // 1024))
    return bo, bc, bi, warps


def _needs_int64(O: int, C: int, I: int, bo: int) -> bool:
    # Masked lanes of the last o-block compute offsets too: keep those from wrapping as well.
    return triton.cdiv(O, bo) * bo * C * I >= 2**31


def dense_layout(t: Tensor, dim: int) -> Optional[tuple[int, int, int]]:
    """``(O, C, I)`` if ``t`` is non-overlapping and dense (any dim order), else None."""
    expected = 1
    for stride, size in sorted((t.stride(d), t.shape[d]) for d in range(t.dim()) if t.shape[d] != 1):
        if stride != expected:
            return None
        expected *= size
    C = t.shape[dim]
    if C == 1:  # a size-1 dim's stride is arbitrary; every element is channel 0
        return 1, 1, t.numel()
    I = t.stride(dim)
    return t.numel() // (C * I), C, I


def _same_layout(a: Tensor, b: Tensor) -> bool:
    return all(a.stride(d) == b.stride(d) for d in range(a.dim()) if a.shape[d] != 1)


def _new_like(t: Tensor) -> Tensor:
    """Output allocation (same layout as ``t``); the tests patch it to poison buffers with NaN."""
    return torch.empty_like(t)


class _DeviceGuard:
    """Make ``t``'s GPU current for the launch (Triton launches on the current device)."""

    def __init__(self, t: Tensor):
        self.ctx = torch.cuda.device(t.device) if t.is_cuda else None

    def __enter__(self):
        if self.ctx is not None:
            self.ctx.__enter__()

    def __exit__(self, *exc):
        if self.ctx is not None:
            self.ctx.__exit__(*exc)


def forward(
    x: Tensor, bias: Optional[Tensor], alpha: float, gain: float, dim: int, out: Optional[Tensor]
) -> Tensor:
    """Triton forward (see ``reference.forward`` for the contract)."""
    if x.dtype not in SUPPORTED_DTYPES:
        return reference.forward(x, bias, alpha, gain, dim, out)
    if x.numel() == 0:
        return out if out is not None else _new_like(x)
    layout = dense_layout(x, dim)
    src = x if layout is not None else x.contiguous()
    if layout is None:
        layout = dense_layout(src, dim)
    # In-place on a dense tensor writes over x directly; otherwise into a fresh buffer.
    y = out if (out is not None and src is x) else _new_like(src)
    O, C, I = layout
    bo, bc, bi, warps = tile_config(O, C, I, x.element_size())
    n_cb, n_ib = triton.cdiv(C, bc), triton.cdiv(I, bi)
    grid = (triton.cdiv(O, bo) * n_cb * n_ib,)
    b = bias.contiguous() if bias is not None else src  # dummy pointer when no bias
    with _DeviceGuard(src):
        _forward_kernel[grid](
            src, b, y, O, C, I, n_cb, n_ib, gain, alpha * gain,
            HAS_BIAS=bias is not None, BO=bo, BC=bc, BI=bi,
            INT64=_needs_int64(O, C, I, bo), num_warps=warps,
        )
    if out is not None and y is not out:
        out.copy_(y)
        return out
    return y


def grad(
    g: Tensor,
    y: Tensor,
    alpha: float,
    gain: float,
    dim: int,
    add: Optional[Tensor],
    want_bias: bool,
) -> tuple[Tensor, Optional[Tensor]]:
    """Triton gradient pass (see ``reference.grad`` for the contract)."""
    if y.dtype not in SUPPORTED_DTYPES or g.dtype != y.dtype:
        return reference.grad(g, y, alpha, gain, dim, add, want_bias)
    if y.numel() == 0:
        zeros = torch.zeros(y.shape[dim], device=y.device, dtype=torch.float32)
        return _new_like(y), (zeros if want_bias else None)
    layout = dense_layout(y, dim)
    if layout is None:
        y = y.contiguous()
        layout = dense_layout(y, dim)
    if not _same_layout(g, y):  # e.g. an expanded gradient from .sum(): one copy into y's layout
        g = torch.empty_like(y).copy_(g)
    gx = _new_like(y)
    O, C, I = layout
    bo, bc, bi, warps = tile_config(O, C, I, y.element_size())
    n_ob, n_cb, n_ib = triton.cdiv(O, bo), triton.cdiv(C, bc), triton.cdiv(I, bi)
    part = torch.empty((n_ob * n_ib, C), device=y.device, dtype=torch.float32) if want_bias else gx
    a = add.contiguous() if add is not None else y  # dummy pointer when unused
    with _DeviceGuard(y):
        _grad_kernel[(n_ob * n_cb * n_ib,)](
            g, y, a, gx, part, O, C, I, n_cb, n_ib, gain, alpha * gain,
            HAS_ADD=add is not None, WANT_BIAS=want_bias, BO=bo, BC=bc, BI=bi,
            INT64=_needs_int64(O, C, I, bo), num_warps=warps,
        )
    gb = None
    if want_bias:
        gb = part[0] if part.shape[0] == 1 else part.sum(0)
    return gx, gb


# Interpreter mode is fixed when the kernels are defined (TRITON_INTERPRET at import time).
INTERPRET = type(_forward_kernel).__name__ == "InterpretedFunction"

_self_tested: set = set()


def self_test(device: torch.device) -> None:
    """Compile and run both kernels once on ``device``; raises if Triton cannot run there."""
    x = torch.tensor([[-1.0, 2.0]], device=device)
    b = torch.tensor([0.5, -0.5], device=device)
    y = forward(x, b, 0.5, 2.0, 1, None)
    gx, gb = grad(torch.ones_like(y), y, 0.5, 2.0, 1, None, True)
    expect = torch.tensor([[-0.5, 3.0]], device=device)
    if not (torch.equal(y, expect) and torch.equal(gx, torch.tensor([[1.0, 2.0]], device=device))):
        raise RuntimeError(f"Triton LeakyReLU self-test gave wrong values: y={y.tolist()}, gx={gx.tolist()}")
    _self_tested.add(str(device))


def self_test_passed(device: torch.device) -> bool:
    return str(device) in _self_tested
