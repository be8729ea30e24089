"""The verdict on one paired comparison, judged against a smallest effect of interest δ.

A paired difference can be "significant" and negligible: two near-identical runs per seed (an A/A
control, or the fused kernel against plain LeakyReLU at the same α) differ by float noise with a
tiny SD, so any t-test calls them different. A verdict therefore needs a size that matters, δ,
and has four honest outcomes (d̄ = mean paired difference variant − baseline over n seeds):

- **better / worse** — the Holm-corrected paired t-test rejects "no difference" at level α *and*
  the observed difference is at least δ in size (|d̄| ≥ δ): a real effect of a size that matters;
- **equivalent within ±δ** — two one-sided tests (TOST) at level α: the (1 − 2α) t-interval of
  d̄ (90% for α = 0.05) lies strictly inside (−δ, +δ);
- **inconclusive at this budget** — neither: the data cannot tell; the minimum detectable effect
  (MDE, see :mod:`apps.compare.stats`) says how large a difference these seeds could detect;
- **untestable** — fewer than two paired seeds.

An A/A control therefore comes out *equivalent* when its runs agree to well within δ and
*inconclusive* when their seed-to-seed noise is large, but never better or worse unless it moves
by δ consistently enough to pass a corrected test — which is the false positive the control
exists to catch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as _st

from apps.compare.stats import ALPHA, Paired, fmt, fmt_p

BETTER, WORSE = "better", "worse"
EQUIVALENT, INCONCLUSIVE, UNTESTABLE = "equivalent", "inconclusive", "untestable"
#: Every label :func:`decide` returns (summary.json's ``verdict`` values).
LABELS = (BETTER, WORSE, EQUIVALENT, INCONCLUSIVE, UNTESTABLE)


@dataclass(frozen=True)
class Verdict:
    """One comparison's outcome: ``label`` (one of :data:`LABELS`), a plain-words ``sentence``, δ
    in the metric's units, and the (1 − 2α) interval the equivalence test used."""

    label: str
    sentence: str
    delta: float | None
    eq_low: float | None = None
    eq_high: float | None = None


def equivalence_interval(pr: Paired, alpha: float = ALPHA) -> tuple[float, float] | None:
    """The (1 − 2α) t-interval of the mean paired difference (TOST's interval), None when n < 2."""
    if pr.n < 2 or pr.sd is None:
        return None
    half = float(_st.t.ppf(1 - alpha, pr.n - 1)) * pr.sd / math.sqrt(pr.n)
    return pr.diff - half, pr.diff + half


def _q(x: float | None, unit: str) -> str:
    return f"{fmt(x)} {unit}" if unit else fmt(x)


def decide(
    pr: Paired | None,
    p_holm: float | None,
    lower_is_better: bool,
    unit: str,
    delta: float | None,
    alpha: float = ALPHA,
) -> Verdict:
    """The verdict on ``pr`` (variant − baseline) given its Holm-corrected p and δ (> 0).

    ``delta`` None means the metric has no smallest effect of interest: the verdict then rests on
    the corrected test alone and can never be "equivalent".
    """
    if delta is not None and not (math.isfinite(delta) and delta > 0):
        raise ValueError(f"the smallest effect of interest must be a positive number (got {delta!r})")
    if pr is None:
        return Verdict(UNTESTABLE, "no seed in common with the baseline", delta)
    if pr.n < 2 or pr.p is None or pr.sd is None:
        return Verdict(UNTESTABLE, f"only {pr.n} paired seed: difference {_q(pr.diff, unit)}, but no interval "
                       "or test is possible; run more seeds", delta)
    band = f"±{_q(delta, unit)}" if delta is not None else ""
    eq = equivalence_interval(pr, alpha)
    assert eq is not None
    lo, hi = eq
    significant = p_holm is not None and p_holm < alpha
    large = delta is None or abs(pr.diff) >= delta
    if significant and large:
        improved = (pr.diff < 0) == lower_is_better
        label = BETTER if improved else WORSE
        if pr.sd == 0.0:
            how = f"on every one of the {pr.n} seeds (zero variance: the interval is a point)"
        else:
            how = f"(95% CI {fmt(pr.low)} to {fmt(pr.high)}), Holm p = {fmt_p(p_holm)}"
        beyond = f", beyond the smallest effect of interest {band}" if delta is not None else ""
        return Verdict(label, f"{label}: {_q(pr.diff, unit)} {how}{beyond}", delta, lo, hi)
    conf = f"{1 - 2 * alpha:.0%}"
    if delta is not None and -delta < lo and hi < delta:
        return Verdict(EQUIVALENT, f"equivalent within {band}: the {conf} interval of the difference "
                       f"({fmt(lo)} to {fmt(hi)}) lies inside it (observed {fmt(pr.diff)})", delta, lo, hi)
    mde = f"MDE ≈ {_q(pr.mde, unit)} with {pr.n} seeds" if pr.mde is not None else f"{pr.n} seeds"
    if significant:  # detected, but smaller than δ and not shown to stay inside ±δ
        why = (f"a difference of {_q(pr.diff, unit)} is detected (Holm p = {fmt_p(p_holm)}) but it is smaller "
               f"than {band} and its {conf} interval ({fmt(lo)} to {fmt(hi)}) does not rule out δ")
    else:
        why = (f"observed {fmt(pr.diff)} ({conf} interval {fmt(lo)} to {fmt(hi)}), Holm p = {fmt_p(p_holm)}; "
               f"{mde}" + (f"; neither a difference nor equivalence within {band} is shown" if delta else ""))
    return Verdict(INCONCLUSIVE, f"inconclusive at this budget: {why}", delta, lo, hi)
