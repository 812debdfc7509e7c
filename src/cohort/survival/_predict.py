"""Predicted survival curves and linear predictors from a Cox fit, as R's survfit.coxph and predict.coxph.

The baseline is R's ``agsurv``: per stratum, at every distinct stop time, the
hazard increment (Breslow: d / S0; Efron: the mean over the tied events of
1 / (S0 - k/d S0_events)), its variance term and the running mean covariate
(``xbar``) used by the delta-method standard error of the curve of a new
covariate vector x:

    var H(t | x) = r(x)^2 [ sum_{s <= t} varhaz(s) + d(t)' V d(t) ],
    d(t) = H0(t) x - xbar(t),  r(x) = exp(x b - means b).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from cohort.errors import ModelSpecError
from cohort.survival._common import as_polars, column_array, rows_text, z_value

__all__ = ["BaselineCurve", "agsurv", "predict_frame", "survival_frame"]


def _rcumsum(a: np.ndarray) -> np.ndarray:
    return np.cumsum(a[::-1], axis=0)[::-1]


class BaselineCurve:
    """One stratum's baseline: times, counts, hazard increments, variance terms, cumulative xbar."""

    __slots__ = ("time", "n_risk", "n_event", "n_censor", "hazard", "cumhaz", "varh", "xbar", "own_hazard")

    def __init__(self, **kw: np.ndarray) -> None:
        for k, v in kw.items():
            setattr(self, k, v)

    def index_at(self, t: np.ndarray) -> np.ndarray:
        """Index of the last curve time <= t (-1 before the first time)."""
        return np.searchsorted(self.time, t, side="right") - 1


def agsurv(
    start: np.ndarray | None,
    stop: np.ndarray,
    event: np.ndarray,
    w: np.ndarray,
    X: np.ndarray,
    risk: np.ndarray,
    *,
    efron: bool,
) -> BaselineCurve:
    """R's ``survival:::agsurv`` for one stratum (vectorised; X uncentered, risk = exp(X b - means b))."""
    n, p = X.shape
    time, inv = np.unique(stop, return_inverse=True)
    nt = time.size
    ev = event.astype(np.float64)
    nevent = np.bincount(inv, weights=w * ev, minlength=nt)
    ncens = np.bincount(inv, weights=w * (1.0 - ev), minlength=nt)
    ndeath = np.bincount(inv, weights=ev, minlength=nt)
    wrisk = w * risk
    nrisk = _rcumsum(np.bincount(inv, weights=wrisk, minlength=nt))
    irisk = _rcumsum(np.bincount(inv, weights=w, minlength=nt))
    xsum = np.empty((nt, p))
    for j in range(p):
        xsum[:, j] = _rcumsum(np.bincount(inv, weights=wrisk * X[:, j], minlength=nt))
    if start is not None:
        # leave the risk set once t <= start: subtract rows with start >= t
        order = np.argsort(start, kind="stable")
        s_sorted = start[order]
        pos = np.searchsorted(s_sorted, time, side="left")

        def tail(v: np.ndarray) -> np.ndarray:
            c = np.concatenate([_rcumsum(v[order]), [0.0]])
            return c[pos]

        nrisk = nrisk - tail(wrisk)
        irisk = irisk - tail(w)
        for j in range(p):
            xsum[:, j] -= tail(wrisk * X[:, j])
    with np.errstate(divide="ignore", invalid="ignore"):
        if efron:
            erisk = np.bincount(inv, weights=wrisk * ev, minlength=nt)
            xsum2 = np.empty((nt, p))
            for j in range(p):
                xsum2[:, j] = np.bincount(inv, weights=wrisk * ev * X[:, j], minlength=nt)
            d = ndeath.astype(np.int64)
            tidx = np.repeat(np.arange(nt), d)
            first = np.repeat(np.cumsum(d) - d, d)
            frac = (np.arange(tidx.size) - first) / d[tidx]
            den = nrisk[tidx] - frac * erisk[tidx]
            inv_d = 1.0 / d[tidx]
            sum1 = np.bincount(tidx, weights=inv_d / den, minlength=nt)
            sum2 = np.bincount(tidx, weights=inv_d / den**2, minlength=nt)
            xb = np.empty((nt, p))
            for j in range(p):
                xb[:, j] = np.bincount(
                    tidx, weights=(xsum[tidx, j] - frac * xsum2[tidx, j]) * inv_d / den**2, minlength=nt
                )
            haz = nevent * sum1
            varhaz = nevent * sum2
            # the hazard a row that has one of the tied events gets at its own time (R's coxmart/agmart)
            own = nevent * np.bincount(tidx, weights=(1.0 - frac) * inv_d / den, minlength=nt)
            xbar = nevent[:, None] * xb
        else:
            pos_ev = nevent > 0
            haz = np.where(pos_ev, nevent / nrisk, 0.0)
            varhaz = np.where(pos_ev, nevent / nrisk**2, 0.0)
            xbar = np.where(pos_ev[:, None], xsum / nrisk[:, None] * haz[:, None], 0.0)
            own = haz
    return BaselineCurve(
        time=time,
        n_risk=irisk,
        n_event=nevent,
        n_censor=ncens,
        hazard=haz,
        cumhaz=np.cumsum(haz),
        varh=np.cumsum(varhaz),
        xbar=np.cumsum(xbar, axis=0),
        own_hazard=own,
    )


