"""Statistics for the A/B report: t-intervals, paired tests, Holm correction, detectable effects.

Everything here is a pure function of numbers, so the report's claims can be tested on known
inputs. Seeds are the unit of replication: a variant and the baseline trained with the same seed
share data order and initial noise, so their difference is paired by seed, which removes the
seed-to-seed swing that both share (often the largest source of noise in a generative model's
quality score).

Formulas (n seeds, d_i = variant_i - baseline_i, s = sample SD of d, t_q,k = Student-t quantile):

- mean ± 95% t-interval: mean ± t_{0.975, n-1} · s / √n (undefined for n < 2);
- paired t-test: t = mean(d) / (s / √n), two-sided p from Student-t with n-1 degrees of freedom;
- Holm (1979) step-down correction over the m variants compared with one baseline on one metric:
  sort p ascending, p'_(k) = max_{j<=k} min(1, (m - j + 1) · p_(j));
- minimum detectable effect of the paired test at level α and power 1-β:
  MDE = (t_{1-α/2, n-1} + t_{1-β, n-1}) · s / √n — the true mean difference that this number of seeds
  would detect with probability ≈ 1-β, taking the observed SD of the differences as the truth. It
  uses the unadjusted α, so with Holm over m > 1 variants the real threshold is somewhat larger.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from scipy import stats as _st

ALPHA = 0.05
POWER = 0.8


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` values with its two-sided t-interval (``low``/``high`` None when n < 2)."""

    mean: float
    low: float | None
    high: float | None
    sd: float | None
    n: int


@dataclass(frozen=True)
class Paired:
    """A variant minus the baseline, paired by seed."""

    n: int
    diff: float  # mean of the per-seed differences (variant - baseline)
    sd: float | None  # SD of the per-seed differences; None when n < 2
    low: float | None  # t-interval of the mean difference
    high: float | None
    p: float | None  # two-sided paired t-test; None when n < 2 (zero variance: 0 or 1, see paired())
    mde: float | None  # minimum detectable effect (see module docstring); None when n < 2 or sd = 0
    seeds: tuple[int, ...]  # the seeds both sides have


def t_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean and two-sided Student-t confidence interval of ``values`` (NaN-free, n >= 1)."""
    n = len(values)
    if n == 0:
        raise ValueError("t_interval needs at least one value")
    mean = math.fsum(values) / n
    if n < 2:
        return Interval(mean, None, None, None, n)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(_st.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, sd, n)


def mde_paired(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float | None:
    """Minimum detectable mean difference of a two-sided paired t-test (None when n < 2)."""
    if n < 2:
        return None
    df = n - 1
    return float((_st.t.ppf(1 - alpha / 2, df) + _st.t.ppf(power, df)) * sd / math.sqrt(n))


def paired(
    variant: Mapping[int, float],
    baseline: Mapping[int, float],
    confidence: float = 0.95,
    alpha: float = ALPHA,
    power: float = POWER,
) -> Paired | None:
    """Paired comparison over the seeds both sides have; None when they share no seed."""
    seeds = tuple(sorted(set(variant) & set(baseline)))
    if not seeds:
        return None
    diffs = [variant[s] - baseline[s] for s in seeds]
    iv = t_interval(diffs, confidence)
    n = iv.n
    if n < 2:
        return Paired(n, iv.mean, None, None, None, None, None, seeds)
    assert iv.sd is not None
    # The scale guard keeps float noise in "identical" differences from reading as variance.
    scale = max(1.0, max(abs(d) for d in diffs))
    if iv.sd <= 1e-12 * scale:
        # Every seed moved by exactly the same amount (a saturated metric: 100% dead vs 0% dead;
        # a count): the interval collapses to a point and t = d / 0. A nonzero d is then as
        # consistent as data get (p = 0, the limit of the t-test); d = 0 is no difference (p = 1).
        # The verdict says which case it was, so nobody mistakes it for an ordinary test.
        p0 = 0.0 if abs(iv.mean) > 1e-12 * scale else 1.0
        return Paired(n, iv.mean, 0.0, iv.mean, iv.mean, p0, None, seeds)
    t = iv.mean / (iv.sd / math.sqrt(n))
    p = float(2 * _st.t.sf(abs(t), n - 1))
    return Paired(n, iv.mean, iv.sd, iv.low, iv.high, p, mde_paired(iv.sd, n, alpha, power), seeds)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values, in the input order; None entries are skipped (stay None)."""
    indexed = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(indexed)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))  # monotone: never below an earlier step
        out[i] = running
    return out


def fmt(x: float | None, digits: int = 3) -> str:
    """A number with ``digits`` significant digits, or 'n/a'."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    decimals = max(0, digits - 1 - mag)
    return f"{x:.{decimals}f}"


def fmt_p(p: float | None) -> str:
    """A p-value as text ('< 0.001' below that)."""
    if p is None:
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"
