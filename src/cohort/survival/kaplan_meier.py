"""Kaplan-Meier survival curves with Greenwood or robust (infinitesimal jackknife) standard
errors, as R's survfit."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from cohort.errors import ModelSpecError
from cohort.survival._common import (
    as_columns,
    as_polars,
    check_times,
    column_array,
    complete_rows,
    event_array,
    group_codes,
    weight_array,
    z_value,
)
from cohort.survival._common import timefix as aeq_times

__all__ = ["KaplanMeier", "kaplan_meier"]

_CONF_TYPES = ("log", "log-log", "plain")


def _conf_band(
    surv: np.ndarray, se_log: np.ndarray, z: float, conf_type: str
) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise limits as R's survfit: ``se_log`` is the SE of log S."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conf_type == "log":
            low = surv * np.exp(-z * se_log)
            high = np.minimum(1.0, surv * np.exp(z * se_log))
        elif conf_type == "log-log":
            xx = np.log(surv)
            se2 = se_log / np.abs(xx)
            low = np.exp(-np.exp(np.log(-xx) + z * se2))
            high = np.exp(-np.exp(np.log(-xx) - z * se2))
        else:
            se = surv * se_log
            low = np.maximum(0.0, surv - z * se)
            high = np.minimum(1.0, surv + z * se)
    bad = (surv <= 0) | ~np.isfinite(se_log)
    if conf_type != "plain":
        low = np.where(bad, np.nan, low)
        high = np.where(bad, np.nan, high)
    # where the SE is 0 (before any event) the band collapses on the estimate
    zero = se_log == 0
    low = np.where(zero, surv, low)
    high = np.where(zero, surv, high)
    return low, high


def _ij_var_log(
    times: np.ndarray,
    inv: np.ndarray,
    start: np.ndarray | None,
    event: np.ndarray,
    weights: np.ndarray,
    n_risk: np.ndarray,
    n_event: np.ndarray,
) -> np.ndarray:
    """Infinitesimal-jackknife variance of log S(t) at each distinct time, one row per subject.

    With C the running sum of d_k / (n_k (n_k - d_k)), the influence of row i (entry index
    L_i: the last time <= its entry; time index K_i) on log S(t_j) is 0 before it enters,
    C_j - C_{L_i} while at risk (L_i < j < K_i) and C_{K_i} - C_{L_i} - e_i / (n_K - d_K)
    after; the variance is the sum over rows of (w_i * influence)^2, as survfit's robust
    variance with each row its own cluster. O(n + times).
    """
    T = times.size
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(n_event > 0, 1.0 / (n_risk - n_event), 0.0)
        C = np.cumsum(np.where(n_event > 0, n_event / n_risk, 0.0) * a)
    if start is None:
        L = np.full(inv.size, -1)
        CL = np.zeros(inv.size)
    else:
        L = np.searchsorted(times, start, side="right") - 1
        CL = np.where(L >= 0, C[np.maximum(L, 0)], 0.0)
    w2 = weights * weights
    with np.errstate(invalid="ignore"):
        own = C[inv] - CL - event * a[inv]
        done = np.cumsum(np.bincount(inv, weights=w2 * own * own, minlength=T))

    def at_risk_sum(v: np.ndarray) -> np.ndarray:  # sum of v over rows with L_i < j < K_i
        return np.cumsum(np.bincount(L + 1, weights=v, minlength=T + 1) - np.bincount(inv, weights=v, minlength=T + 1))[:T]

    with np.errstate(invalid="ignore"):
        return C * C * at_risk_sum(w2) - 2 * C * at_risk_sum(w2 * CL) + at_risk_sum(w2 * CL * CL) + done


def _km_curve(
    start: np.ndarray | None, stop: np.ndarray, event: np.ndarray, weights: np.ndarray, *, robust: bool = False
) -> dict[str, np.ndarray]:
    """One KM curve at each distinct stop time (events and censorings).

    ``se_log`` is Greenwood's, or the infinitesimal jackknife's with ``robust``.
    """
    times, inv = np.unique(stop, return_inverse=True)
    n_event = np.bincount(inv, weights=weights * event, minlength=times.size)
    n_all = np.bincount(inv, weights=weights, minlength=times.size)
    n_censor = n_all - n_event
    # at risk at t: stop >= t minus (start >= t)
    n_risk = np.cumsum(n_all[::-1])[::-1]
    if start is not None:
        s_sorted = np.sort(start)
        w_sorted = weights[np.argsort(start, kind="stable")]
        cum = np.concatenate([[0.0], np.cumsum(w_sorted[::-1])])[::-1]  # cum[i] = sum w of sorted[i:]
        pos = np.searchsorted(s_sorted, times, side="left")
        n_risk = n_risk - cum[pos]
    with np.errstate(divide="ignore", invalid="ignore"):
        haz = np.where(n_risk > 0, n_event / n_risk, 0.0)
        surv = np.cumprod(1.0 - haz)
        term = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event)), 0.0)
    var_log = _ij_var_log(times, inv, start, event, weights, n_risk, n_event) if robust else np.cumsum(term)
    se_log = np.sqrt(var_log)
    return {
        "time": times,
        "n_risk": n_risk,
        "n_event": n_event,
        "n_censor": n_censor,
        "survival": surv,
        "se_log": se_log,
    }


def _std_error(surv: np.ndarray, se_log: np.ndarray, variance: str) -> np.ndarray:
    """SE on the survival scale: S * se(log S); 0 where S = 0 with the robust variance (as R)."""
    with np.errstate(invalid="ignore"):
        se = surv * se_log
    return np.where(surv == 0, 0.0, se) if variance == "robust" else se


def _minmin(y: np.ndarray, x: np.ndarray) -> float | None:
    """R's survfit median rule: first x where y <= 0.5, midpoint on a flat 0.5 stretch."""
    tol = math.sqrt(np.finfo(float).eps)
    keep = ~np.isnan(y) & (y < 0.5 + tol)
    if not keep.any():
        return None
    xk, yk = x[keep], y[keep]
    if abs(yk[0] - 0.5) < tol and (yk < yk[0]).any():
        return float((xk[0] + xk[np.flatnonzero(yk < yk[0])[0]]) / 2)
    return float(xk[0])