def curve_se(curve: BaselineCurve, idx: np.ndarray, x: np.ndarray, vcov: np.ndarray) -> np.ndarray:
    """sqrt(varh + d' V d) on the baseline scale at curve positions idx (-1: before the first time)."""
    ok = idx >= 0
    out = np.zeros(idx.size)
    if ok.any():
        i = idx[ok]
        dt = curve.cumhaz[i, None] * x[None, :] - curve.xbar[i]
        quad = np.einsum("tp,pq,tq->t", dt, vcov, dt)
        out[ok] = np.sqrt(np.maximum(curve.varh[i] + quad, 0.0))
    return out


# ---- newdata ---------------------------------------------------------------------------
def strata_of_newdata(fit: Any, frame: pl.DataFrame, *, required: bool) -> np.ndarray | None:
    """Stratum code of each new row; None when the model has strata but newdata lacks them (all strata)."""
    cols = fit._strata_cols
    if not cols:
        return np.zeros(frame.height, dtype=np.int64)
    present = [c for c in cols if c in frame.columns]
    if not present and not required:
        return None
    if len(present) != len(cols):
        missing = [c for c in cols if c not in frame.columns]
        raise ModelSpecError(
            f"newdata lacks the strata column(s) {', '.join(map(repr, missing))}; "
            + ("add them" if required else "give all strata columns, or none to get every stratum's curve")
        )
    keys = fit._strata_keys.with_row_index("__code")
    sub = frame.select(list(cols))
    for c in cols:
        nulls = sub.get_column(c).is_null().to_numpy()
        if nulls.any():
            raise ModelSpecError(f"newdata strata column {c!r} has missing values at {rows_text(nulls)}")
        try:
            sub = sub.with_columns(pl.col(c).cast(keys.schema[c]))
        except Exception:
            raise ModelSpecError(
                f"newdata strata column {c!r} has type {frame.schema[c]}, the fit had {keys.schema[c]}"
            ) from None
    codes = (
        sub.with_row_index("__row").join(keys, on=list(cols), how="left").sort("__row").get_column("__code")
    )
    unseen = codes.is_null().to_numpy()
    if unseen.any():
        raise ModelSpecError(
            f"newdata has strata not in the fitted data at {rows_text(unseen)}; "
            f"known strata: {', '.join(fit.strata_labels or ())}"
        )
    return codes.to_numpy().astype(np.int64)


def _band(surv: np.ndarray, se: np.ndarray, conf_level: float, conf_type: str) -> tuple[np.ndarray, np.ndarray]:
    from cohort.survival.kaplan_meier import _conf_band

    return _conf_band(surv, se, z_value(conf_level), conf_type)


def survival_frame(
    fit: Any,
    newdata: Any,
    *,
    times: Any = None,
    conf_level: float | None = None,
    conf_type: str = "log",
) -> pl.DataFrame:
    """Long frame of predicted survival curves (see CoxFit.predict_survival)."""
    if conf_type not in ("log", "log-log", "plain"):
        raise ModelSpecError(f"conf_type must be 'log', 'log-log' or 'plain', got {conf_type!r}")
    level = fit.conf_level if conf_level is None else conf_level
    frame = as_polars(newdata)
    x2 = fit._new_x(frame)
    codes = strata_of_newdata(fit, frame, required=False)
    curves = fit._baseline_curves
    beta = fit._coef0
    vcov = fit._vcov0
    risk2 = np.exp(x2 @ beta - float(fit.means @ beta))
    labels = fit.strata_labels or ("all",)
    ts = None if times is None else np.atleast_1d(np.asarray(times, dtype=np.float64))
    parts = []
    for i in range(frame.height):
        for s in (range(len(curves)) if codes is None else (int(codes[i]),)):
            c = curves[s]
            if ts is None:
                idx = np.arange(c.time.size)
                tt = c.time
            else:
                idx = c.index_at(ts)
                tt = ts
            ch0 = np.where(idx >= 0, c.cumhaz[np.maximum(idx, 0)], 0.0) if c.time.size else np.zeros(tt.size)
            se = curve_se(c, idx, x2[i], vcov) * risk2[i]
            cumhaz = ch0 * risk2[i]
            surv = np.exp(-cumhaz)
            low, high = _band(surv, se, level, conf_type)
            cols: dict[str, Any] = {"row": np.full(tt.size, i, dtype=np.int64), "strata": [labels[s]] * tt.size,
                                    "time": tt}
            if ts is None:
                cols.update(n_risk=c.n_risk, n_event=c.n_event, n_censor=c.n_censor)
            cols.update(
                survival=surv,
                std_error=surv * se,
                conf_low=low,
                conf_high=high,
                cumulative_hazard=cumhaz,
                std_error_cumhaz=se,
            )
            parts.append(pl.DataFrame(cols))
    return pl.concat(parts)


