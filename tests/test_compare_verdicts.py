"""Verdicts against a smallest effect of interest, and the budget check, on synthetic numbers:
one case per outcome, the A/A control that must never be called better or worse, and curves
that have and have not flattened."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from apps.compare import analysis, budget, stats, verdicts
from apps.compare.config import CompareConfig, delta_value
from apps.compare.matrix import study_variants
from common.appspec import MetricDef
from common.config import ConfigError, config_from_dict

BASE = {0: 30.1, 1: 25.4, 2: 34.8, 3: 28.2, 4: 31.9}


def _decide(shift: dict[int, float], delta: float | None, lower_is_better: bool = False,
            unit: str = "BLEU") -> verdicts.Verdict:
    pr = stats.paired({s: BASE[s] + shift[s] for s in BASE}, BASE)
    (p_holm,) = stats.holm([pr.p])
    return verdicts.decide(pr, p_holm, lower_is_better, unit, delta)


def test_a_large_consistent_gain_is_better_and_the_sentence_names_delta() -> None:
    v = _decide({0: 2.1, 1: 1.8, 2: 2.6, 3: 2.2, 4: 1.9}, delta=1.0)
    assert v.label == "better" and "±1.00 BLEU" in v.sentence and v.delta == 1.0
    # the same numbers on a lower-is-better metric are a loss
    assert _decide({0: 2.1, 1: 1.8, 2: 2.6, 3: 2.2, 4: 1.9}, 1.0, lower_is_better=True).label == "worse"


def test_significant_but_smaller_than_delta_is_not_better() -> None:
    # Two near-identical runs per seed: the SD of the differences is tiny, so p is tiny too.
    shift = {0: 0.05, 1: 0.06, 2: 0.04, 3: 0.05, 4: 0.055}
    pr = stats.paired({s: BASE[s] + shift[s] for s in BASE}, BASE)
    assert pr.p < 1e-3  # "significant" …
    v = _decide(shift, delta=1.0)
    assert v.label == "equivalent"  # … and negligible: inside ±1 BLEU
    assert v.eq_low > -1.0 and v.eq_high < 1.0 and "±1.00 BLEU" in v.sentence


def test_equivalence_uses_the_90_percent_interval() -> None:
    shift = {0: 0.3, 1: -0.4, 2: 0.2, 3: -0.1, 4: 0.25}
    pr = stats.paired({s: BASE[s] + shift[s] for s in BASE}, BASE)
    lo, hi = verdicts.equivalence_interval(pr)
    ninety = stats.t_interval(list(shift.values()), confidence=0.90)
    assert lo == pytest.approx(ninety.low) and hi == pytest.approx(ninety.high)
    assert _decide(shift, delta=1.0).label == "equivalent"
    # a δ inside the interval can no longer be claimed
    assert _decide(shift, delta=0.2).label == "inconclusive"


def test_noisy_differences_are_inconclusive_with_the_mde() -> None:
    v = _decide({0: 3.0, 1: -2.5, 2: 1.9, 3: -3.1, 4: 0.8}, delta=1.0)
    assert v.label == "inconclusive" and "MDE" in v.sentence and "at this budget" in v.sentence


def test_significant_below_delta_with_a_wide_interval_is_inconclusive() -> None:
    shift = {0: 0.4, 1: 1.2, 2: 0.5, 3: 1.1, 4: 0.8}  # consistently positive, mean 0.8 < δ = 1
    v = _decide(shift, delta=1.0)
    assert v.label == "inconclusive" and "is detected" in v.sentence


def test_zero_variance_cases() -> None:
    assert _decide({s: 0.0 for s in BASE}, delta=1.0).label == "equivalent"
    assert _decide({s: 2.0 for s in BASE}, delta=1.0).label == "better"
    assert _decide({s: 0.5 for s in BASE}, delta=1.0).label == "equivalent"


def test_without_delta_the_test_alone_decides_and_nothing_is_equivalent() -> None:
    assert _decide({0: 2.1, 1: 1.8, 2: 2.6, 3: 2.2, 4: 1.9}, delta=None).label == "better"
    assert _decide({s: 0.0 for s in BASE}, delta=None).label == "inconclusive"


def test_untestable_and_bad_delta() -> None:
    pr = stats.paired({0: 1.0}, {0: 0.5})
    assert verdicts.decide(pr, None, False, "BLEU", 1.0).label == "untestable"
    assert verdicts.decide(None, None, False, "BLEU", 1.0).label == "untestable"
    with pytest.raises(ValueError, match="positive"):
        verdicts.decide(pr, None, False, "BLEU", 0.0)


def test_an_a_a_control_is_never_better_or_worse() -> None:
    """The same function under two names: per seed the two runs differ only by noise, sometimes
    tiny (identical numerics), sometimes seed-sized (chaotic training). Over many synthetic
    studies, with three variants Holm-corrected together, none may be called better or worse."""
    rng = random.Random(7)
    for trial in range(400):
        n = rng.choice([3, 5])
        scale = rng.choice([1e-6, 0.05, 0.3, 0.6])  # noise between the two "identical" runs, in δ units
        base = {s: rng.gauss(30.0, 3.0) for s in range(n)}
        arms = [{s: base[s] + rng.gauss(0.0, scale) for s in base} for _ in range(3)]
        prs = [stats.paired(a, base) for a in arms]
        for pr, p_holm in zip(prs, stats.holm([pr.p for pr in prs])):
            label = verdicts.decide(pr, p_holm, True, "FID", delta=1.0).label
            assert label in ("equivalent", "inconclusive"), (trial, scale, pr)


def test_budget_flags_a_curve_that_is_still_rising_and_passes_a_flat_one() -> None:
    rising = [(100, 5.0), (200, 9.0), (300, 13.0), (400, 16.0)]  # +3 over the last quarter
    flat = [(100, 30.0), (200, 37.0), (300, 38.1), (400, 38.3)]  # +0.2
    bleu = dict(metric="bleu", curve_key="valid_bleu", lower_is_better=False, delta=1.0)
    chk = budget.check_budget(**bleu, curves={"relu": [rising, rising], "leaky": [flat]})
    assert chk.status == budget.STILL_IMPROVING and chk.learning_speed
    assert chk.gains["relu"] == pytest.approx(3.0) and chk.seeds == {"relu": 2, "leaky": 1}
    assert "learning speed" in budget.rule_text(chk, "BLEU")
    ok = budget.check_budget(**bleu, curves={"relu": [flat], "leaky": [flat]})
    assert ok.status == budget.CONVERGED and not ok.learning_speed
    assert "0.5 BLEU" in budget.rule_text(ok, "BLEU")


def test_budget_for_a_lower_is_better_curve_and_missing_curves() -> None:
    fid = [(500, 40.0), (1000, 20.0), (1500, 12.0), (2000, 11.9)]
    chk = budget.check_budget("fid", "fid", True, 1.0, {"relu": [fid]})
    assert chk.gains["relu"] == pytest.approx(0.1) and chk.status == budget.CONVERGED
    worse_late = [(500, 40.0), (1500, 10.0), (2000, 14.0)]  # got worse: not "still improving"
    assert budget.check_budget("fid", "fid", True, 1.0, {"relu": [worse_late]}).status == budget.CONVERGED
    none = budget.check_budget("fid", "fid", True, 1.0, {"relu": [[(2000, 11.0)]], "leaky": []})
    assert none.status == budget.NO_CURVE and none.learning_speed
    assert "not shown" in budget.rule_text(none, "FID")


def test_read_curve_keeps_finite_values_by_step() -> None:
    recs = [{"step": 2, "valid_bleu": 3.0}, {"step": 1, "loss": 2.0}, {"step": 1, "valid_bleu": 1.0},
            {"step": 3, "valid_bleu": float("nan")}, {"step": 2, "valid_bleu": 4.0}, {"step": "x", "valid_bleu": 1}]
    assert budget.read_curve(recs, "valid_bleu") == [(1, 1.0), (2, 4.0)]


def _study(tmp: Path, **study: object) -> CompareConfig:
    base = {"app": "translation", "config": "configs/translation/embedded.yaml", "steps": 50, "baseline": "relu",
            "variants": {"relu": {"model.activation": "relu"}, "leaky": {"model.activation": "leaky_relu"},
                         "fused": {"model.activation": "fused_leaky_relu"}}}
    base.update(study)
    return config_from_dict(CompareConfig, {"out": str(tmp), "seeds": [0, 1], "studies": {"mt": base}})


def test_an_a_a_control_is_paired_with_its_twin_and_a_failed_one_is_reported(tmp_path: Path) -> None:
    cfg = _study(tmp_path, controls={"fused": "leaky"}, lr_sweep={"optim.lr": [1e-3, 3e-4]})
    arms = {a.name: a.baseline for a in study_variants(cfg.studies["mt"])}
    assert arms["fused@lr0.001"] == "leaky@lr0.001" and arms["leaky@lr0.001"] == "relu@lr0.001"
    cmp = [{"variant": "fused", "baseline": "leaky", "metric": "bleu", "verdict": "worse", "sentence": "worse: …",
            "control": True},
           {"variant": "leaky", "baseline": "relu", "metric": "bleu", "verdict": "worse", "sentence": "…",
            "control": False}]
    (warning,) = analysis.failed_controls(cmp)
    assert warning.startswith("A/A control failed: fused") and "leaky" in warning
    assert analysis.failed_controls([dict(cmp[0], verdict="equivalent")]) == []
    with pytest.raises(ConfigError, match="studies.mt.controls.relu"):
        _study(tmp_path, controls={"relu": "leaky"})
    with pytest.raises(ConfigError, match="studies.mt.controls.fused"):
        _study(tmp_path, controls={"fused": "gelu"})


def test_smallest_effect_defaults_overrides_and_relative_deltas(tmp_path: Path) -> None:
    fid = MetricDef("fid", "FID", True, "FID", delta=0.05, relative=True)
    assert analysis.smallest_effect(fid, None, {0: 20.0, 1: 30.0}) == pytest.approx(1.25)
    assert analysis.smallest_effect(fid, 2, {0: 20.0}) == 2.0
    assert analysis.smallest_effect(fid, "10%", {0: 20.0}) == pytest.approx(2.0)
    assert analysis.smallest_effect(fid, None, {}) is None
    assert analysis.smallest_effect(MetricDef("x", "x", True), None, {0: 1.0}) is None
    assert delta_value("5%") == (0.05, True) and delta_value(0.5) == (0.5, False)
    for bad in (0, -1, "x%", "5", True):
        assert delta_value(bad) is None
    with pytest.raises(ConfigError, match="studies.mt.deltas.bleu"):
        _study(tmp_path, deltas={"bleu": "-3%"})
    assert _study(tmp_path, deltas={"bleu": 0.5, "chrf": "2%"}).studies["mt"].deltas["bleu"] == 0.5


def test_a_verdict_is_learning_speed_only_when_the_trailing_arm_still_improves() -> None:
    chk = budget.BudgetCheck("fid", "fid", budget.STILL_IMPROVING, 0.2,
                             {"relu": 1.1, "leaky": -3.0}, {"relu": 2, "leaky": 2})
    # relu leads and is still improving, leaky is behind and getting worse: more steps widen the gap
    assert not budget.comparison_is_learning_speed(chk, "leaky", "relu", "worse")
    # had leaky been called better, relu (now behind) was still improving: the verdict could flip
    assert budget.comparison_is_learning_speed(chk, "leaky", "relu", "better")
    assert budget.comparison_is_learning_speed(chk, "leaky", "relu", "inconclusive")
    flat = budget.BudgetCheck("fid", "fid", budget.CONVERGED, 0.2, {"relu": 0.1, "leaky": 0.0}, {})
    assert not budget.comparison_is_learning_speed(flat, "leaky", "relu", "equivalent")
    assert budget.comparison_is_learning_speed(None, "leaky", "relu", "better")
    assert budget.comparison_is_learning_speed(flat, "gelu", "relu", "better")  # no curve for that arm


def test_report_and_rule_say_which_arm_still_improves_and_what_a_widening_gap_means() -> None:
    from apps.compare.report import verdict_line

    chk = budget.BudgetCheck("fid", "fid", budget.STILL_IMPROVING, 0.2,
                             {"relu": 1.1, "leaky": -3.0}, {"relu": 2, "leaky": 2})
    rule = budget.rule_text(chk, "FID")
    assert "still improving (relu)" in rule and "widen" in rule
    study = {"metrics": [{"key": "fid", "label": "FID"}], "budget": {"checks": [{"metric": "fid", "status": chk.status}]}}
    worse = {"variant": "leaky", "baseline": "relu", "metric": "fid", "verdict": "worse", "learning_speed": False,
             "sentence": "worse: 36.3 FID"}
    assert verdict_line(study, worse).endswith("worse: 36.3 FID — " + budget.qualifier(budget.WIDENING) + ".")
    assert "would not close" in verdict_line(study, worse)
    speed = dict(worse, verdict="better", learning_speed=True, sentence="better: 2 FID")
    assert verdict_line(study, speed) == "leaky vs relu, FID: learning speed at this budget, not final quality — better: 2 FID."
    study["budget"]["checks"][0]["status"] = budget.CONVERGED
    assert verdict_line(study, worse) == "leaky vs relu, FID: worse: 36.3 FID."


def test_each_comparison_is_read_against_its_own_two_arms_in_a_learning_rate_sweep() -> None:
    """A sweep's study is 'still improving' when any rate's arm is; a pair whose own two arms had
    flattened still speaks of final quality, and a widening gap is only named where the leader of
    that pair was the one still gaining."""
    from apps.compare.findings import budget_text, interpretation
    from apps.compare.report import verdict_line

    gains = {"relu@lr1": 0.1, "leaky@lr1": -1.7, "relu@lr4": 0.4, "leaky@lr4": -5.7}
    check = {"metric": "fid", "curve": "fid", "status": budget.STILL_IMPROVING, "threshold": 0.2, "gains": gains}
    study = {"name": "s", "steps": 8000, "metrics": [{"key": "fid", "label": "FID", "unit": "FID"}],
             "budget": {"checks": [check]}}
    pair = {"metric": "fid", "verdict": "worse", "learning_speed": False, "sentence": "worse: 15 FID", "diff": 15.0,
            "low": 4.0, "high": 26.0, "delta": 0.4, "n": 3, "mde": 20.0}
    low = dict(pair, variant="leaky@lr1", baseline="relu@lr1")
    high = dict(pair, variant="leaky@lr4", baseline="relu@lr4")
    assert budget.reading_of(study, low) == budget.FINAL
    assert budget.reading_of(study, high) == budget.WIDENING
    assert budget.reading_of(study, dict(low, verdict="inconclusive")) == budget.FINAL
    assert budget.reading_of(study, dict(high, verdict="inconclusive")) == budget.LEARNING_SPEED
    assert budget.reading_of(study, dict(high, verdict="better")) == budget.LEARNING_SPEED  # relu@lr4 behind, rising
    assert verdict_line(study, low) == "leaky@lr1 vs relu@lr1, FID: worse: 15 FID."
    assert "would not close" in verdict_line(study, high)
    assert interpretation(study, low).endswith("final quality at this recipe (the curves had flattened).")
    assert "the leader was still gaining" in interpretation(study, high)
    assert budget_text(study) == "8000 steps, FID still improving (relu@lr4)"
    # the same gains through the analysis' own check object agree with the summary's reading
    chk = budget.BudgetCheck("fid", "fid", budget.STILL_IMPROVING, 0.2, gains, {})
    assert not budget.comparison_is_learning_speed(chk, "leaky@lr1", "relu@lr1", "inconclusive")
    assert budget.comparison_is_learning_speed(chk, "leaky@lr4", "relu@lr4", "inconclusive")
