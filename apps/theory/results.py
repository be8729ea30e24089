"""Result records of the theory check, and the statistics that give each check its tolerance.

A claim is judged by *checks*: a predicted value, a measured value, a relation (``eq``, ``le``,
``ge``) and a tolerance. Monte Carlo checks take their tolerance from the measurement's own
standard error (``Z_TOL`` standard errors, the SE computed from the samples); exact or
deterministic checks (a bound, a recursion) take a floating-point rounding tolerance and say so.

Every claim also carries *controls*: the same prediction applied to a setting where the theory
says it must NOT hold (wrong α, wrong activation, wrong init, no remedy). A control "fails the
prediction" when its check does not hold; a claim passes only when all its checks hold and all its
controls fail — so a measurement too loose to tell right from wrong cannot pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch

# Tolerance of a Monte Carlo check, in standard errors of the measurement. Five SEs make a false
# failure about a one-in-a-million event, while every control below misses by far more.
Z_TOL = 5.0

Relation = Literal["eq", "le", "ge", "gt"]


@dataclass
class Check:
    """One predicted-versus-measured comparison.

    ``eq``: |measured − predicted| ≤ tol;  ``le``: measured ≤ predicted + tol;
    ``ge``: measured ≥ predicted − tol (``strict`` turns ≥ into >, for "strictly positive");
    ``gt``: measured − tol > predicted, i.e. significantly above (a Monte Carlo "> 0" claim).
    ``basis`` says where the tolerance comes from (e.g. "5 SE, SE=…", "fp64 rounding").
    ``log_tol``: judge a positive multiplicative quantity (a rate, a ratio) on the log scale,
    |ln measured − ln predicted| ≤ log_tol, where its SE lives; ``tol`` is then the factor
    exp(log_tol), shown as "×/÷ factor".
    """

    name: str
    predicted: float
    measured: float
    tol: float
    relation: Relation = "eq"
    basis: str = ""
    strict: bool = False
    log_tol: float | None = None

    @property
    def holds(self) -> bool:
        """Whether the measurement agrees with the prediction within the tolerance."""
        m, p, t = self.measured, self.predicted, self.tol
        if math.isnan(m):
            return False
        if self.log_tol is not None:
            return m > 0 and abs(math.log(m) - math.log(p)) <= self.log_tol
        if self.relation == "eq":
            if math.isinf(p) or math.isinf(m):
                return m == p
            return abs(m - p) <= t
        if self.relation == "le":
            return m <= p + t
        if self.relation == "gt":
            return m - t > p
        return m > p - t if self.strict else m >= p - t

    def describe_relation(self) -> str:
        """The relation as shown in the report, e.g. '= 0.5 ± 0.0035'."""
        sym = {"eq": "=", "le": "≤", "ge": ">" if self.strict else "≥", "gt": ">"}[self.relation]
        if self.log_tol is not None:
            return f"= {fmt(self.predicted)} ×/÷ {fmt(self.tol)}"
        tol = f" ± {fmt(self.tol)}" if self.tol and self.relation == "eq" else ""
        slack = f" (+{fmt(self.tol)})" if self.tol and self.relation == "le" else ""
        slack = f" (−{fmt(self.tol)})" if self.tol and self.relation == "ge" else slack
        slack = f" (by > {fmt(self.tol)})" if self.relation == "gt" else slack
        return f"{sym} {fmt(self.predicted)}{tol}{slack}"


@dataclass
class ClaimResult:
    """The measured verdict on one claim of docs/science.md."""

    number: int
    title: str
    claim: str
    checks: list[Check]
    controls: list[Check]
    notes: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)  # file names, relative to the report folder
    series: dict = field(default_factory=dict)  # raw curves for the plots (lists of floats)
    seconds: float = 0.0

    @property
    def checks_pass(self) -> bool:
        return all(c.holds for c in self.checks)

    @property
    def controls_fail(self) -> bool:
        """True when every negative control misses the prediction, as it must."""
        return all(not c.holds for c in self.controls)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and bool(self.controls) and self.checks_pass and self.controls_fail


def fmt(x: float) -> str:
    """Compact, deterministic number formatting for tables."""
    if isinstance(x, bool):
        return str(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    if abs(x) >= 1e4 or abs(x) < 1e-3:
        return f"{x:.3g}"
    return f"{x:.5g}"


def mean_and_se(samples: torch.Tensor) -> tuple[float, float]:
    """Mean of independent samples and its standard error (sample std / √n)."""
    x = samples.double().flatten()
    n = x.numel()
    return x.mean().item(), (x.std(unbiased=True) / math.sqrt(n)).item()


def batch_estimate(values: torch.Tensor, batches: int, stat: str) -> tuple[float, float]:
    """Estimate ``stat`` ('mean' or 'var') by batch means: the statistic on each of ``batches``
    equal slices, averaged; the SE is their spread / √batches.

    Batch means give an honest SE for any statistic, including the sample variance of a two-point
    variable, whose delta-method SE is exactly zero at p = ½ and would give no tolerance at all.
    """
    x = values.double().flatten()
    x = x[: (x.numel() // batches) * batches].view(batches, -1)
    per = x.mean(dim=1) if stat == "mean" else x.var(dim=1, unbiased=True)
    return mean_and_se(per)


def binomial(hits: int, n: int) -> tuple[float, float]:
    """Proportion and its binomial standard error sqrt(p(1−p)/n), from the sample itself."""
    p = hits / n
    return p, math.sqrt(max(p * (1.0 - p), 0.0) / n)


def z_check(name: str, predicted: float, measured: float, se: float, relation: Relation = "eq",
            strict: bool = False) -> Check:
    """A Monte Carlo check whose tolerance is ``Z_TOL`` standard errors."""
    return Check(name, predicted, measured, Z_TOL * se, relation, f"{Z_TOL:g} SE (SE={fmt(se)})",
                 strict)


def log_check(name: str, predicted: float, log_measured: float, log_se: float) -> Check:
    """A multiplicative quantity measured as a mean log with SE ``log_se``, judged on the log
    scale within Z_TOL SEs; the tolerance shows as the factor exp(Z_TOL · SE)."""
    return Check(name, predicted, math.exp(log_measured), math.exp(Z_TOL * log_se), "eq",
                 f"{Z_TOL:g} SE of ln (SE={fmt(log_se)})", log_tol=Z_TOL * log_se)
