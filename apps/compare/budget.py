"""Was training long enough? The budget check every study's verdicts carry.

A comparison at a budget where the headline metric is still improving contrasts *how fast* each
variant learns, not how good it ends up: the slower one may catch up, or overtake. So the report
decides from the cells' own evaluation curves (``metrics.jsonl``: greedy validation BLEU, periodic
FID, …) and states the rule:

    gain = how much the curve improved from its last evaluation at or before 75% of the final step
           to its final evaluation (in the metric's good direction), averaged over a variant's seeds;
    the study is **still improving** when some variant's mean gain exceeds the threshold,
    which is half the metric's smallest effect of interest δ.

Each verdict is then read against its own two arms (:func:`reading`): "better"/"worse" speaks of
learning speed only when the arm that is behind was still improving — a leader that is still
gaining only widens the gap — and any other verdict as soon as either of its arms was.

Averaging over seeds keeps one noisy curve point from deciding, and tying the threshold to δ
means "flattened" is judged on the same scale as "matters". A study whose cells logged no curve
(or fewer than two points per cell) has **no curve**: its convergence is not shown, and its
verdicts are read, conservatively, as learning speed too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

QUARTER = 0.75  # the last quarter of training starts here (a fraction of the final step)
THRESHOLD_OF_DELTA = 0.5  # still improving: mean gain over the last quarter > this × δ

CONVERGED, STILL_IMPROVING, NO_CURVE = "converged", "still improving", "no curve"


@dataclass(frozen=True)
class BudgetCheck:
    """One headline metric's budget check over a study's variants."""

    metric: str  # the headline metric (e.g. "bleu")
    curve: str  # the metrics.jsonl key of its curve (e.g. "valid_bleu")
    status: str  # CONVERGED, STILL_IMPROVING or NO_CURVE
    threshold: float | None  # in the curve's units
    gains: dict[str, float]  # variant → mean gain over the last quarter (improvement > 0)
    seeds: dict[str, int]  # variant → seeds that had a usable curve

    @property
    def learning_speed(self) -> bool:
        """True when the verdicts contrast learning speed at this budget, not final quality."""
        return self.status != CONVERGED


def read_curve(records: Iterable[Mapping], key: str) -> list[tuple[int, float]]:
    """(step, value) of every finite ``key`` in a cell's metrics records, by step (last wins)."""
    points: dict[int, float] = {}
    for rec in records:
        v, s = rec.get(key), rec.get("step")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not isinstance(s, int):
            continue
        if math.isfinite(float(v)):
            points[s] = float(v)
    return sorted(points.items())


def last_quarter_gain(curve: Sequence[tuple[int, float]], lower_is_better: bool) -> float | None:
    """Improvement from the last point at or before 75% of the final step to the final point
    (positive = better); None when the curve has no such earlier point."""
    if len(curve) < 2:
        return None
    final_step, final = curve[-1]
    earlier = [v for s, v in curve[:-1] if s <= QUARTER * final_step]
    if not earlier:
        return None
    gain = final - earlier[-1]
    return -gain if lower_is_better else gain


def check_budget(
    metric: str,
    curve_key: str,
    lower_is_better: bool,
    delta: float | None,
    curves: Mapping[str, Sequence[Sequence[tuple[int, float]]]],
) -> BudgetCheck:
    """The budget check of one metric: ``curves`` maps each variant to its cells' curves."""
    gains: dict[str, float] = {}
    seeds: dict[str, int] = {}
    for variant, cell_curves in curves.items():
        per_seed = [g for c in cell_curves if (g := last_quarter_gain(c, lower_is_better)) is not None]
        if per_seed:
            gains[variant] = math.fsum(per_seed) / len(per_seed)
            seeds[variant] = len(per_seed)
    threshold = None if delta is None else THRESHOLD_OF_DELTA * delta
    if not gains or threshold is None:
        return BudgetCheck(metric, curve_key, NO_CURVE, threshold, gains, seeds)
    status = STILL_IMPROVING if any(g > threshold for g in gains.values()) else CONVERGED
    return BudgetCheck(metric, curve_key, status, threshold, gains, seeds)


LEARNING_SPEED = "learning speed"  # the verdict could change with more training
WIDENING = "widening gap"  # better/worse, and only the leader was still gaining
FINAL = "final quality"  # neither arm of the comparison was still improving


