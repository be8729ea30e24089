"""Claims 1, 2 and 8: local gradients of ReLU / LeakyReLU, and ReLU-normalisation versus softmax.

All measurements go through real modules: pre-activations come out of an ``nn.Linear`` without
bias (zero-mean symmetric weights, Gaussian inputs, so every pre-activation is symmetric around 0),
and local gradients are read from autograd through ``nn.ReLU`` / ``nn.LeakyReLU``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from apps.theory.results import Z_TOL, Check, ClaimResult, batch_estimate, binomial, z_check

ALPHAS = (0.01, 0.1, 0.2, 0.5)  # claim 2's sweep; α = 0 (ReLU) is added for the plot


def symmetric_preactivations(seed: int, rows: int, width: int = 256, fan_in: int = 64,
                             shift: float = 0.0) -> torch.Tensor:
    """Pre-activations z = W x (+ shift) of a freshly initialised ``nn.Linear``.

    torch's default Linear init is uniform and symmetric around 0 and x ~ N(0, I), so z is
    symmetric around 0 unless ``shift`` (a constant bias) moves it.
    """
    torch.manual_seed(seed)
    layer = nn.Linear(fan_in, width, bias=shift != 0.0)
    if shift:
        nn.init.constant_(layer.bias, shift)
    x = torch.randn(rows, fan_in, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        return layer(x)


def local_gradient(act: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """dact(z)/dz elementwise, by autograd (backward of sum(act(z)))."""
    z = z.detach().clone().requires_grad_(True)
    act(z).sum().backward()
    assert z.grad is not None
    return z.grad


def claim1(seed: int, quick: bool) -> ClaimResult:
    """ReLU's local gradient is exactly 0 with probability ½ on symmetric inputs; LeakyReLU's never."""
    rows = 400 if quick else 1000
    z = symmetric_preactivations(seed, rows)
    n = z.numel()

    def zero_share(act: nn.Module, zz: torch.Tensor) -> tuple[float, float]:
        return binomial(int((local_gradient(act, zz) == 0).sum()), zz.numel())

    p_relu, se_relu = zero_share(nn.ReLU(), z)
    checks = [z_check("ReLU: P(grad = 0)", 0.5, p_relu, se_relu)]
    leaky = {}
    for alpha in (0.01, 0.2):
        p, _ = zero_share(nn.LeakyReLU(alpha), z)
        leaky[alpha] = p
        # Exact claim: one zero among n draws refutes "never"; the tolerance is therefore 0.
        checks.append(Check(f"LeakyReLU(α={alpha}): P(grad = 0)", 0.0, p, 0.0, "eq",
                            f"exact (0 of {n} allowed)"))

    z_shift = symmetric_preactivations(seed, rows, shift=0.5)
    p_shift, se_shift = zero_share(nn.ReLU(), z_shift)
    controls = [
        z_check("LeakyReLU(0.01) measured against ReLU's ½", 0.5, leaky[0.01],
                math.sqrt(0.25 / n)),
        Check("ReLU measured against LeakyReLU's 'never 0'", 0.0, p_relu, 0.0, "eq", "exact"),
        z_check("ReLU on inputs shifted by +0.5 (not symmetric) against ½", 0.5, p_shift, se_shift),
    ]
    return ClaimResult(
        1, "Gradient sparsity",
        "With inputs symmetric around 0, ReLU's local gradient is exactly 0 with probability 0.5; "
        "LeakyReLU's never is.",
        checks, controls,
        notes=[f"{n} pre-activations of an nn.Linear(64, 256, bias=False) on N(0, I) inputs; "
               "local gradients by autograd through nn.ReLU / nn.LeakyReLU.",
               "The ½ needs symmetry: the shifted-input control shows ReLU's zero share is then "
               f"{p_shift:.3f}, not ½."],
    )


def claim2(seed: int, quick: bool) -> ClaimResult:
    """E[G] = (1+α)/2 and Var(G) = (1−α)²/4 for LeakyReLU's local gradient G."""
    rows = 400 if quick else 1000
    batches = 40
    z = symmetric_preactivations(seed + 10, rows)
    checks: list[Check] = []
    curve = {"alpha": [], "mean": [], "mean_se": [], "var": [], "var_se": []}
    measured = {}
    for alpha in (0.0,) + ALPHAS:
        act = nn.ReLU() if alpha == 0.0 else nn.LeakyReLU(alpha)
        g = local_gradient(act, z)
        m, m_se = batch_estimate(g, batches, "mean")
        v, v_se = batch_estimate(g, batches, "var")
        measured[alpha] = (m, m_se, v, v_se)
        for key, val in zip(curve, (alpha, m, m_se, v, v_se)):
            curve[key].append(val)
        if alpha == 0.0:
            continue  # α = 0 is ReLU, shown on the plot; the claim is about LeakyReLU
        checks.append(z_check(f"α={alpha}: E[G] = (1+α)/2", (1 + alpha) / 2, m, m_se))
        checks.append(z_check(f"α={alpha}: Var(G) = (1−α)²/4", (1 - alpha) ** 2 / 4, v, v_se))
    m, m_se, v, v_se = measured[0.2]
    controls = [
        z_check("LeakyReLU(0.2) measured, predicted with α=0.01: E[G]", (1 + 0.01) / 2, m, m_se),
        z_check("LeakyReLU(0.2) measured, predicted with α=0.01: Var(G)", (1 - 0.01) ** 2 / 4, v,
                v_se),
    ]
    return ClaimResult(
        2, "Moments of the local gradient",
        "LeakyReLU's local gradient G: E[G] = (1+α)/2, Var(G) = (1−α)²/4.",
        checks, controls,
        notes=[f"{z.numel()} symmetric pre-activations; mean and variance with batch-means "
               f"standard errors over {batches} batches."],
        series={"moments": curve},
    )


