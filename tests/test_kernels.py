"""The fused bias + LeakyReLU + gain against the plain PyTorch composition.

The Triton kernels run under ``TRITON_INTERPRET=1`` (set in conftest.py before anything is
imported), so CI checks the same kernel code a GPU compiles. Every sampled case draws fresh
random inputs and compares the output, both gradients and an R1-style double backward with the
composition ``gain * F.leaky_relu(x + b, alpha)`` evaluated in float64 (the exact answer for the
given inputs), with tolerances fit for the storage dtype.
"""

from __future__ import annotations

import math
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import common.kernels as K
from common.kernels import fused_leaky_relu, reference

try:
    from common.kernels import triton_leaky as tl_backend
except ImportError:  # no Triton: the reference-path tests still run
    tl_backend = None
ROOT = Path(__file__).resolve().parents[1]
INTERPRET = tl_backend is not None and tl_backend.INTERPRET

# pyproject.toml declares Triton wherever this holds (its marker): a CI machine there must run the
# Triton tests below, not skip them.
TRITON_DECLARED_HERE = sys.platform.startswith("linux") and sys.version_info < (3, 15)
ON_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")

needs_triton_here = pytest.mark.skipif(
    tl_backend is None or not (INTERPRET or torch.cuda.is_available()),
    reason="Triton kernels need Triton, and a GPU or TRITON_INTERPRET=1 before import",
)
DEVICE = "cpu" if INTERPRET or not torch.cuda.is_available() else "cuda"


@pytest.fixture
def triton_forced(monkeypatch):
    """Force the Triton backend and poison every output buffer it allocates with NaN."""
    monkeypatch.setenv(K.ENV_BACKEND, "triton")

    def poisoned(t):
        return torch.full_like(t, float("nan"))

    monkeypatch.setattr(tl_backend, "_new_like", poisoned)


def composition(x, b, alpha, gain, dim):
    """The unfused reference: ``gain * leaky_relu(x + b, alpha)``."""
    if b is not None:
        x = x + reference.channel_view(b, x.dim(), dim % x.dim())
    return gain * F.leaky_relu(x, alpha)


# ---------------------------------------------------------------- sampled equivalence cases

SHAPES = [  # (shape, dims that make sense for it)
    ((1,), [0]), ((7,), [0, -1]), ((2, 3), [1, -1, 0]), ((5, 1), [1, 0]), ((3, 5, 7), [1, -1]),
    ((2, 3, 4, 5), [1, -1]), ((3, 1, 5, 2), [1]), ((2, 6, 3, 3), [1]), ((4, 17, 1, 1), [1]),
    ((1, 1, 1, 1), [1]), ((2, 33, 9), [1, 2]), ((0, 4, 3, 3), [1]), ((2, 0, 5), [1, -1]),
    ((3, 2, 5, 7), [1, 2]),
]
ALPHAS = [0.0, 0.01, 0.2, 1.0]
GAINS = [1.0, math.sqrt(2), 0.5, 3.0]


def _sample_cases(n: int = 48, seed: int = 20240603) -> list[dict]:
    rng = random.Random(seed)  # fixed case list (stable test ids); the tensors are fresh each run
    cases = []
    for k in range(n):
        shape, dims = SHAPES[k % len(SHAPES)]
        layouts = ["contiguous", "strided", "permuted"] + (["channels_last"] * 2 if len(shape) == 4 else [])
        case = dict(
            shape=shape,
            dim=rng.choice(dims),
            alpha=ALPHAS[k % len(ALPHAS)],
            gain=rng.choice(GAINS),
            bias=rng.random() < 0.75,
            dtype=rng.choice([torch.float32, torch.bfloat16]),
            layout=rng.choice(layouts),
        )
        case["bias_fp32"] = case["dtype"] == torch.bfloat16 and rng.random() < 0.3
        cases.append(case)
    return cases


