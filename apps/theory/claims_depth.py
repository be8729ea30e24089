"""Claims 3 and 4: signal propagation through depth, Lipschitz constants, sigmoid's vanishing gradient.

Claim 3 runs deep bias-free MLPs of ``nn.Linear`` + ``nn.LeakyReLU`` and reads forward
pre-activation variances and backward gradient variances (autograd, ``retain_grad``) per layer.
The per-layer rate comes from a log-linear fit of variance against depth (see ``log_rate``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from apps.theory.claims_local import local_gradient
from apps.theory.results import Check, ClaimResult, Z_TOL, fmt, log_check, mean_and_se

from common.init import leaky_init_
from common.rng import stream_seed


def leaky_aware_var(width: int, alpha: float) -> float:
    """σ² = 2 / (fan_in (1 + α²)): the variance claim 3 (docs/science.md) says keeps signals constant."""
    return 2.0 / (width * (1.0 + alpha * alpha))


def build_mlp(width: int, depth: int, alpha: float, init: str) -> nn.Sequential:
    """``depth`` × (bias-free Linear → LeakyReLU(α)), initialised by ``init``:

    ``leaky``: the product's leaky-aware init (``common.init.leaky_init_``, which reads α from the
    activation after each layer); ``lecun``: σ² = 1/fan_in; ``torch_kaiming``: torch's
    ``kaiming_normal_`` with its default a = 0 (σ² = 2/fan_in whatever α is — the pitfall).
    """
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width, bias=False), nn.LeakyReLU(alpha) if alpha else nn.ReLU()]
    net = nn.Sequential(*layers)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    if init == "leaky":
        leaky_init_(net)  # the product's init: α read from the activation after each layer
    elif init == "torch_kaiming":
        for lin in linears:
            nn.init.kaiming_normal_(lin.weight)
    else:
        for lin in linears:
            nn.init.normal_(lin.weight, 0.0, math.sqrt(1.0 / width))
    return net


def propagate(net: nn.Sequential, x: torch.Tensor, v: torch.Tensor) -> tuple[list[float], list[float]]:
    """Forward variance of every pre-activation h_l and backward variance of dL/dh_l, L = Σ v·h_L."""
    hs: list[torch.Tensor] = []
    h = x
    for mod in net:
        h = mod(h)
        if isinstance(mod, nn.Linear):
            h.retain_grad()
            hs.append(h)
    (h * v).sum().backward()  # h is the last activation's output
    fwd = [float(t.detach().pow(2).mean()) for t in hs]
    bwd = [float(t.grad.pow(2).mean()) for t in hs]  # type: ignore[union-attr]
    return fwd, bwd


def log_rate(logs: torch.Tensor) -> tuple[float, float, float]:
    """Per-layer log-rate of ln-variance curves (draws × layers), its SE, and the raw
    geometric-mean last/first ratio (no correction), for the report.

    The per-layer increments d are (nearly) independent across layers and draws — each layer
    draws fresh weights — so the SE is sd(d)/√n over all of them.
    """
    d = logs.diff(dim=1).flatten()
    log_rate_ = d.mean() + 0.5 * d.var(unbiased=True)
    se = d.std(unbiased=True) / math.sqrt(d.numel())
    raw = (logs[:, -1] - logs[:, 0]).mean().exp()
    return float(log_rate_), float(se), float(raw)


def claim3(seed: int, quick: bool) -> ClaimResult:
    """Per-layer variance rate (1+α²)/2 · fan·σ²; leaky-aware Kaiming keeps it at 1."""
    width, depth, batch, draws = (128, 30, 128, 6) if quick else (256, 40, 128, 8)
    # (label, α, init, fan·σ²); the last two are the classic mistakes.
    setups = [
        ("leaky-aware, α=0 (ReLU)", 0.0, "leaky", width * leaky_aware_var(width, 0.0)),
        ("leaky-aware, α=0.2", 0.2, "leaky", width * leaky_aware_var(width, 0.2)),
        ("leaky-aware, α=0.5", 0.5, "leaky", width * leaky_aware_var(width, 0.5)),
        ("σ²=1/fan, α=0.2", 0.2, "lecun", 1.0),
        ("torch kaiming_normal_ (a=0), α=0.5", 0.5, "torch_kaiming", 2.0),
    ]
    checks: list[Check] = []
    controls: list[Check] = []
    curves: dict[str, dict] = {}
    for k, (label, alpha, init, fan_var) in enumerate(setups):
        rate = (1 + alpha * alpha) / 2 * fan_var
        logs_f, logs_b = [], []
        for d in range(draws):
            torch.manual_seed(stream_seed(seed, "theory.init", 3, k, d))
            net = build_mlp(width, depth, alpha, init)
            x = torch.randn(batch, width)
            v = torch.randn(batch, width)
            fwd, bwd = propagate(net, x, v)
            logs_f.append(torch.tensor(fwd, dtype=torch.float64).log())
            logs_b.append(torch.tensor(bwd, dtype=torch.float64).log())
        # Backward variances grow going *down*; flip them so both directions read "per layer
        # travelled".
        lf, lb = torch.stack(logs_f), torch.stack(logs_b).flip(1)
        curves[label] = {"forward": lf.mean(0).exp().tolist(),
                         "backward": lb.flip(1).mean(0).exp().tolist(), "rate": rate}
        for direction, logs in (("forward", lf), ("backward", lb)):
            m, se, raw = log_rate(logs)
            checks.append(log_check(f"{label}: {direction} per-layer rate", rate, m, se))
            end = log_check(f"{label}: {direction} variance last/first", rate ** (depth - 1),
                            (depth - 1) * m, (depth - 1) * se)
            if init == "leaky":
                checks.append(end)
            else:
                controls.append(log_check(
                    f"{label}: {direction} last/first against 'constant' (predicted drift "
                    f"{fmt(rate ** (depth - 1))})", 1.0, (depth - 1) * m, (depth - 1) * se))
            curves[label][f"{direction}_raw_ratio"] = raw
            if init == "torch_kaiming" and direction == "forward":
                controls.append(log_check(f"{label}: forward rate against the α-blind "
                                          "fan·σ²/2 = 1", fan_var / 2, m, se))
    return ClaimResult(
        3, "Signal propagation through depth",
        "Through depth the expected squared gradient norm scales per layer by (1+α²)/2 · fan·σ²; "
        "Kaiming init with σ² = 2/(fan_in(1+α²)) keeps forward and backward variance constant; "
        "other inits make it vanish or explode.",
        checks, controls,
        notes=[f"{depth} bias-free nn.Linear({width}, {width}) layers with nn.LeakyReLU between, "
               f"batch {batch}, {draws} weight draws per init. ln(variance) against depth is a "
               "random walk with drift; its log-linear fit (GLS slope) is the mean per-layer "
               "increment d of ln variance, pooled over layers and draws, with SE sd(d)/√n. "
               "E[ln X] = ln E[X] − ½Var(ln X) at finite width, so the rate is "
               "exp(mean d + ½ var d) (log-normal correction; the claim is about the "
               "expected variance). last/first = rate^(depth−1). Tolerance: "
               f"{Z_TOL:g} SE on the log scale, shown as a factor ×/÷ exp({Z_TOL:g}·SE).",
               "leaky-aware init: the product's common.init.leaky_init_ (predicted "
               "σ² = 2/(fan_in(1+α²)); the measured rate 1 confirms it draws exactly that)."],
        series={"depth": curves},
    )


def max_ratio(act: nn.Module, gen: torch.Generator, n: int) -> float:
    """Empirical Lipschitz constant sup |f(a) − f(b)| / |a − b| over ``n`` random pairs (fp64):
    wide pairs, close pairs and pairs straddling 0, where a kink would show."""
    a = torch.randn(3, n, generator=gen, dtype=torch.float64) * 3
    b = a.clone()
    b[0] = torch.randn(n, generator=gen, dtype=torch.float64) * 3  # anywhere
    b[1] = a[1] + torch.randn(n, generator=gen, dtype=torch.float64) * 1e-3  # close
    b[2] = -a[2] * torch.rand(n, generator=gen, dtype=torch.float64)  # other side of 0
    with torch.no_grad():
        ratio = (act(a) - act(b)).abs() / (a - b).abs()
    return float(ratio[torch.isfinite(ratio)].max())


def sigmoid_chain(width: int, depth: int, act: nn.Module, seed: int) -> tuple[torch.Tensor, list[float], list[torch.Tensor]]:
    """Per-sample ‖dL/da_l‖ through ``depth`` × (Linear → act), L = v·a_L, in fp64.

    Returns (norms: batch × (depth+1), from the input a_0 to the top a_L; spectral norms
    ‖W_l‖₂; the per-layer norms are what the 0.25·‖W‖₂ bound constrains).
    """
    torch.manual_seed(seed)
    lins = [nn.Linear(width, width).double() for _ in range(depth)]
    for lin in lins:
        nn.init.normal_(lin.weight, 0.0, 1.0 / math.sqrt(width))  # σ² = 1/fan
        nn.init.normal_(lin.bias, 0.0, 0.1)
    x = torch.randn(256, width, dtype=torch.float64).requires_grad_(True)
    acts = [x]
    for lin in lins:
        a = act(lin(acts[-1]))
        a.retain_grad()
        acts.append(a)
    v = torch.randn_like(acts[-1])
    (acts[-1] * v).sum().backward()
    norms = torch.stack([t.grad.norm(dim=1) for t in acts], dim=1)  # type: ignore[union-attr]
    spectral = [float(torch.linalg.matrix_norm(lin.weight.detach(), ord=2)) for lin in lins]
    return norms, spectral, acts


def rel_norms(norms: torch.Tensor) -> list[float]:
    """Geometric mean over samples of ‖dL/da_l‖ / ‖dL/da_L‖, for the plot."""
    return (norms.log() - norms[:, -1:].log()).mean(0).exp().tolist()


def claim4(seed: int, quick: bool) -> ClaimResult:
    """LeakyReLU is 1-Lipschitz for 0 ≤ α ≤ 1; sigmoid' ≤ 0.25 makes gradients vanish with depth."""
    gen = torch.Generator().manual_seed(seed + 40)
    n_pairs = 20000 if quick else 100000
    fp_tol = 1e-9  # fp64 rounding of differences of O(1) numbers 1e-3 apart, with margin
    checks: list[Check] = []
    lips = {}
    for alpha in (0.0, 0.01, 0.2, 0.5, 1.0):
        lips[alpha] = max_ratio(nn.LeakyReLU(alpha), gen, n_pairs)
        checks.append(Check(f"LeakyReLU(α={alpha}): sup |f(a)−f(b)|/|a−b|", 1.0, lips[alpha],
                            fp_tol, "le", "fp64 rounding"))
    # sigmoid' by autograd on a fine grid: near its peak σ'(x) ≈ ¼ − x²/16, so a grid of step h
    # misses the maximum by at most (h/2)²/16 — the tolerance.
    h = 1e-4
    grid = torch.arange(-8.0, 8.0 + h / 2, h, dtype=torch.float64) + h / 3  # 0 not on the grid
    sig_max = float(local_gradient(nn.Sigmoid(), grid).max())
    checks.append(Check("max sigmoid'(x) (grid, autograd)", 0.25, sig_max, (h / 2) ** 2 / 16 + 1e-15,
                        "eq", "grid step h: (h/2)²/16"))
    # Through depth: per sample and layer ‖dL/da_{l-1}‖ ≤ 0.25 ‖W_l‖₂ ‖dL/da_l‖, hence
    # ‖dL/dx‖ ≤ Π(0.25 ‖W_l‖₂) ‖dL/da_L‖. Measured as the worst ratio to the bound (≤ 1).
    width, depth = (64, 12) if quick else (64, 20)
    norms, spectral, _ = sigmoid_chain(width, depth, nn.Sigmoid(), seed + 41)
    per_layer = norms[:, :-1] / (norms[:, 1:] * 0.25 * torch.tensor(spectral, dtype=torch.float64))
    bound_log = sum(math.log(0.25 * s) for s in spectral)
    through = (norms[:, 0].log() - norms[:, -1].log() - bound_log).exp()
    checks.append(Check("sigmoid: worst per-layer ‖g_{l−1}‖ / (0.25‖W_l‖₂‖g_l‖)", 1.0,
                        float(per_layer.max()), fp_tol, "le", "fp64 rounding"))
    checks.append(Check(f"sigmoid: worst ‖dL/dx‖ / (0.25^{depth} Π‖W_l‖₂ ‖dL/da_L‖)", 1.0,
                        float(through.max()), fp_tol, "le", "fp64 rounding"))
    # Geometric vanishing: the fitted per-layer factor of the gradient norm is ≤ 0.25·‖W‖₂ (< 1).
    log_steps = (norms[:, :-1].log() - norms[:, 1:].log())  # batch × layers
    rate_log, rate_se = mean_and_se(log_steps.mean(dim=1))
    geo_bound = math.exp(sum(math.log(0.25 * s) for s in spectral) / depth)
    checks.append(Check("sigmoid: per-layer gradient-norm factor (geometric mean) ≤ 0.25·‖W‖₂",
                        geo_bound, math.exp(rate_log), 0.0, "le", "bound (exact)"))

    lk_norms, _, _ = sigmoid_chain(width, depth, nn.LeakyReLU(0.2), seed + 41)  # same weights
    lk_through = (lk_norms[:, 0].log() - lk_norms[:, -1].log() - bound_log).exp()
    tanh_max = float(local_gradient(nn.Tanh(), grid).max())
    controls = [
        Check("LeakyReLU(2): sup ratio against ≤ 1", 1.0, max_ratio(nn.LeakyReLU(2.0), gen, n_pairs),
              fp_tol, "le", "fp64 rounding"),
        Check("LeakyReLU(−1.5): sup ratio against ≤ 1", 1.0,
              max_ratio(nn.LeakyReLU(-1.5), gen, n_pairs), fp_tol, "le", "fp64 rounding"),
        Check("tanh: max derivative against ¼", 0.25, tanh_max, (h / 2) ** 2 / 16 + 1e-15, "eq",
              "grid step h"),
        Check("LeakyReLU(0.2), same weights: worst ratio to the sigmoid depth bound", 1.0,
              float(lk_through.max()), fp_tol, "le", "fp64 rounding"),
    ]
    neg = max_ratio(nn.LeakyReLU(-0.5), gen, n_pairs)
    return ClaimResult(
        4, "Lipschitz constant and sigmoid's vanishing gradient",
        "LeakyReLU is 1-Lipschitz for 0 ≤ α ≤ 1. Sigmoid's derivative is at most 0.25, so its "
        "gradient vanishes geometrically with depth.",
        checks, controls,
        notes=[f"Lipschitz: worst |f(a)−f(b)|/|a−b| over {3 * n_pairs} fp64 pairs (wide, close, "
               "straddling 0) through nn.LeakyReLU. The exact condition is |α| ≤ 1: α = −0.5 "
               f"measures {neg:.6f} (still 1-Lipschitz, though no longer monotone), so the "
               "α < 0 control uses α = −1.5.",
               f"Depth: {depth} × (nn.Linear({width}, {width}) → nn.Sigmoid), W ~ N(0, 1/fan), "
               "fp64, 256 inputs; gradient norms by autograd. Measured per-layer gradient-norm "
               f"factor {math.exp(rate_log):.4f} (SE of ln {rate_se:.2g}) vs the bound "
               f"{geo_bound:.4f}; over {depth} layers ‖dL/dx‖/‖dL/da_L‖ ≈ "
               f"{float(norms[:, 0].div(norms[:, -1]).mean()):.2e}, LeakyReLU(0.2) with the same "
               f"weights {float(lk_norms[:, 0].div(lk_norms[:, -1]).mean()):.2e}."],
        series={"grad_depth": {"sigmoid": rel_norms(norms), "leaky": rel_norms(lk_norms),
                               "bound": [math.exp(sum(math.log(0.25 * s) for s in spectral[l:]))
                                         for l in range(depth + 1)]}},
    )