def predict_frame(
    fit: Any,
    newdata: Any = None,
    *,
    type: str = "lp",
    reference: str = "strata",
    se_fit: bool = False,
) -> pl.DataFrame:
    """Predictions as R's predict.coxph (see CoxFit.predict)."""
    if type not in ("lp", "risk", "expected", "survival"):
        raise ModelSpecError(f"type must be 'lp', 'risk', 'expected' or 'survival', got {type!r}")
    if reference not in ("strata", "sample", "zero"):
        raise ModelSpecError(f"reference must be 'strata', 'sample' or 'zero', got {reference!r}")
    beta = fit._coef0
    vcov = fit._vcov0
    X_train, w_train, s_train = fit._train_arrays
    stratified = bool(fit._strata_cols)
    if newdata is None:
        x = X_train
        codes = s_train
        start, stop, own_event = fit._times
        n = x.shape[0]
    else:
        frame = as_polars(newdata)
        x = fit._new_x(frame)
        n = frame.height
        need = type in ("expected", "survival") or (stratified and reference == "strata")
        codes = strata_of_newdata(fit, frame, required=need) if stratified else np.zeros(n, dtype=np.int64)
        start = stop = own_event = None
        if type in ("expected", "survival"):
            stop = column_array(frame, fit._names["time"], role="time")
            start = column_array(frame, fit._names["start"], role="start") if fit._names.get("start") else None
            bad = ~np.isfinite(stop) if start is None else ~(np.isfinite(stop) & np.isfinite(start))
            if bad.any():
                raise ModelSpecError(f"newdata has missing times at {rows_text(bad)}")
    out: dict[str, Any] = {"row": np.arange(n, dtype=np.int64)}
    if type in ("lp", "risk"):
        if stratified and reference == "strata":
            k = int(s_train.max()) + 1
            sw = np.bincount(s_train, weights=w_train, minlength=k)
            xm = np.stack([np.bincount(s_train, weights=w_train * X_train[:, j], minlength=k) for j in
                           range(X_train.shape[1])], 1) / sw[:, None]
            newx = x - xm[codes]
        elif reference == "zero":
            newx = x
        else:
            newx = x - fit.means
        pred = newx @ beta
        se = np.sqrt(np.maximum(np.einsum("ip,pq,iq->i", newx, vcov, newx), 0.0))
        if type == "risk":
            pred = np.exp(pred)
            se = se * np.sqrt(pred)  # as R's predict.coxph (not the delta method's se * risk)
    else:
        curves = fit._baseline_curves
        risk = np.exp((x - fit.means) @ beta)
        pred = np.zeros(n)
        se = np.zeros(n)
        for s, c in enumerate(curves):
            rows = np.flatnonzero(codes == s)
            if rows.size == 0:
                continue
            j2 = c.index_at(stop[rows])
            ch2 = np.where(j2 >= 0, c.cumhaz[np.maximum(j2, 0)], 0.0)
            if own_event is not None and fit.ties == "efron":
                # the fitted rows' own tied events count with Efron's share (as R's residuals)
                e = own_event[rows] & (j2 >= 0)
                jj = j2[e]
                ch2[e] += c.own_hazard[jj] - c.hazard[jj]
            if start is None:
                pred[rows] = ch2 * risk[rows]
                if se_fit:
                    se[rows] = [curve_se(c, j2[k : k + 1], x[r], vcov)[0] * risk[r] for k, r in enumerate(rows)]
            else:
                j1 = c.index_at(start[rows])
                ch1 = np.where(j1 >= 0, c.cumhaz[np.maximum(j1, 0)], 0.0)
                pred[rows] = (ch2 - ch1) * risk[rows]
                if se_fit:
                    for k, r in enumerate(rows):
                        v2 = curve_se(c, j2[k : k + 1], x[r], vcov)[0] ** 2
                        v1 = curve_se(c, j1[k : k + 1], x[r], vcov)[0] ** 2
                        se[r] = np.sqrt(max(v2 - v1, 0.0)) * risk[r]
        if type == "survival":
            pred = np.exp(-pred)
            se = se * pred
    out["prediction"] = pred
    if se_fit:
        out["std_error"] = se
    return pl.DataFrame(out)