def _case_id(c: dict) -> str:
    dt = "bf16" if c["dtype"] == torch.bfloat16 else "fp32"
    b = ("b32" if c["bias_fp32"] else "b") if c["bias"] else "nob"
    return f"{'x'.join(map(str, c['shape']))}-d{c['dim']}-a{c['alpha']}-g{c['gain']:.2f}-{b}-{dt}-{c['layout']}"


def _make_input(shape, dtype, layout, dim):
    """A fresh random tensor of ``shape`` in the requested memory layout."""
    if layout == "channels_last":
        return torch.randn(shape, device=DEVICE).to(dtype).to(memory_format=torch.channels_last)
    if layout == "strided":  # non-dense: every other element of a wider tensor
        wide = torch.randn(*shape[:-1], 2 * shape[-1], device=DEVICE).to(dtype)
        return wide[..., ::2]
    if layout == "permuted":  # dense, but in an unusual dim order: reversed
        rev = torch.randn(shape[::-1], device=DEVICE).to(dtype)
        return rev.permute(*reversed(range(len(shape))))
    return torch.randn(shape, device=DEVICE).to(dtype)


def _tol(dtype):
    # One rounding to the storage dtype after float32 arithmetic: half an ulp relative.
    return dict(rtol=2**-7, atol=1e-6) if dtype == torch.bfloat16 else dict(rtol=1e-5, atol=1e-6)


def _assert_rel_norm(got, want, tol, what):
    err = (got.double() - want).norm().item()
    ref = want.norm().item()
    assert err <= tol * ref + 1e-9, f"{what}: relative error {err / max(ref, 1e-30):.3g} > {tol}"


def _r1_grads(fn, x, b, w, scale, dim):
    """Gradients of an R1-style penalty ||dD/dx||^2 w.r.t. x, w, scale (if given) and b (if given).

    ``D = sum(w * h^2) / 2`` with ``h = fn(x * scale, b)``: dD/dh = w * h depends on x, so the
    penalty's gradient runs through a genuine second-order path of the activation (and, being a
    product rather than a sum, without cancellations that would drown bf16 in rounding noise).
    The head runs in ``w``'s dtype (float32 for bf16 activations, as in mixed precision).
    """
    pre = x if scale is None else x * reference.channel_view(scale, x.dim(), dim % x.dim())
    h = fn(pre, b).to(w.dtype)
    d_out = 0.5 * (w * h * h).sum()
    (gx,) = torch.autograd.grad(d_out, x, create_graph=True)
    penalty = gx.pow(2).sum()
    params = [x, w] + [t for t in (scale, b) if t is not None]
    return torch.autograd.grad(penalty, params)


@needs_triton_here
@pytest.mark.parametrize("case", _sample_cases(), ids=_case_id)
def test_triton_matches_composition(case, triton_forced):
    _check_case(case)


@pytest.mark.parametrize("case", _sample_cases()[::4], ids=_case_id)
def test_reference_matches_composition(case, monkeypatch):
    monkeypatch.setenv(K.ENV_BACKEND, "torch")
    _check_case(case)