def relu_normalise(z: torch.Tensor) -> torch.Tensor:
    """p_i = relu(z_i) / Σ_j relu(z_j) — the 'ReLU then normalise' output layer."""
    r = nn.ReLU()(z)
    return r / r.sum(dim=1, keepdim=True)


def claim8(seed: int, quick: bool) -> ClaimResult:
    """ReLU + normalisation: zero probabilities, infinite CE, vanishing gradient; softmax: none."""
    n, k = (8000 if quick else 20000), 10
    gen = torch.Generator().manual_seed(seed + 81)
    # Independent symmetric logits (Monte Carlo): logits of one nn.Linear head are correlated
    # across classes, which would change the all-negative share 2⁻ᴷ predicted below.
    z = torch.randn(n, k, generator=gen)
    target = torch.randint(0, k, (n,), generator=gen)
    rows = torch.arange(n)

    def target_stats(prob_fn):
        zz = z.clone().requires_grad_(True)
        p = prob_fn(zz)
        p_t = p[rows, target]
        loss = -torch.log(p_t)  # cross-entropy per sample, as written (no clamp)
        # The gradient of the ε-clamped loss −log(p_t + ε) on the target's own logit: what a
        # practitioner who "fixes" the infinity would train with.
        (g,) = torch.autograd.grad((-torch.log(p_t + 1e-8)).sum(), zz)
        return p.detach(), p_t.detach(), loss.detach(), g[rows, target]

    p, p_t, loss, g_t = target_stats(relu_normalise)
    undefined = torch.isnan(p_t)  # every logit ≤ 0: 0/0
    zero = p_t == 0
    n_zero = int(zero.sum())
    frac_zero, se_zero = binomial(n_zero, n)
    frac_undef, _ = binomial(int(undefined.sum()), n)
    null_se = math.sqrt(2.0 ** -k * (1 - 2.0 ** -k) / n)
    inf_share = float(torch.isinf(loss[zero]).float().mean()) if n_zero else float("nan")
    zero_grad_share = float((g_t[zero] == 0).float().mean()) if n_zero else float("nan")
    defined = ~undefined
    min_p_relu = float(p[defined].min())

    ps, ps_t, loss_s, g_s = target_stats(lambda t: nn.Softmax(dim=1)(t))
    frac_zero_s, se_zero_s = binomial(int((ps_t == 0).sum()), n)
    checks = [
        z_check("ReLU-norm: share of samples with p_target = 0 (= ½ − 2⁻ᴷ)", 0.5 - 2.0 ** -k,
                frac_zero, se_zero),
        # A rare event (~20 in 20 000): the SE comes from the predicted rate, since the
        # sample's own sqrt(p̂(1−p̂)/n) shrinks with an unlucky low count and would be unfair.
        Check("ReLU-norm: share with every p undefined (0/0, = 2⁻ᴷ)", 2.0 ** -k, frac_undef,
              Z_TOL * null_se, "eq", f"{Z_TOL:g} SE under the prediction (SE={null_se:.2g})"),
        Check("ReLU-norm: share of those with infinite cross-entropy", 1.0, inf_share, 0.0, "eq",
              "exact"),
        Check("ReLU-norm: share of those whose target-logit gradient is exactly 0", 1.0,
              zero_grad_share, 0.0, "eq", "exact"),
        Check("softmax: min probability > 0", 0.0, float(ps.min()), 0.0, "ge", "exact", True),
        Check("softmax: every cross-entropy finite (1 = yes)", 1.0,
              float(torch.isfinite(loss_s).all()), 0.0, "eq", "exact"),
        Check("softmax: min |gradient on target logit| > 0", 0.0, float(g_s.abs().min()), 0.0,
              "ge", "exact", True),
    ]
    controls = [
        z_check("softmax measured against 'p_target = 0 half the time'", 0.5 - 2.0 ** -k,
                frac_zero_s, math.sqrt(0.25 / n)),
        Check("ReLU-norm measured against 'every probability > 0'", 0.0, min_p_relu, 0.0, "ge",
              "exact", True),
        Check("ReLU-norm measured against 'every cross-entropy finite' (1 = yes)", 1.0,
              float(torch.isfinite(loss[defined]).all()), 0.0, "eq", "exact"),
    ]
    return ClaimResult(
        8, "Output normalisation",
        "ReLU followed by normalisation gives zero probabilities and an infinite cross-entropy "
        "with a vanishing gradient; softmax gives strictly positive probabilities.",
        checks, controls,
        notes=[f"{n} samples of K = {k} independent N(0, 1) logits through nn.ReLU / nn.Softmax. "
               "The gradient is that of the ε-clamped loss −log(p_t + 1e-8) on the target's own "
               "logit: relu'(z_t) = 0 kills it, so even the clamped loss cannot push z_t up. "
               "Unclamped, autograd gives 0·∞ = nan there.",
               f"When all K logits are ≤ 0 ReLU-normalisation is 0/0 (undefined); measured share "
               f"{frac_undef:.4f}, predicted 2⁻ᴷ = {2.0 ** -k:.4f}."],
    )
