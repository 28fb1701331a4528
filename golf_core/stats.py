"""Small-sample statistics for ablations, written out so that golf needs no scipy at run time.

* ``mean`` / ``std`` (sample standard deviation, ``ddof=1``);
* the Student t distribution through the regularized incomplete beta function, evaluated with
  a continued fraction (modified Lentz), and ``math.lgamma``;
* Welch's unequal-variance t test (two-sided p), and the one-sided Welch test against a margin
  that the challenge's significance bar needs; a paired t test for runs matched by seed;
* ``bar_margin_bpb``: the challenge's 0.005 nats/token expressed in bits per byte.

The challenge's bar (research/pg_core.md §1 item 4): a new record must beat the old one "by at
least 0.005 nats" and show "at p < 0.01" that it did. Scores are reported in bits per byte, so
the conversion uses the run's own token and byte counts of the validation set (``val_tokens``,
``val_bytes`` in result.json)::

    nats/token = bpb * ln 2 * val_bytes / val_tokens
    bpb        = nats/token * val_tokens / (val_bytes * ln 2)

For sp8192 (0.26834 tokens per byte) 0.005 nats/token is 0.00194 bpb. ``passes_bar`` is the
literal reading of the rule: a one-sided Welch test of H0 "improvement <= margin" against
H1 "improvement > margin", rejected at p < 0.01 (this is what the 2026-03-18 LongContextSeq2048
record did, with a one-sample test against ``baseline - 0.005``). Undefined quantities (fewer
than two samples, zero variance in both groups) are ``math.nan``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

#: The challenge's required improvement, in nats per token.
BAR_NATS = 0.005
#: The challenge's significance level.
BAR_P = 0.01

_EPS = 1e-15
_TINY = 1e-300
_MAX_ITER = 10_000


def mean(xs: Sequence[float]) -> float:
    """Arithmetic mean (``nan`` for an empty sequence), summed in float64 with ``math.fsum``."""
    xs = [float(x) for x in xs]
    return math.fsum(xs) / len(xs) if xs else math.nan


def var(xs: Sequence[float]) -> float:
    """Sample variance with ``ddof=1`` (``nan`` for fewer than two values)."""
    xs = [float(x) for x in xs]
    if len(xs) < 2:
        return math.nan
    m = mean(xs)
    return math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1)


def std(xs: Sequence[float]) -> float:
    """Sample standard deviation with ``ddof=1`` (``nan`` for fewer than two values)."""
    v = var(xs)
    return math.sqrt(v) if not math.isnan(v) else math.nan


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz's method)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if abs(d) < _TINY:
        d = _TINY
    d = 1.0 / d
    h = d
    for m in range(1, _MAX_ITER + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))  # even step
        d = 1.0 + aa * d
        if abs(d) < _TINY:
            d = _TINY
        c = 1.0 + aa / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))  # odd step
        d = 1.0 + aa * d
        if abs(d) < _TINY:
            d = _TINY
        c = 1.0 + aa / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta continued fraction did not converge (a={a}, b={b}, x={x})")


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if a <= 0 or b <= 0:
        raise ValueError(f"betainc needs a, b > 0, got a={a}, b={b}")
    if math.isnan(x):
        return math.nan
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    # symmetry I_x(a, b) = 1 - I_{1-x}(b, a), where the continued fraction converges fast
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """Survival function P(T > t) of Student's t with ``df`` (> 0, not necessarily integer)
    degrees of freedom."""
    if math.isnan(t) or math.isnan(df) or df <= 0:
        return math.nan
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))  # P(T > |t|)
    return tail if t >= 0 else 1.0 - tail


def t_cdf(t: float, df: float) -> float:
    """Cumulative distribution function P(T <= t) of Student's t with ``df`` degrees of freedom."""
    sf = t_sf(t, df)
    return math.nan if math.isnan(sf) else 1.0 - sf if t >= 0 else t_sf(-t, df)