def _check_case(case: dict) -> None:
    """Output, both gradients and an R1 double backward of one sampled case."""
    shape, dim, alpha, gain, dtype = case["shape"], case["dim"], case["alpha"], case["gain"], case["dtype"]
    x = _make_input(shape, dtype, case["layout"], dim).requires_grad_()
    b = None
    if case["bias"]:
        b_dtype = torch.float32 if case["bias_fp32"] else dtype
        b = torch.randn(shape[dim], device=DEVICE).to(b_dtype).requires_grad_()
    # float64 copies of the same values: the exact answer the composition should give.
    x64 = x.detach().double().requires_grad_()
    b64 = None if b is None else b.detach().double().requires_grad_()

    y = fused_leaky_relu(x, b, alpha, gain, dim)
    want = composition(x64, b64, alpha, gain, dim)
    assert y.dtype == dtype and y.shape == x.shape
    assert not torch.isnan(y).any(), "some output element was never written"
    if case["layout"] in ("channels_last", "permuted") and y.numel() > 1:
        assert y.stride() == x.stride(), "the output should keep the input's dense layout"
    torch.testing.assert_close(y.double(), want, **_tol(dtype))

    gy = torch.randn(shape, device=DEVICE).to(dtype)
    inputs = (x,) if b is None else (x, b)
    got_grads = torch.autograd.grad(y, inputs, gy)
    want_grads = torch.autograd.grad(want, (x64,) if b is None else (x64, b64), gy.double())
    assert not torch.isnan(got_grads[0]).any(), "some grad_x element was never written"
    torch.testing.assert_close(got_grads[0].double(), want_grads[0], **_tol(dtype))
    if b is not None:
        assert got_grads[1].dtype == b.dtype
        # Summed in float32, rounded once to the bias dtype.
        scale = (want_grads[0].abs().sum(dim=reference.reduce_dims(len(shape), dim % len(shape)))
                 if len(shape) > 1 else want_grads[0].abs())
        err = (got_grads[1].double() - want_grads[1]).abs()
        bound = _tol(b.dtype)["rtol"] * want_grads[1].abs() + 1e-5 * scale + 1e-6
        assert (err <= bound).all(), f"bias grad off by {err.max().item():.3g}"

    if x.numel() == 0:
        return
    # R1-style double backward through both Functions, against the float64 composition.
    # fp32: an upstream per-channel scale too, and a tight bound. bf16: x feeds the activation
    # directly, since a bf16 product before it could put an element on the other side of the
    # kink than the float64 truth, and the bound is per element (x, w) or per summed term (b).
    w = torch.randn(shape, device=DEVICE, requires_grad=True)
    scale_p = None
    if dtype == torch.float32:
        scale_p = (torch.rand(shape[dim], device=DEVICE) + 0.5).requires_grad_()
    got = _r1_grads(lambda t, bb: fused_leaky_relu(t, bb, alpha, gain, dim), x, b, w, scale_p, dim)
    leaves64 = [None if t is None else t.detach().double().requires_grad_() for t in (x, w, scale_p)]
    want = _r1_grads(lambda t, bb: composition(t, bb, alpha, gain, dim), leaves64[0], b64, leaves64[1], leaves64[2], dim)
    names = ["x", "w"] + (["scale"] if scale_p is not None else []) + (["b"] if b is not None else [])
    if dtype == torch.float32:
        for name, g_got, g_want in zip(names, got, want):
            _assert_rel_norm(g_got, g_want, 1e-4, f"R1 grad w.r.t. {name}")
        return
    for name, g_got, g_want in zip(names, got, want):
        err = (g_got.double() - g_want).abs()
        if name == "b":  # a sum of the per-element terms, which are exactly grad w.r.t. x here
            dims = reference.reduce_dims(len(shape), dim % len(shape))
            terms = want[0].abs().sum(dim=dims) if dims else want[0].abs()
            bound = 5e-2 * terms + 1e-6
        else:
            bound = 5e-2 * g_want.abs() + 1e-6
        assert (err <= bound).all(), f"R1 grad w.r.t. {name}: worst error {err.max().item():.3g}"


# ---------------------------------------------------------------- Triton-path specifics


@needs_triton_here
@pytest.mark.parametrize(
    "shape,dim,layout",
    [((2, 3, 5000), 1, "contiguous"),        # I > tile: several i-blocks per row
     ((40, 300, 1, 3), 1, "channels_last"),  # C > 256 channels per tile, many o-blocks
     ((70, 5, 33), 1, "contiguous")],        # many o- and c-blocks, ragged edges
)
def test_triton_multi_tile(shape, dim, layout, triton_forced):
    x = _make_input(shape, torch.float32, layout, dim).requires_grad_()
    b = torch.randn(shape[dim], device=DEVICE, requires_grad=True)
    y = fused_leaky_relu(x, b, 0.2, math.sqrt(2), dim)
    want = composition(x, b, 0.2, math.sqrt(2), dim)
    torch.testing.assert_close(y, want)
    gy = torch.randn_like(y)
    got = torch.autograd.grad(y, (x, b), gy)
    exp = torch.autograd.grad(want, (x, b), gy)
    torch.testing.assert_close(got[0], exp[0])
    torch.testing.assert_close(got[1], exp[1], rtol=1e-5, atol=1e-4)
    # The bias gradient comes from fixed per-tile partials: bitwise deterministic.
    again = torch.autograd.grad(fused_leaky_relu(x, b, 0.2, math.sqrt(2), dim), (x, b), gy)
    assert torch.equal(again[1], got[1])


