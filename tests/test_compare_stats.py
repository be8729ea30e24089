"""The comparison's statistics on known inputs: intervals and tests against scipy, Holm by hand,
a real paired difference that must be detected, and a null one where nothing may be claimed."""

from __future__ import annotations

import math

import pytest
from scipy import stats as st

from apps.compare import stats, verdicts

# Large seed-to-seed swing shared by both arms, small consistent improvement: the situation where
# pairing by seed is what makes the difference visible.
BASE = {0: 30.1, 1: 25.4, 2: 34.8, 3: 28.2, 4: 31.9}
SHIFT = {0: -3.2, 1: -2.6, 2: -3.9, 3: -2.9, 4: -3.4}
NOISE = {0: 0.8, 1: -1.1, 2: 0.3, 3: -0.4, 4: 0.5}


def test_t_interval_matches_scipy() -> None:
    values = [3.1, 2.7, 3.9, 3.3, 2.2, 3.0]
    iv = stats.t_interval(values)
    lo, hi = st.t.interval(0.95, len(values) - 1, loc=sum(values) / len(values), scale=st.sem(values))
    assert iv.n == 6 and iv.mean == pytest.approx(sum(values) / 6)
    assert iv.low == pytest.approx(lo) and iv.high == pytest.approx(hi)
    assert iv.sd == pytest.approx(st.tstd(values))


def test_t_interval_single_value_has_no_interval() -> None:
    iv = stats.t_interval([4.2])
    assert (iv.mean, iv.low, iv.high, iv.sd, iv.n) == (4.2, None, None, None, 1)
    with pytest.raises(ValueError):
        stats.t_interval([])


def test_paired_test_matches_scipy_ttest_rel() -> None:
    variant = {s: BASE[s] + NOISE[s] for s in BASE}
    pr = stats.paired(variant, BASE)
    ref = st.ttest_rel([variant[s] for s in sorted(BASE)], [BASE[s] for s in sorted(BASE)])
    assert pr is not None and pr.p == pytest.approx(ref.pvalue)
    assert pr.diff == pytest.approx(sum(NOISE.values()) / 5)
    assert pr.seeds == (0, 1, 2, 3, 4)


def test_real_paired_difference_is_detected_where_an_unpaired_test_is_blind() -> None:
    better = {s: BASE[s] + SHIFT[s] for s in BASE}
    pr = stats.paired(better, BASE)
    assert pr is not None and pr.p is not None and pr.p < 1e-3
    assert pr.high < 0  # the whole interval says "lower"
    # The seed swing (sd ≈ 3.5) hides a 3-point shift from a Welch test — pairing is what finds it.
    assert st.ttest_ind(list(better.values()), list(BASE.values()), equal_var=False).pvalue > 0.05
    (p_holm,) = stats.holm([pr.p])
    v = verdicts.decide(pr, p_holm, lower_is_better=True, unit="FID", delta=1.0)
    assert v.label == "better" and v.sentence.startswith("better: -3.2")
    # The same difference on a higher-is-better metric is a loss.
    assert verdicts.decide(pr, p_holm, lower_is_better=False, unit="BLEU", delta=1.0).label == "worse"


def test_no_difference_means_no_claim_and_a_detectable_effect_is_quoted() -> None:
    same = {s: BASE[s] + NOISE[s] for s in BASE}
    better = {s: BASE[s] + SHIFT[s] for s in BASE}
    prs = [stats.paired(same, BASE), stats.paired(better, BASE)]
    adjusted = stats.holm([p.p for p in prs])
    v = verdicts.decide(prs[0], adjusted[0], lower_is_better=True, unit="FID", delta=None)
    assert v.label == "inconclusive"
    assert "inconclusive at this budget" in v.sentence and "MDE ≈" in v.sentence
    sd = st.tstd(list(NOISE.values()))
    expected_mde = (st.t.ppf(0.975, 4) + st.t.ppf(0.8, 4)) * sd / math.sqrt(5)
    assert prs[0].mde == pytest.approx(expected_mde)
    assert verdicts.decide(prs[1], adjusted[1], True, "FID", None).label == "better"


def test_mde_has_roughly_the_stated_power() -> None:
    # Exact power of the two-sided paired t-test at a true effect equal to the MDE (noncentral t).
    for n in (3, 5, 10):
        mde = stats.mde_paired(1.0, n)
        nc = mde / (1.0 / math.sqrt(n))
        crit = st.t.ppf(0.975, n - 1)
        power = st.nct.sf(crit, n - 1, nc) + st.nct.cdf(-crit, n - 1, nc)
        assert 0.75 < power < 0.85
    assert stats.mde_paired(1.0, 1) is None


def test_holm_on_known_p_values() -> None:
    # sorted: .005·4 = .02, .01·3 = .03, .03·2 = .06, .04·1 = .04 → monotone max gives .06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([None, 0.02, 0.04]) == [None, pytest.approx(0.04), pytest.approx(0.04)]
    assert stats.holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])
    assert stats.holm([]) == []


def test_one_seed_is_reported_not_tested() -> None:
    one = stats.paired({0: 10.0}, {0: 12.0})
    assert one is not None and one.n == 1 and one.p is None and one.low is None and one.mde is None
    v = verdicts.decide(one, None, True, "FID", 1.0)
    assert v.label == "untestable" and "only 1 paired seed" in v.sentence


def test_zero_variance_differences() -> None:
    # A saturated metric: every seed differs by exactly -1 — the limit of the t-test (t = -inf).
    flat = stats.paired({0: 11.0, 1: 13.0, 2: 9.0}, {0: 12.0, 1: 14.0, 2: 10.0})
    assert flat is not None and flat.p == 0.0 and flat.low == flat.high == pytest.approx(-1.0) and flat.mde is None
    v = verdicts.decide(flat, 0.0, True, "FID", 0.5)
    assert v.label == "better" and "on every one of the 3 seeds (zero variance" in v.sentence
    # Identical runs: p = 1, never better or worse; within any δ they are equivalent.
    same = stats.paired({0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0})
    assert same is not None and same.p == 1.0
    assert verdicts.decide(same, 1.0, True, "", 0.01).label == "equivalent"
    assert verdicts.decide(same, 1.0, True, "", None).label == "inconclusive"
    # Float noise in "identical" differences is not variance.
    noisy = stats.paired({0: 0.1 + 0.2, 1: 0.7}, {0: 0.3, 1: 0.7})
    assert noisy is not None and noisy.p == 1.0


def test_pairs_only_common_seeds() -> None:
    pr = stats.paired({0: 1.0, 1: 2.0, 5: 9.0}, {0: 0.5, 1: 1.0, 2: 7.0})
    assert pr is not None and pr.seeds == (0, 1) and pr.diff == pytest.approx(0.75)
    assert stats.paired({3: 1.0}, {4: 1.0}) is None
    assert verdicts.decide(None, None, True, "", 1.0).label == "untestable"


def test_number_formatting() -> None:
    assert stats.fmt(None) == "n/a" and stats.fmt(float("nan")) == "n/a"
    assert stats.fmt(12.3456) == "12.3" and stats.fmt(0.0012345) == "0.00123" and stats.fmt(0) == "0"
    assert stats.fmt_p(0.0004) == "< 0.001" and stats.fmt_p(0.04321) == "0.043"
