"""Incidence rates with exact Poisson confidence intervals and rate ratios (as R's poisson.test)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from cohort.errors import ModelSpecError
from cohort.survival._common import (
    as_columns,
    as_polars,
    column_array,
    complete_rows,
    group_codes,
    rows_text,
    used_mask,
)

__all__ = ["IncidenceRates", "incidence_rate"]


def _exact_rate_ci(k: np.ndarray, pt: np.ndarray, conf_level: float) -> tuple[np.ndarray, np.ndarray]:
    a = 1 - conf_level
    low = np.where(k > 0, stats.gamma.ppf(a / 2, np.maximum(k, 1e-300)) / pt, 0.0)
    high = stats.gamma.ppf(1 - a / 2, k + 1) / pt
    return low, high


def _rate_ratio(x1: int, t1: float, x2: int, t2: float, conf_level: float) -> tuple[float, float, float, float]:
    """Exact conditional (binomial) rate ratio test and CI, as R's poisson.test(c(x1, x2), c(t1, t2))."""
    n = x1 + x2
    est = (x1 / t1) / (x2 / t2) if x2 > 0 else float("inf")
    if n == 0:
        return float("nan"), 0.0, float("inf"), 1.0
    p0 = t1 / (t1 + t2)
    res = stats.binomtest(int(x1), int(n), p0)
    ci = res.proportion_ci(confidence_level=conf_level, method="exact")
    to_rr = lambda p: (p / (1 - p)) * (t2 / t1) if p < 1 else float("inf")  # noqa: E731
    return est, to_rr(ci.low), to_rr(ci.high), float(res.pvalue)


@dataclass(frozen=True)
class IncidenceRates:
    """Result of :func:`incidence_rate`.

    ``summary``: group, events, person_time, rate (per ``per``), conf_low,
    conf_high (exact Poisson), rate_ratio, rr_conf_low, rr_conf_high, p_value
    (exact conditional test against the reference group).
    """

    summary: pl.DataFrame
    per: float
    reference: str | None
    conf_level: float
    converged: bool = True
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimator": "incidence_rate",
            "per": self.per,
            "reference": self.reference,
            "conf_level": self.conf_level,
            "summary": self.summary.to_dicts(),
        }


def incidence_rate(
    df: Any,
    *,
    events: str,
    person_time: str,
    by: str | Sequence[str] | None = None,
    per: float = 1000.0,
    reference: str | None = None,
    conf_level: float = 0.95,
    missing: str = "drop",
) -> IncidenceRates:
    """Incidence rates per ``per`` person-time units with exact Poisson CIs and rate ratios.

    Rows are summed within groups, so the input can be one row per person
    (event count or 0/1, and follow-up time) or pre-aggregated counts.

    Parameters
    ----------
    events : column with event counts.
    person_time : column with person-time at risk.
    by : grouping column(s); rate ratios compare each group with ``reference``
        (default: the first group in sorted order).
    per : rate multiplier (e.g. 1000 for "per 1000 person-years").
    missing : "drop" (default, as R's ``na.omit``): rows with a missing value (null or NaN) in a
        column used are left out, the note in ``.warnings`` states how many, per column and which
        rows; "raise" refuses them.

    Examples
    --------
    >>> import polars as pl
    >>> from cohort import survival as sv
    >>> df = pl.DataFrame({"site": ["a", "b"], "n": [12, 30], "py": [1500.0, 2100.0]})
    >>> r = sv.incidence_rate(df, events="n", person_time="py", by="site", per=1000)
    >>> r.summary["rate"].round(2).to_list()
    [8.0, 14.29]
    """
    frame = as_polars(df)
    k = column_array(frame, events, role="events")
    pt = column_array(frame, person_time, role="person_time")
    rows, notes = complete_rows(frame, [events, person_time, *as_columns(by)], missing=missing,
                                model="incidence_rate")
    used = used_mask(frame.height, rows)
    bad = (~np.isfinite(k) | (k < 0) | (k != np.round(k))) & used
    if bad.any():
        raise ModelSpecError(f"events column {events!r} must hold non-negative whole counts; see {rows_text(bad)}")
    bad = (~np.isfinite(pt) | (pt < 0)) & used
    if bad.any():
        raise ModelSpecError(f"person_time column {person_time!r} must be >= 0 and finite; see {rows_text(bad)}")
    if notes:
        frame, k, pt = frame[rows], k[rows], pt[rows]
    codes, labels, _ = group_codes(frame, by)
    G = len(labels)
    kg = np.bincount(codes, weights=k, minlength=G)
    ptg = np.bincount(codes, weights=pt, minlength=G)
    if (ptg <= 0).any():
        empty = [labels[i] for i in np.flatnonzero(ptg <= 0)]
        raise ModelSpecError(f"group(s) {empty} have no person-time: rates are undefined")
    low, high = _exact_rate_ci(kg, ptg, conf_level)
    ref = labels[0] if reference is None else str(reference)
    if ref not in labels:
        raise ModelSpecError(f"reference {reference!r} is not a group; groups: {labels}")
    r = labels.index(ref)
    rr = [_rate_ratio(int(kg[i]), ptg[i], int(kg[r]), ptg[r], conf_level) if i != r else (1.0, None, None, None)
          for i in range(G)]
    summary = pl.DataFrame(
        {
            "group": labels,
            "events": kg,
            "person_time": ptg,
            "rate": kg / ptg * per,
            "conf_low": low * per,
            "conf_high": high * per,
            "rate_ratio": [x[0] for x in rr],
            "rr_conf_low": [x[1] for x in rr],
            "rr_conf_high": [x[2] for x in rr],
            "p_value": [x[3] for x in rr],
        },
        schema_overrides={"rr_conf_low": pl.Float64, "rr_conf_high": pl.Float64, "p_value": pl.Float64},
    )
    return IncidenceRates(summary=summary, per=per, reference=ref if G > 1 else None, conf_level=conf_level,
                          warnings=tuple(notes))