@needs_triton_here
@pytest.mark.parametrize(
    "shape,dim,layout,dtype",
    [((3, 5, 4, 4), 1, "contiguous", torch.float32), ((3, 5, 4, 4), 1, "channels_last", torch.float32),
     ((6, 9), -1, "contiguous", torch.float32), ((2, 7, 3, 5), 1, "contiguous", torch.bfloat16)],
)
def test_triton_double_backward_through_bias_grad(shape, dim, layout, dtype, triton_forced):
    """A penalty on dD/db as well as dD/dx sends a per-channel gradient into the adjoint pass
    (the kernel's broadcast-add input), and a third backward through both Functions."""
    def penalty_grads(fn, x, b, w):
        h = fn(x, b).to(w.dtype)
        d_out = 0.5 * (w * h * h).sum()
        gx, gb = torch.autograd.grad(d_out, (x, b), create_graph=True)
        penalty = gx.float().pow(2).sum() + gb.float().pow(2).sum()
        (g_of_gx_b,) = torch.autograd.grad(penalty, (b,), create_graph=True)
        # Third order: differentiate a function of the penalty's gradient once more.
        return torch.autograd.grad(penalty + g_of_gx_b.pow(2).sum(), (x, b, w))

    x = _make_input(shape, dtype, layout, dim).requires_grad_()
    b = torch.randn(shape[dim], device=DEVICE).to(dtype).requires_grad_()
    w = torch.randn(shape, device=DEVICE, requires_grad=True)
    got = penalty_grads(lambda t, bb: fused_leaky_relu(t, bb, 0.2, 1.3, dim), x, b, w)
    leaves = [t.detach().double().requires_grad_() for t in (x, b, w)]
    want = penalty_grads(lambda t, bb: composition(t, bb, 0.2, 1.3, dim), *leaves)
    tol = 1e-4 if dtype == torch.float32 else 5e-2
    for name, g_got, g_want in zip("xbw", got, want):
        _assert_rel_norm(g_got, g_want, tol, f"penalty grad w.r.t. {name}")