@dataclass(frozen=True)
class KaplanMeier:
    """Kaplan-Meier estimates per group; see :func:`kaplan_meier`.

    Attributes
    ----------
    summary : polars.DataFrame
        One row per group and distinct time: group, time, n_risk, n_event,
        n_censor, survival, std_error (on the survival scale), conf_low, conf_high.
    groups : tuple of str
        The group labels in order.
    conf_level, conf_type : the confidence band settings.
    variance : str
        "greenwood" or "robust" (infinitesimal jackknife): the variance behind
        std_error and the band; see :func:`kaplan_meier`.
    """

    summary: pl.DataFrame
    groups: tuple[str, ...]
    conf_level: float
    conf_type: str
    by: tuple[str, ...] | None = None
    time_name: str = "time"
    warnings: tuple[str, ...] = ()
    converged: bool = True
    variance: str = "greenwood"
    _se_log: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def _group(self, g: str) -> pl.DataFrame:
        return self.summary.filter(pl.col("group") == g)

    def at(self, times: Sequence[float] | float) -> pl.DataFrame:
        """Survival at the given times (step function, right-continuous), per group.

        Returns group, time, n_risk, survival, std_error, conf_low, conf_high;
        before the first time the survival is 1; after the last time the last
        value is carried forward (as R's ``summary(fit, times, extend=TRUE)``,
        with n_risk 0 there).
        """
        ts = np.atleast_1d(np.asarray(times, dtype=float))
        z = z_value(self.conf_level)
        out = []
        for g in self.groups:
            sub = self._group(g)
            t = sub.get_column("time").to_numpy()
            s = sub.get_column("survival").to_numpy()
            se_log = self._se_log[g]
            nr = sub.get_column("n_risk").to_numpy()
            idx = np.searchsorted(t, ts, side="right") - 1
            surv = np.where(idx >= 0, s[np.maximum(idx, 0)], 1.0)
            sel = np.where(idx >= 0, se_log[np.maximum(idx, 0)], 0.0)
            # number at risk just before/at t: first curve time >= t
            nxt = np.searchsorted(t, ts, side="left")
            n_risk = np.where(nxt < t.size, nr[np.minimum(nxt, t.size - 1)], 0.0)
            low, high = _conf_band(surv, sel, z, self.conf_type)
            std_error = _std_error(surv, sel, self.variance)
            out.append(
                pl.DataFrame(
                    {
                        "group": [g] * ts.size,
                        "time": ts,
                        "n_risk": n_risk,
                        "survival": surv,
                        "std_error": std_error,
                        "conf_low": low,
                        "conf_high": high,
                    }
                )
            )
        return pl.concat(out)

    def median(self) -> pl.DataFrame:
        """Median survival per group with its CI (Brookmeyer-Crowley, as R); null when not reached."""
        return self.quantile(0.5).drop("quantile")

    def quantile(self, q: float) -> pl.DataFrame:
        """Time by which a fraction ``q`` has had the event, with CI, per group (as R's quantile)."""
        if not 0 < q < 1:
            raise ModelSpecError(f"quantile q must be in (0, 1), got {q}")
        rows = []
        for g in self.groups:
            sub = self._group(g)
            t = sub.get_column("time").to_numpy()
            # R's rule is applied to 1 - q on the survival scale (shift so 0.5 is the cut)
            shift = 0.5 - (1 - q)
            rows.append(
                {
                    "group": g,
                    "quantile": q,
                    "median" if q == 0.5 else "time": _minmin(sub.get_column("survival").to_numpy() + shift, t),
                    "conf_low": _minmin(sub.get_column("conf_low").to_numpy() + shift, t),
                    "conf_high": _minmin(sub.get_column("conf_high").to_numpy() + shift, t),
                }
            )
        return pl.DataFrame(rows, schema_overrides={"conf_low": pl.Float64, "conf_high": pl.Float64})

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable plain data."""
        return {
            "estimator": "kaplan_meier",
            "groups": list(self.groups),
            "conf_level": self.conf_level,
            "conf_type": self.conf_type,
            "variance": self.variance,
            "summary": self.summary.to_dicts(),
            "median": self.median().to_dicts(),
            "warnings": list(self.warnings),
        }

    def plot(self, **kwargs: Any):
        """KM curves with CI bands and a numbers-at-risk table; see :func:`cohort.survival.plots.plot_km`."""
        from cohort.survival.plots import plot_km

        return plot_km(self, **kwargs)


def kaplan_meier(
    df: Any,
    *,
    time: str,
    event: str,
    by: str | Sequence[str] | None = None,
    entry: str | None = None,
    weights: str | None = None,
    conf_level: float = 0.95,
    conf_type: str = "log",
    timefix: bool = True,
    robust: bool | None = None,
    missing: str = "drop",
) -> KaplanMeier:
    """Kaplan-Meier estimate of survival, per group, as R's ``survfit``.

    Parameters
    ----------
    df : polars or pandas DataFrame
    time : column with the follow-up time (stop time with ``entry``).
    event : 0/1 column, 1 = event.
    by : column(s) defining groups, or None.
    entry : column with delayed-entry (left-truncation) times; rows are (entry, time] intervals.
    weights : column with case weights, each > 0 (zero, negative or missing weights are refused).
        Non-integer weights give the robust (infinitesimal jackknife) standard error, as R.
    conf_level : level of the pointwise confidence band.
    conf_type : "log" (R's default), "log-log" or "plain".
    timefix : merge nearly equal times (floating-point noise) as R's ``aeqSurv`` (default, as R).
    robust : the infinitesimal jackknife (robust) variance, each row its own subject, instead
        of Greenwood's. None (the default, as R's survfit): robust when the case weights are
        not all whole numbers (``KaplanMeier.variance`` says which was used).
    missing : "drop" (default, as R's ``na.omit``): rows with a missing value (null or NaN) in a
        column used are left out, the note in ``.warnings`` states how many, per column and which
        rows; "raise" refuses them.

    Returns
    -------
    KaplanMeier
        ``.summary``, ``.at(times)``, ``.median()``, ``.plot()``.

    Examples
    --------
    >>> import polars as pl
    >>> from cohort import survival as sv
    >>> df = pl.DataFrame({"week": [5, 8, 8, 12, 20, 20, 30], "arrest": [1, 1, 0, 1, 0, 1, 0],
    ...                    "fin": [0, 0, 0, 1, 1, 1, 1]})
    >>> km = sv.kaplan_meier(df, time="week", event="arrest", by="fin")
    >>> km.at([10]).get_column("survival").round(4).to_list()
    [0.3333, 1.0]
    """
    if conf_type not in _CONF_TYPES:
        raise ModelSpecError(f"conf_type must be one of {_CONF_TYPES}, got {conf_type!r}")
    frame = as_polars(df)
    stop = column_array(frame, time, role="time")
    start = column_array(frame, entry, role="entry") if entry is not None else None
    rows, notes = complete_rows(frame, [time, event, entry, weights, *as_columns(by)], missing=missing,
                                model="kaplan_meier")
    check_times(stop, name=time, start=start, start_name=entry or "entry", rows=rows)
    ev = event_array(frame, event, rows=rows).astype(float)
    w = weight_array(frame, weights, rows=rows) if weights else np.ones(rows.size)
    if notes:
        frame, stop, start = frame[rows], stop[rows], None if start is None else start[rows]
    if timefix:
        stop, start = aeq_times(stop, start)
    # as R's survfit (survival 3.5): the robust (infinitesimal jackknife) variance by default
    # with non-integer weights, each row its own cluster, with or without entry
    if robust is None:
        robust = bool(np.any(w != np.floor(w)))
    variance = "robust" if robust else "greenwood"
    codes, labels, _ = group_codes(frame, by)
    z = z_value(conf_level)
    parts, se_logs = [], {}
    for k, g in enumerate(labels):
        m = codes == k
        c = _km_curve(None if start is None else start[m], stop[m], ev[m], w[m], robust=robust)
        low, high = _conf_band(c["survival"], c["se_log"], z, conf_type)
        se_logs[g] = c["se_log"]
        std_error = _std_error(c["survival"], c["se_log"], variance)
        parts.append(
            pl.DataFrame(
                {
                    "group": [g] * c["time"].size,
                    "time": c["time"],
                    "n_risk": c["n_risk"],
                    "n_event": c["n_event"],
                    "n_censor": c["n_censor"],
                    "survival": c["survival"],
                    "std_error": std_error,
                    "conf_low": low,
                    "conf_high": high,
                }
            )
        )
    summary = pl.concat(parts)
    return KaplanMeier(
        summary=summary,
        groups=tuple(labels),
        conf_level=conf_level,
        conf_type=conf_type,
        by=None if by is None else ((by,) if isinstance(by, str) else tuple(by)),
        time_name=time,
        variance=variance,
        _se_log=se_logs,
        warnings=tuple(notes),
    )
