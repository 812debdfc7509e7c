"""Log-rank (and Fleming-Harrington G-rho) tests, stratified, with a trend test, as R's survdiff."""

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
    check_times,
    column_array,
    complete_rows,
    event_array,
    group_codes,
)
from cohort.survival._common import timefix as aeq_times

__all__ = ["LogRank", "logrank"]


@dataclass(frozen=True)
class LogRank:
    """Result of :func:`logrank`.

    Attributes
    ----------
    statistic, df, p_value : the chi-square test of equal hazards across groups.
    summary : polars.DataFrame
        group, n, observed, expected, o_minus_e, variance (diagonal of V).
    variance : numpy array
        The G x G variance matrix of O - E.
    trend_statistic, trend_p_value : the 1-df test for trend (when ``trend`` or ``scores`` was given).
    """

    statistic: float
    df: int
    p_value: float
    summary: pl.DataFrame
    variance: np.ndarray
    rho: float
    trend_statistic: float | None = None
    trend_p_value: float | None = None
    scores: tuple[float, ...] | None = None
    converged: bool = True
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable plain data."""
        return {
            "test": "logrank" if self.rho == 0 else f"fleming_harrington_rho_{self.rho}",
            "statistic": self.statistic,
            "df": self.df,
            "p_value": self.p_value,
            "summary": self.summary.to_dicts(),
            "variance": self.variance.tolist(),
            "trend_statistic": self.trend_statistic,
            "trend_p_value": self.trend_p_value,
            "scores": None if self.scores is None else list(self.scores),
            "warnings": list(self.warnings),
        }


def _stratum_oe(
    start: np.ndarray | None, stop: np.ndarray, event: np.ndarray, grp: np.ndarray, ngroups: int, rho: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    times = np.unique(stop[event])
    if times.size == 0:
        return np.zeros(ngroups), np.zeros(ngroups), np.zeros((ngroups, ngroups))
    n_k = np.zeros((times.size, ngroups))
    d_k = np.zeros((times.size, ngroups))
    for k in range(ngroups):
        m = grp == k
        s_stop = np.sort(stop[m])
        n_k[:, k] = s_stop.size - np.searchsorted(s_stop, times, side="left")
        if start is not None:
            s_start = np.sort(start[m])
            n_k[:, k] -= s_start.size - np.searchsorted(s_start, times, side="left")
        et = np.sort(stop[m & event])
        d_k[:, k] = np.searchsorted(et, times, side="right") - np.searchsorted(et, times, side="left")
    n = n_k.sum(axis=1)
    d = d_k.sum(axis=1)
    if rho != 0:
        surv = np.cumprod(1 - d / n)
        wt = np.concatenate([[1.0], surv[:-1]]) ** rho
    else:
        wt = np.ones_like(n)
    e_k = d[:, None] * n_k / n[:, None]
    obs = (wt[:, None] * d_k).sum(axis=0)
    exp = (wt[:, None] * e_k).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(n > 1, wt**2 * d * (n - d) / (n * (n - 1)), 0.0)
    # V = sum_t c_t (diag(n_k) n - n_k n_l) / n
    v = np.diag((c[:, None] * n_k).sum(axis=0)) - (n_k * (c / n)[:, None]).T @ n_k
    return obs, exp, v


def logrank(
    df: Any,
    *,
    time: str,
    event: str,
    by: str | Sequence[str],
    strata: str | Sequence[str] | None = None,
    entry: str | None = None,
    rho: float = 0.0,
    trend: bool = False,
    scores: Sequence[float] | None = None,
    timefix: bool = True,
    missing: str = "drop",
) -> LogRank:
    """Log-rank test of equal survival across groups, as R's ``survdiff``.

    Parameters
    ----------
    df : polars or pandas DataFrame
    time, event : follow-up time and 0/1 event columns.
    by : column(s) defining the groups compared.
    strata : column(s): the test is summed over strata (stratified log-rank).
    entry : delayed-entry times (left truncation), rows are (entry, time].
    rho : Fleming-Harrington weight S(t-)^rho (0: log-rank, 1: Peto-Peto-like).
    trend : add the 1-df test for trend using the sorted numeric ``by`` values as scores.
    scores : explicit scores for the trend test, one per group in sorted order.
    timefix : merge nearly equal times (floating-point noise) as R's ``aeqSurv`` (default, as R).
    missing : "drop" (default, as R's ``na.omit``): rows with a missing value (null or NaN) in a
        column used are left out, the note in ``.warnings`` states how many, per column and which
        rows; "raise" refuses them.

    Examples
    --------
    >>> import polars as pl
    >>> from cohort import survival as sv
    >>> df = pl.DataFrame({"t": [1, 2, 3, 4, 5, 6, 7, 8], "e": [1, 1, 0, 1, 1, 1, 0, 1],
    ...                    "g": [0, 0, 0, 0, 1, 1, 1, 1]})
    >>> round(sv.logrank(df, time="t", event="e", by="g").p_value, 3)
    0.021
    """
    frame = as_polars(df)
    stop = column_array(frame, time, role="time")
    start = column_array(frame, entry, role="entry") if entry else None
    rows, notes = complete_rows(frame, [time, event, entry, *as_columns(by), *as_columns(strata)],
                                missing=missing, model="logrank")
    check_times(stop, name=time, start=start, start_name=entry or "entry", rows=rows)
    ev = event_array(frame, event, rows=rows)
    if notes:
        frame, stop, start = frame[rows], stop[rows], None if start is None else start[rows]
    if timefix:
        stop, start = aeq_times(stop, start)
    codes, labels, keys = group_codes(frame, by)
    if len(labels) < 2:
        raise ModelSpecError(f"logrank needs at least two groups in {by!r}, found {len(labels)}")
    scodes, _, _ = group_codes(frame, strata, role="strata")
    g = len(labels)
    obs = np.zeros(g)
    exp = np.zeros(g)
    var = np.zeros((g, g))
    for s in np.unique(scodes):
        m = scodes == s
        o, e, v = _stratum_oe(None if start is None else start[m], stop[m], ev[m], codes[m], g, rho)
        obs += o
        exp += e
        var += v
    u = obs - exp
    keep = np.flatnonzero(np.diag(var) > 0)[:-1] if (np.diag(var) > 0).sum() > 1 else np.array([], int)
    if keep.size == 0:
        stat = 0.0
    else:
        stat = float(u[keep] @ np.linalg.solve(var[np.ix_(keep, keep)], u[keep]))
    dof = int(keep.size)
    pval = float(stats.chi2.sf(stat, dof)) if dof > 0 else 1.0
    tstat = tp = None
    sc = None
    if scores is not None or trend:
        if scores is None:
            if keys is None or keys.width != 1 or not keys.dtypes[0].is_numeric():
                raise ModelSpecError("trend=True needs one numeric by column; or pass scores=[...]")
            sc = keys.to_series().cast(pl.Float64).to_numpy()
        else:
            sc = np.asarray(scores, dtype=float)
            if sc.size != g:
                raise ModelSpecError(f"scores has {sc.size} values but there are {g} groups ({labels})")
        tstat = float((sc @ u) ** 2 / (sc @ var @ sc))
        tp = float(stats.chi2.sf(tstat, 1))
    n = np.bincount(codes, minlength=g)
    summary = pl.DataFrame(
        {
            "group": labels,
            "n": n,
            "observed": obs,
            "expected": exp,
            "o_minus_e": u,
            "variance": np.diag(var),
        }
    )
    return LogRank(
        statistic=stat,
        df=dof,
        p_value=pval,
        summary=summary,
        variance=var,
        rho=rho,
        trend_statistic=tstat,
        trend_p_value=tp,
        scores=None if sc is None else tuple(float(x) for x in sc),
        warnings=tuple(notes),
    )