@needs_triton_here
@pytest.mark.parametrize("backend", ["triton", "torch"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_inplace(backend, layout, monkeypatch):
    monkeypatch.setenv(K.ENV_BACKEND, backend)
    leaf = _make_input((3, 6, 4, 5), torch.float32, layout, 1).requires_grad_()
    b = torch.randn(6, device=DEVICE, requires_grad=True)
    x = leaf * 1.5  # a non-leaf the "layer" owns
    ptr = x.data_ptr()
    y = fused_leaky_relu(x, b, 0.1, 2.0, 1, inplace=True)
    assert y.data_ptr() == ptr and x.data_ptr() == ptr and y.stride() == leaf.stride()
    leaf2 = leaf.detach().clone().requires_grad_()
    b2 = b.detach().clone().requires_grad_()
    want = composition(leaf2 * 1.5, b2, 0.1, 2.0, 1)
    torch.testing.assert_close(y, want)
    gy = torch.randn_like(want)
    torch.testing.assert_close(torch.autograd.grad(y, (leaf, b), gy), torch.autograd.grad(want, (leaf2, b2), gy))
    with pytest.raises(RuntimeError, match="in-place"):  # autograd still guards leaves
        fused_leaky_relu(leaf, b, inplace=True)


@needs_triton_here
def test_expanded_grad_and_mixed_precision(triton_forced):
    x = torch.randn(4, 7, 3, device=DEVICE).to(torch.bfloat16).requires_grad_()
    b = torch.randn(7, device=DEVICE, requires_grad=True)  # float32 parameter, bf16 activations
    y = fused_leaky_relu(x, b, 0.2, 1.0, 1)
    assert y.dtype == torch.bfloat16
    y.sum().backward()  # the incoming gradient is an expanded (stride-0) tensor
    assert b.grad.dtype == torch.float32 and x.grad.dtype == torch.bfloat16
    z = x.detach().double() + b.detach().double().view(1, 7, 1)
    slope = torch.where(z > 0, 1.0, 0.2).double()
    # Within one bf16 rounding (the interpreter truncates where a GPU rounds to nearest).
    torch.testing.assert_close(x.grad.double(), slope, rtol=2**-7, atol=0)
    # The bias gradient is summed from the float32 slopes, before rounding to bf16.
    torch.testing.assert_close(b.grad.double(), slope.sum((0, 2)), rtol=1e-6, atol=1e-6)


@needs_triton_here
def test_triton_float16(triton_forced):
    x = torch.randn(4, 6, 5, device=DEVICE).half().requires_grad_()
    b = torch.randn(6, device=DEVICE).half().requires_grad_()
    y = fused_leaky_relu(x, b, 0.01, 2.0, 1)
    x64, b64 = x.detach().double().requires_grad_(), b.detach().double().requires_grad_()
    want = composition(x64, b64, 0.01, 2.0, 1)
    torch.testing.assert_close(y.double(), want, rtol=2**-10, atol=1e-6)
    gy = torch.randn_like(y)
    got = torch.autograd.grad(y, (x, b), gy)
    exp = torch.autograd.grad(want, (x64, b64), gy.double())
    torch.testing.assert_close(got[0].double(), exp[0], rtol=2**-10, atol=1e-6)
    torch.testing.assert_close(got[1].double(), exp[1], rtol=2**-10, atol=1e-4)


def test_only_the_output_is_saved():
    x = torch.randn(2, 3, 4, requires_grad=True)
    b = torch.randn(3, requires_grad=True)
    y = fused_leaky_relu(x * 2, b)
    saved = y.grad_fn.saved_tensors
    assert len(saved) == 1 and saved[0].data_ptr() == y.data_ptr()


def test_auto_backend_on_cpu_is_reference(monkeypatch):
    monkeypatch.setenv(K.ENV_BACKEND, "auto")
    assert K.select_backend(torch.zeros(2)) is reference
    monkeypatch.setenv(K.ENV_BACKEND, "torch")
    assert K.select_backend(torch.zeros(2)) is reference
    monkeypatch.setenv(K.ENV_BACKEND, "cuda-please")
    with pytest.raises(ValueError, match="LEAKYLAB_FUSED_BACKEND"):
        fused_leaky_relu(torch.zeros(2, 2))


@pytest.mark.skipif(not (ON_CI and TRITON_DECLARED_HERE), reason="Triton is only required on Linux CI")
def test_triton_is_installed_where_declared():
    """Without this, a CI machine missing Triton would skip every kernel test and still pass."""
    assert tl_backend is not None, (
        f"pyproject.toml declares Triton on Linux but it cannot be imported ({K.TRITON_IMPORT_ERROR}); "
        "install the package with its dependencies (pip install -e '.[dev]')"
    )
    assert INTERPRET or torch.cuda.is_available(), "the Triton tests need TRITON_INTERPRET=1 (conftest.py) or a GPU"


@pytest.mark.skipif(tl_backend is None, reason="needs Triton")
def test_forced_triton_on_cpu_without_interpreter_is_refused(monkeypatch):
    monkeypatch.setenv(K.ENV_BACKEND, "triton")
    monkeypatch.setattr(tl_backend, "INTERPRET", False)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        fused_leaky_relu(torch.zeros(2, 2))


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("backend", ["triton", "torch"])
@pytest.mark.parametrize(
    "kwargs,match",
    [(dict(alpha=-0.1), "alpha >= 0"), (dict(alpha=float("nan")), "alpha"), (dict(gain=0.0), "gain > 0"),
     (dict(gain=-1.0), "gain > 0"), (dict(gain=float("inf")), "gain"), (dict(dim=3), "dim=3"),
     (dict(bias=torch.zeros(4)), "bias must be"), (dict(bias=torch.zeros(3, 1)), "bias must be")],
)
def test_refuses_invalid_arguments(backend, kwargs, match, monkeypatch):
    monkeypatch.setenv(K.ENV_BACKEND, backend)
    args = dict(alpha=0.2, gain=1.0, dim=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fused_leaky_relu(torch.randn(2, 3, 2), **args)


def test_refuses_integer_and_scalar_inputs():
    with pytest.raises(ValueError, match="floating"):
        fused_leaky_relu(torch.ones(2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="at least one dim"):
        fused_leaky_relu(torch.tensor(1.0))


# ---------------------------------------------------------------- reference path, float64


@pytest.mark.parametrize(
    "shape,dim,alpha,gain,with_bias",
    [((3, 4, 5), 1, 0.2, math.sqrt(2), True), ((4, 3), -1, 0.01, 1.0, True),
     ((2, 3, 2, 2), 1, 1.0, 0.7, False), ((5,), 0, 0.3, 2.5, True)],
)
def test_reference_gradcheck_and_gradgradcheck(shape, dim, alpha, gain, with_bias, monkeypatch):
    monkeypatch.setenv(K.ENV_BACKEND, "torch")
    # Keep pre-activations away from 0, where finite differences straddle the kink.
    x = torch.randn(shape, dtype=torch.float64)
    x = (x + 0.1 * x.sign()).requires_grad_()
    inputs = [x]
    if with_bias:
        inputs.append(torch.zeros(shape[dim], dtype=torch.float64, requires_grad=True))

    def fn(*args):
        return fused_leaky_relu(args[0], args[1] if with_bias else None, alpha, gain, dim)

    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs)

    def first_grads(*args):  # third order: the two Functions keep calling each other
        return torch.autograd.grad(fn(*args).pow(2).sum(), args, create_graph=True)

    assert torch.autograd.gradgradcheck(first_grads, inputs)


def test_reference_matches_composition_low_precision(monkeypatch):
    monkeypatch.setenv(K.ENV_BACKEND, "torch")
    x = torch.randn(3, 8, 5).to(torch.bfloat16)
    b = torch.randn(8).to(torch.bfloat16)
    want = composition(x.double(), b.double(), 0.2, 1.5, 1)
    torch.testing.assert_close(fused_leaky_relu(x, b, 0.2, 1.5).double(), want, **_tol(torch.bfloat16))


# ---------------------------------------------------------------- import without Triton / GPU compile


def test_import_without_triton_warns_once_and_falls_back():
    code = (
        "import sys, warnings\n"
        "sys.modules['triton'] = None\n"  # makes `import triton` raise ImportError
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    import common.kernels as K\n"
        "    import torch\n"
        "    y = K.fused_leaky_relu(torch.tensor([[-1.0, 2.0]]), torch.tensor([0.5, 0.5]), 0.5, 2.0)\n"
        "msgs = [str(x.message) for x in w if 'Triton is unavailable' in str(x.message)]\n"
        "assert len(msgs) == 1, msgs\n"
        "assert y.tolist() == [[-0.5, 5.0]], y\n"
        "import os; os.environ['LEAKYLAB_FUSED_BACKEND'] = 'triton'\n"
        "try:\n"
        "    K.fused_leaky_relu(torch.zeros(1, 1))\n"
        "except RuntimeError as e:\n"
        "    assert 'Triton is unavailable' in str(e)\n"
        "else:\n"
        "    raise AssertionError('forcing triton without Triton must fail')\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != K.ENV_BACKEND}
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


def _compile_for_hopper() -> None:
    """Compile both kernels for sm_90 (no GPU needed: Triton ships ptxas) and check that the
    loads and stores came out as 16-byte vectors. Runs in a process without the interpreter."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    assert not tl_backend.INTERPRET
    aligned = [["tt.divisibility", 16]]
    common_sig = {"O": "i32", "C": "i32", "I": "i32", "n_cb": "i32", "n_ib": "i32",
                  "gain": "fp32", "alpha_gain": "fp32", "BO": "constexpr", "BC": "constexpr",
                  "BI": "constexpr", "INT64": "constexpr"}
    for dt, (O, C, I) in [("fp32", (128, 64, 1024)), ("bf16", (128, 512, 16)), ("bf16", (8192, 64, 1)),
                          ("bf16", (128, 256, 4096)), ("fp32", (2**20, 64, 1))]:
        bo, bc, bi, warps = tl_backend.tile_config(O, C, I, 4 if dt == "fp32" else 2)
        blocks = {"BO": bo, "BC": bc, "BI": bi, "INT64": False}
        fwd_sig = {"x_ptr": f"*{dt}", "b_ptr": "*fp32", "y_ptr": f"*{dt}", **common_sig, "HAS_BIAS": "constexpr"}
        grad_sig = {"g_ptr": f"*{dt}", "y_ptr": f"*{dt}", "add_ptr": "*fp32", "gx_ptr": f"*{dt}",
                    "part_ptr": "*fp32", **common_sig, "HAS_ADD": "constexpr", "WANT_BIAS": "constexpr"}
        one = {}
        if I == 1:  # Triton specialises integer arguments equal to 1 at launch
            fwd_sig["I"] = grad_sig["I"] = "constexpr"
            one = {"I": 1}
        builds = [
            (tl_backend._forward_kernel, fwd_sig, {**blocks, "HAS_BIAS": True, **one}),
            (tl_backend._grad_kernel, grad_sig, {**blocks, "HAS_ADD": False, "WANT_BIAS": True, **one}),
        ]
        for fn, sig, consts in builds:
            names = list(sig)
            # What Triton's launcher assumes for aligned pointers and multiples of 16.
            attrs = {(names.index(n),): aligned for n in names
                     if sig[n].startswith("*") or (n in ("C", "I") and sig[n] == "i32")}
            kernel = triton.compile(ASTSource(fn, sig, consts, attrs), target=GPUTarget("cuda", 90, 32),
                                    options={"num_warps": warps})
            ptx = kernel.asm["ptx"]
            where = f"{fn.__name__} {dt} {(O, C, I)}"
            assert re.search(r"ld\.global(\.[\w:]+)*\.v4", ptx), f"{where}: no vector loads"
            assert re.search(r"st\.global(\.[\w:]+)*\.v4", ptx), f"{where}: no vector stores"
    print("compiled")


# The last line of a failed compile that says "this machine cannot compile offline", not "the
# kernel is wrong": no ptxas that runs here (Triton's RuntimeError when none answers --version,
# or the OS refusing to execute one), or a Triton without the ahead-of-time compile API. A
# ptxas that runs and rejects the PTX raises PTXASError, which matches none of these.
_NO_OFFLINE_COMPILER = re.compile(
    r"^(?:RuntimeError: Cannot find ptxas"
    r"|(?:PermissionError|FileNotFoundError|OSError): \[Errno \d+\] [^:]*: '[^']*ptxas[^']*'"
    r"|(?:ImportError|ModuleNotFoundError): .*\btriton\b)"
)


def _offline_compiler_missing(stderr: str) -> str | None:
    """The environment problem a failed sm_90 compile ran into, or None if it was something else."""
    lines = stderr.strip().splitlines()
    return lines[-1] if lines and _NO_OFFLINE_COMPILER.match(lines[-1]) else None


def _compile_for_hopper_in_subprocess(cache: Path, **env_extra: str) -> subprocess.CompletedProcess:
    code = "import sys; sys.path.insert(0, 'tests'); import test_kernels; test_kernels._compile_for_hopper()"
    env = {**os.environ, "TRITON_INTERPRET": "0", "TRITON_CACHE_DIR": str(cache), **env_extra}
    env.pop(K.ENV_BACKEND, None)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(tl_backend is None, reason="needs Triton")
def test_kernels_compile_for_hopper_with_vector_loads(tmp_path):
    """The interpreter accepts code a GPU compiler rejects: compile for sm_90 in a subprocess."""
    res = _compile_for_hopper_in_subprocess(tmp_path)
    if res.returncode != 0 and (problem := _offline_compiler_missing(res.stderr)):
        pytest.skip(f"this machine cannot compile for sm_90 offline: {problem}")
    assert res.returncode == 0 and "compiled" in res.stdout, res.stderr[-3000:]


FAKE_PTXAS = """#!/bin/sh
if [ "$1" = "--version" ]; then
  echo "Cuda compilation tools, release 12.8, V12.8.93"
  exit 0
fi
echo "ptxas fatal   : this test double rejects every kernel" >&2
exit 1
"""


@pytest.mark.skipif(tl_backend is None, reason="needs Triton")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the stand-in ptxas is a shell script")
def test_hopper_compile_skips_only_when_ptxas_cannot_run(tmp_path):
    """A ptxas that cannot be executed is an environment problem (the test above skips); a ptxas
    that runs and rejects the kernel is the failure that test exists to catch (it must not skip)."""
    fake = tmp_path / "ptxas"
    fake.write_text(FAKE_PTXAS)
    fake.chmod(0o755)
    try:
        subprocess.run([str(fake), "--version"], check=True, capture_output=True, timeout=30)
    except OSError as exc:  # e.g. a noexec temporary folder: the stand-in itself cannot run
        pytest.skip(f"cannot execute a stand-in ptxas from {tmp_path}: {exc}")
    rejected = _compile_for_hopper_in_subprocess(tmp_path / "cache1", TRITON_PTXAS_PATH=str(fake))
    assert rejected.returncode != 0 and "rejects every kernel" in rejected.stdout + rejected.stderr, (
        rejected.stderr[-3000:])
    assert _offline_compiler_missing(rejected.stderr) is None, rejected.stderr[-3000:]

    fake.chmod(0o644)  # present but not executable: Triton's version probe gets EACCES
    unusable = _compile_for_hopper_in_subprocess(tmp_path / "cache2", TRITON_PTXAS_PATH=str(fake))
    assert unusable.returncode != 0
    assert _offline_compiler_missing(unusable.stderr), unusable.stderr[-3000:]


# ---------------------------------------------------------------- the benchmark script


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the bench is meant to write its table")
def test_bench_refuses_without_cuda_and_smoke_writes_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != K.ENV_BACKEND}
    cmd = [sys.executable, str(ROOT / "bench" / "kernel.py"), "--out", str(tmp_path)]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "no CUDA GPU" in res.stderr, res.stderr
    res = subprocess.run(cmd + ["--smoke", "--dtypes", "fp32"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "nothing was written" in res.stdout and "| eager | fp32 |" in res.stdout
    assert list(tmp_path.iterdir()) == []


@needs_triton_here
def test_inside_torch_compile(triton_forced):
    """A compiled model runs the op eagerly between its graphs (it is opaque to Dynamo)."""
    def f(x, b):
        return fused_leaky_relu(x * 2, b, 0.2, 1.4).sum()

    x = torch.randn(2, 3, 4, device=DEVICE, requires_grad=True)
    b = torch.randn(3, device=DEVICE, requires_grad=True)
    got = torch.autograd.grad(torch.compile(f, backend="eager")(x, b), (x, b))
    want = torch.autograd.grad(composition(x * 2, b, 0.2, 1.4, 1).sum(), (x, b))
    torch.testing.assert_close(got, want)
