"""golf_core.stats against scipy (test-only dependency) and hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest

scipy_stats = pytest.importorskip("scipy.stats")
scipy_special = pytest.importorskip("scipy.special")

from golf_core import stats  # noqa: E402


def test_betainc_matches_scipy():
    rng = np.random.default_rng(0)
    cases = [(a, b, x) for a in (0.05, 0.5, 1.0, 2.5, 17.0, 300.0) for b in (0.5, 1.0, 3.0, 40.0)
             for x in (1e-6, 0.01, 0.3, 0.5, 0.77, 0.999)]
    cases += [tuple(v) for v in zip(rng.uniform(0.01, 100, 300), rng.uniform(0.01, 100, 300), rng.uniform(0, 1, 300))]
    for a, b, x in cases:
        ref = scipy_special.betainc(a, b, x)
        assert stats.betainc(a, b, x) == pytest.approx(ref, rel=1e-10, abs=1e-300), (a, b, x)
    assert stats.betainc(2.0, 3.0, 0.0) == 0.0 and stats.betainc(2.0, 3.0, 1.0) == 1.0
    with pytest.raises(ValueError):
        stats.betainc(0.0, 1.0, 0.5)


@pytest.mark.parametrize("df", [0.7, 1.0, 1.5, 2.0, 3.0, 4.4, 10.0, 57.3, 1000.0])
def test_student_t_matches_scipy(df):
    for t in (-80.0, -6.0, -2.5, -1.0, -0.1, 0.0, 0.4, 1.0, 2.0, 3.3, 12.0, 250.0):
        assert stats.t_cdf(t, df) == pytest.approx(scipy_stats.t.cdf(t, df), rel=1e-9, abs=1e-300)
        assert stats.t_sf(t, df) == pytest.approx(scipy_stats.t.sf(t, df), rel=1e-9, abs=1e-300)
        assert stats.t_two_sided_p(t, df) == pytest.approx(2 * scipy_stats.t.sf(abs(t), df), rel=1e-9, abs=1e-300)
    assert stats.t_sf(math.inf, df) == 0.0 and stats.t_sf(-math.inf, df) == 1.0
    assert math.isnan(stats.t_sf(math.nan, df)) and math.isnan(stats.t_sf(1.0, 0.0))


def test_t_known_quantiles():
    # textbook critical values: t_{0.995, 1} = 63.657, t_{0.975, 2} = 4.303
    assert stats.t_two_sided_p(63.65674, 1) == pytest.approx(0.01, rel=1e-5)
    assert stats.t_two_sided_p(4.302653, 2) == pytest.approx(0.05, rel=1e-5)


SAMPLES = [
    # equal n, similar variances
    ([1.2243, 1.2251, 1.2238], [1.2190, 1.2199, 1.2185]),
    # unequal variances and unequal n
    ([1.30, 1.31, 1.29, 1.35, 1.24], [1.20, 1.2001, 1.1999]),
    # n = 2 in both groups
    ([1.0856, 1.0861], [1.0828, 1.0826]),
    # n = 2 against n = 4, heavily unequal variances
    ([0.5, 0.9], [0.61, 0.6101, 0.6099, 0.61005]),
    # no difference at all: t = 0, p = 1
    ([2.0, 2.1, 2.2], [2.2, 2.1, 2.0]),
    # huge separation: tiny p
    ([10.0, 10.001, 10.0005], [1.0, 1.001, 1.0002]),
]


@pytest.mark.parametrize("a,b", SAMPLES)
def test_mean_std_welch_match_scipy(a, b):
    assert stats.mean(a) == pytest.approx(np.mean(a), rel=1e-14)
    assert stats.std(a) == pytest.approx(np.std(a, ddof=1), rel=1e-12)
    assert stats.var(b) == pytest.approx(np.var(b, ddof=1), rel=1e-12)
    ref = scipy_stats.ttest_ind(a, b, equal_var=False)
    w = stats.welch(a, b)
    assert w.diff == pytest.approx(np.mean(a) - np.mean(b), rel=1e-12, abs=1e-15)
    assert w.t == pytest.approx(ref.statistic, rel=1e-9, abs=1e-12)
    assert w.p_two_sided == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-300)
    if hasattr(ref, "df"):
        assert w.df == pytest.approx(ref.df, rel=1e-10)
    # Welch-Satterthwaite by hand
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    assert w.df == pytest.approx((va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)), rel=1e-10)
    greater = scipy_stats.ttest_ind(a, b, equal_var=False, alternative="greater")
    assert w.p_greater == pytest.approx(greater.pvalue, rel=1e-8, abs=1e-300)


@pytest.mark.parametrize("a,b", SAMPLES[:4])
@pytest.mark.parametrize("margin", [0.0, 0.001, 0.0019357, -0.002])
def test_welch_with_margin_matches_shifted_scipy(a, b, margin):
    ref = scipy_stats.ttest_ind(np.asarray(a) - margin, b, equal_var=False, alternative="greater")
    w = stats.welch(a, b, margin=margin)
    assert w.t == pytest.approx(ref.statistic, rel=1e-9, abs=1e-12)
    assert w.p_greater == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-300)


@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")  # scipy, on constant data
def test_welch_undefined_cases_are_nan():
    one = stats.welch([1.0], [1.0, 2.0])
    assert math.isnan(one.t) and math.isnan(one.p_two_sided) and one.diff == pytest.approx(-0.5)
    # zero variance in both groups: as scipy, t = -inf and p = 0 (or nan for equal means)
    flat = stats.welch([1.0, 1.0], [2.0, 2.0])
    ref = scipy_stats.ttest_ind([1.0, 1.0], [2.0, 2.0], equal_var=False)
    assert flat.t == ref.statistic == -math.inf and flat.p_two_sided == ref.pvalue == 0.0 and flat.se == 0.0
    assert flat.p_greater == 1.0 and stats.welch([2.0, 2.0], [1.0, 1.0]).p_greater == 0.0
    same = stats.welch([1.0, 1.0], [1.0, 1.0])
    assert math.isnan(same.t) and math.isnan(same.p_two_sided)
    const = stats.paired([1.0, 2.0], [0.5, 1.5])
    assert const.t == math.inf and const.p_two_sided == 0.0 and const.df == 1.0
    assert math.isnan(stats.paired([1.0, 2.0], [1.0, 2.0]).t)
    assert math.isnan(stats.std([3.0])) and math.isnan(stats.mean([]))


def test_bar_conversion():
    # pg_core.md §1 item 4: sp8192 has 0.26834 tokens per byte; 0.005 nats/token ~ 0.00194 bpb
    tokens, nbytes = 26834, 100000
    margin = stats.bar_margin_bpb(tokens, nbytes)
    assert margin == pytest.approx(0.005 / 0.6931471805599453 * 0.26834, rel=1e-12)
    assert round(margin, 5) == 0.00194
    # round trip: margin in bpb is exactly 0.005 nats/token
    assert stats.nats_per_token(margin, tokens, nbytes) == pytest.approx(0.005, rel=1e-12)
    # RTTT: 0.00283 bpb ~ 0.00731 nats per token at sp8192 (pg_core.md §1 item 4)
    assert stats.nats_per_token(0.00283, 0.26834, 1.0) == pytest.approx(0.00731, abs=5e-5)


@pytest.mark.parametrize("a,b", [s for s in SAMPLES if len(s[0]) == len(s[1])] + [([1.0, 1.1, 1.3, 0.9], [0.8, 1.0, 1.05, 0.7])])
def test_paired_matches_scipy(a, b):
    ref = scipy_stats.ttest_rel(a, b)
    w = stats.paired(a, b)
    assert w.t == pytest.approx(ref.statistic, rel=1e-9)
    assert w.p_two_sided == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-300)
    assert w.df == len(a) - 1
    with pytest.raises(ValueError):
        stats.paired([1.0, 2.0], [1.0])