def reading(status: str | None, threshold: float | None, gains: Mapping[str, float] | None,
            variant: str, baseline: str, verdict: str) -> str:
    """What one comparison's verdict speaks of, from its two arms' gains over the last quarter.

    A better/worse verdict could only flip if the arm that is *behind* were still improving: when
    the leader alone is still gaining (or the trailing arm is getting worse), more training would
    widen the gap, not close it. Any other verdict (equivalent, inconclusive) is about learning
    speed as soon as either arm is still improving. No curve, or none for one of the two arms,
    means convergence is not shown: learning speed, conservatively. Only the comparison's own arms
    count — in a learning-rate sweep another rate's arm still improving says nothing about this pair.
    """
    if status in (None, NO_CURVE) or threshold is None or not gains:
        return LEARNING_SPEED
    pair = {arm: gains.get(arm) for arm in (variant, baseline)}
    if any(g is None for g in pair.values()):
        return LEARNING_SPEED
    rising = {arm: g > threshold for arm, g in pair.items()}
    if verdict in ("better", "worse"):
        leader, behind = (variant, baseline) if verdict == "better" else (baseline, variant)
        return LEARNING_SPEED if rising[behind] else WIDENING if rising[leader] else FINAL
    return LEARNING_SPEED if any(rising.values()) else FINAL


def comparison_is_learning_speed(check: BudgetCheck | None, variant: str, baseline: str, verdict: str) -> bool:
    """Whether one comparison's verdict speaks of learning speed rather than final quality
    (:func:`reading`); ``check`` is the budget check of the metric's own curve, or of the study's
    headline curve for metrics without one."""
    if check is None:
        return True
    return reading(check.status, check.threshold, check.gains, variant, baseline, verdict) == LEARNING_SPEED


def check_of(study: Mapping, metric: str) -> Mapping | None:
    """A summary study's budget check for ``metric`` (its own curve, else the study's first)."""
    checks = (study.get("budget") or {}).get("checks", [])
    return next((k for k in checks if k.get("metric") == metric), checks[0] if checks else None)


def reading_of(study: Mapping, c: Mapping) -> str:
    """:func:`reading` of a summary's comparison ``c``, from its study's budget check."""
    if c.get("learning_speed"):
        return LEARNING_SPEED
    check = check_of(study, c["metric"])
    if check is None:
        return LEARNING_SPEED
    if check.get("gains") is None:  # a summary without gains: the study's status decides
        widening = check.get("status") not in (None, CONVERGED) and c.get("verdict") in ("better", "worse")
        return WIDENING if widening else FINAL
    return reading(check.get("status"), check.get("threshold"), check["gains"], c["variant"], c["baseline"],
                   c.get("verdict", ""))


def qualifier(what: str) -> str:
    """What a verdict speaks of (a :func:`reading`), as a phrase for its sentence (report and README alike)."""
    if what == LEARNING_SPEED:
        return "learning speed at this budget, not final quality"
    if what == WIDENING:
        return ("a gap more training would not close at this recipe (the arm behind had stopped improving; "
                "the leader was still gaining)")
    return "final quality at this recipe (the curves had flattened)"


def still_improving(gains: Mapping[str, float] | None, threshold: float | None) -> list[str]:
    """The arms whose gain over the last quarter exceeds the threshold (none without one)."""
    if threshold is None:
        return []
    return [arm for arm, g in (gains or {}).items() if g > threshold]


def rule_text(check: BudgetCheck, unit: str) -> str:
    """The rule and its outcome in one sentence, for the report."""
    u = f" {unit}" if unit else ""
    head = (f"Budget check on {check.metric} (curve `{check.curve}`): a variant is still improving when its "
            f"mean gain from the last evaluation at or before {QUARTER:.0%} of training to the final one "
            f"exceeds {f'{check.threshold:.3g}{u}' if check.threshold is not None else 'half of δ'} (half the "
            "smallest effect of interest).")
    if check.status == NO_CURVE:
        return head + " No cell logged a usable curve, so convergence is not shown: read the verdicts as " \
                      "learning speed at this budget."
    gains = ", ".join(f"{v} {g:+.3g}{u}" for v, g in check.gains.items())
    if check.status == STILL_IMPROVING:
        rising = ", ".join(still_improving(check.gains, check.threshold))
        return head + f" Gains: {gains} — still improving ({rising}): a verdict whose arm behind was still " \
                      "improving, and an equivalent or inconclusive verdict with either arm still improving, " \
                      "contrasts learning speed at this budget, not final quality; a better/worse verdict whose " \
                      "arm behind had stopped improving is a gap more training would widen, and a verdict whose " \
                      "two arms had both stopped speaks of final quality."
    return head + f" Gains: {gains} — flattened: the verdicts speak of final quality at this recipe."