def t_two_sided_p(t: float, df: float) -> float:
    """Two-sided p-value P(|T| >= |t|), computed directly (no cancellation for large |t|)."""
    if math.isnan(t) or math.isnan(df) or df <= 0:
        return math.nan
    if math.isinf(t):
        return 0.0
    return min(1.0, betainc(df / 2.0, 0.5, df / (df + t * t)))


@dataclass(frozen=True)
class WelchResult:
    """Welch's t test of mean(a) - mean(b) - margin: statistic, Welch-Satterthwaite degrees of
    freedom, two-sided p-value, and the one-sided p-value for H1 "mean(a) - mean(b) > margin"."""

    diff: float
    se: float
    t: float
    df: float
    p_two_sided: float
    p_greater: float


def _degenerate(diff: float, num: float, df: float) -> WelchResult:
    """Zero standard error (every group, or every difference, constant): t is +-inf with
    p = 0 when the numerator is non-zero, undefined (``nan``) when it is zero, as in scipy."""
    if num == 0.0:
        return WelchResult(diff, 0.0, math.nan, df, math.nan, math.nan)
    t = math.copysign(math.inf, num)
    return WelchResult(diff, 0.0, t, df, 0.0, 0.0 if t > 0 else 1.0)


def welch(a: Sequence[float], b: Sequence[float], margin: float = 0.0) -> WelchResult:
    """Welch's unequal-variance t test of ``mean(a) - mean(b)`` against ``margin``.

    ``t = (mean(a) - mean(b) - margin) / sqrt(var(a)/na + var(b)/nb)`` with Welch-Satterthwaite
    ``df``. Matches ``scipy.stats.ttest_ind(a, b - margin, equal_var=False)``. Needs at least
    two values in each group (otherwise t, df and p are ``nan``); when both variances are zero,
    t is +-inf (p = 0) or ``nan`` for equal means, and df is ``nan``.
    """
    na, nb = len(a), len(b)
    diff = mean(a) - mean(b)
    if na < 2 or nb < 2:
        return WelchResult(diff, math.nan, math.nan, math.nan, math.nan, math.nan)
    va, vb = var(a) / na, var(b) / nb
    se2 = va + vb
    if se2 <= 0.0:
        return _degenerate(diff, diff - margin, math.nan)
    se = math.sqrt(se2)
    t = (diff - margin) / se
    df = se2 * se2 / (va * va / (na - 1) + vb * vb / (nb - 1))
    return WelchResult(diff, se, t, df, t_two_sided_p(t, df), t_sf(t, df))


def paired(a: Sequence[float], b: Sequence[float]) -> WelchResult:
    """Paired t test of ``a[i] - b[i]`` (e.g. variant and base runs with the same seed), as
    ``scipy.stats.ttest_rel(a, b)``: df = n - 1; ``nan`` for fewer than two pairs; constant
    differences give t = +-inf (p = 0), or ``nan`` when they are all zero. Returned in a WelchResult (``p_greater``: H1 mean difference > 0)."""
    if len(a) != len(b):
        raise ValueError(f"paired test needs equal lengths, got {len(a)} and {len(b)}")
    d = [float(x) - float(y) for x, y in zip(a, b)]
    n = len(d)
    md = mean(d)
    if n < 2:
        return WelchResult(md, math.nan, math.nan, math.nan, math.nan, math.nan)
    se = std(d) / math.sqrt(n)
    if se <= 0.0:
        return _degenerate(md, md, float(n - 1))
    t = md / se
    df = float(n - 1)
    return WelchResult(md, se, t, df, t_two_sided_p(t, df), t_sf(t, df))


def nats_per_token(bpb: float, val_tokens: float, val_bytes: float) -> float:
    """Convert bits per byte to nats per token: ``bpb * ln 2 * val_bytes / val_tokens``."""
    return bpb * math.log(2.0) * val_bytes / val_tokens


def bar_margin_bpb(val_tokens: float, val_bytes: float, nats: float = BAR_NATS) -> float:
    """The challenge's required improvement (``nats`` per token, default 0.005) in bits per
    byte for a validation set of ``val_tokens`` tokens spanning ``val_bytes`` bytes."""
    return nats * val_tokens / (val_bytes * math.log(2.0))
