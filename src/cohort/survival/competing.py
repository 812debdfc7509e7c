"""Competing risks: Aalen-Johansen cumulative incidence with Gray's test (as cmprsk::cuminc)
and Fine-Gray subdistribution hazards regression (as cmprsk::crr)."""

from __future__ import annotations

import warnings as _warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from cohort.errors import ConvergenceWarning, ModelSpecError
from cohort.survival._common import (
    as_columns,
    as_polars,
    check_times,
    column_array,
    complete_rows,
    group_codes,
    z_value,
)

__all__ = ["CumulativeIncidence", "FineGrayFit", "cumulative_incidence", "fine_gray"]


# ---- Aalen-Johansen ------------------------------------------------------------------------
def _cif_curve(time: np.ndarray, status: np.ndarray, cause: float, censor_code: float) -> dict[str, np.ndarray]:
    """CIF of ``cause`` and its variance (Gray's formula, as cmprsk's cinc), at every distinct time."""
    times, inv = np.unique(time, return_inverse=True)
    n = time.size
    d1 = np.bincount(inv, weights=(status == cause).astype(float), minlength=times.size)
    dall = np.bincount(inv, weights=(status != censor_code).astype(float), minlength=times.size)
    nall = np.bincount(inv, minlength=times.size).astype(float)
    rs = n - np.concatenate([[0.0], np.cumsum(nall)[:-1]])
    d2 = dall - d1
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(np.where(rs > 0, 1 - dall / rs, 1.0))
    fk = np.concatenate([[1.0], surv[:-1]])  # S(t-)
    fkn = surv
    f = np.cumsum(np.where(rs > 0, fk * d1 / np.where(rs > 0, rs, 1), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        t5_2 = np.where(d2 > 1, 1 - (d2 - 1) / (rs - 1), 1.0)
        t6_2 = fk * fk * t5_2 * d2 / (rs * rs)
        ok2 = (d2 > 0) & (fkn > 0)
        t3_2 = np.where(ok2, 1 / fkn, 0.0)
        t4_2 = np.where(ok2, f / fkn, 0.0)
        t5_1 = np.where(d1 > 1, 1 - (d1 - 1) / (rs - 1), 1.0)
        t6_1 = fk * fk * t5_1 * d1 / (rs * rs)
        t3_1 = np.where(fkn > 0, 1 / fkn, 0.0)
        t4_1 = 1 + t3_1 * f
    t6_2 = np.where(ok2, t6_2, 0.0)
    t6_1 = np.where(d1 > 0, t6_1, 0.0)
    v1 = np.cumsum(t4_2 * t4_2 * t6_2 + t4_1 * t4_1 * t6_1)
    v2 = np.cumsum(t3_2 * t4_2 * t6_2 + t3_1 * t4_1 * t6_1)
    v3 = np.cumsum(t3_2 * t3_2 * t6_2 + t3_1 * t3_1 * t6_1)
    var_at = v1 + f * f * v3 - 2 * f * v2
    # cmprsk refreshes the variance only at times with an event of this cause
    last = np.maximum.accumulate(np.where(d1 > 0, np.arange(times.size), -1))
    var = np.where(last >= 0, var_at[np.maximum(last, 0)], 0.0)
    return {"time": times, "n_risk": rs, "n_event": d1, "n_competing": d2, "estimate": f, "variance": var}


def _gray_test(time, status, group, strata, ngroups, cause, censor_code, rho) -> tuple[float, int]:
    """Gray's (1988) k-sample test for the CIF of ``cause`` (as cmprsk's crstm)."""
    ng = ngroups
    score = np.zeros(ng - 1)
    var = np.zeros((ng - 1, ng - 1))
    code = np.where(status == cause, 1, np.where(status == censor_code, 0, 2))
    for s in np.unique(strata):
        m = strata == s
        t, c, g = time[m], code[m], group[m]
        times, inv = np.unique(t, return_inverse=True)
        T = times.size
        d = np.zeros((3, T, ng))
        for k in range(3):
            sel = c == k
            d[k] = np.bincount(inv[sel] * ng + g[sel], minlength=T * ng).reshape(T, ng)
        nall = d.sum(axis=0)
        rs = nall[::-1].cumsum(axis=0)[::-1]  # at risk at each time, per group
        td = d[1] + d[2]
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(rs > 0, (rs - td) / np.where(rs > 0, rs, 1), 1.0)
        skm = np.cumprod(step, axis=0)
        skmm = np.vstack([np.ones((1, ng)), skm[:-1]])
        with np.errstate(divide="ignore", invalid="ignore"):
            inc = np.where(rs > 0, skmm * d[1] / np.where(rs > 0, rs, 1), 0.0)
        f1 = np.cumsum(inc, axis=0)
        f1m = np.vstack([np.zeros((1, ng)), f1[:-1]])
        nd1 = d[1].sum(axis=1)
        nd2 = d[2].sum(axis=1)
        ev = (nd1 > 0) | (nd2 > 0)
        pos = rs > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = np.where(pos, rs / skmm, 0.0)
            tr = t1.sum(axis=1)
            tq = np.where(pos, rs * (1 - f1m) / skmm, 0.0).sum(axis=1)
            finc = np.where(ev, nd1 / tr, 0.0)
        fcum = np.cumsum(finc)
        fm = np.concatenate([[0.0], fcum[:-1]])
        fnow = fcum
        fb = (1 - fm) ** rho
        # a_t = fb (diag(t1) - t1 t1' / tr), only at event times
        with np.errstate(divide="ignore", invalid="ignore"):
            a = fb[:, None, None] * (
                t1[:, :, None] * np.eye(ng)[None] - t1[:, :, None] * t1[:, None, :] / tr[:, None, None]
            )
        a[~ev] = 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            cfac = np.where(ev, nd1 / (tr * (1 - fm)), 0.0)
        C = np.cumsum(a * cfac[:, None, None], axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            sc = fb[:, None] * (d[1] - nd1[:, None] * rs * (1 - f1m) / (skmm * tq[:, None]))
        sc = np.where(pos & ev[:, None], sc, 0.0)
        score += sc[:, : ng - 1].sum(axis=0)
        v3 = np.zeros(ng)
        v2 = np.zeros((ng, ng))  # v2[i, k]
        vv = np.zeros((ng, ng))
        # cause-of-interest part
        e1 = (nd1 > 0)[:, None] & pos
        with np.errstate(divide="ignore", invalid="ignore"):
            t4 = np.where(skm > 0, 1 - (1 - fnow[:, None]) / skm, 1.0)
            t5 = np.where(nd1[:, None] > 1, 1 - (nd1[:, None] - 1) / (tr[:, None] * skmm - 1), 1.0)
            t3 = t5 * skmm * nd1[:, None] / (tr[:, None] * rs)
        t3 = np.where(e1, t3, 0.0)
        t4 = np.where(e1, t4, 0.0)
        v3 += (t4 * t4 * t3).sum(axis=0)
        U = a - t4[:, None, :] * C  # U[t, i, k] = a_ik - t4_k C_ik
        v2 += np.einsum("tik,tk->ik", U, t4 * t3)
        vv += np.einsum("tik,tjk,tk->ij", U, U, t3)
        # competing part
        e2 = (nd2 > 0)[:, None] & (skm > 0) & (d[2] > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            t4b = np.where(e2, (1 - fnow[:, None]) / skm, 0.0)
            t5b = np.where(d[2] > 1, 1 - (d[2] - 1) / (rs - 1), 1.0)
            t3b = np.where(e2, t5b * skmm**2 * d[2] / rs**2, 0.0)
        v3 += (t4b * t4b * t3b).sum(axis=0)
        W = t4b[:, None, :] * C
        v2 -= np.einsum("tik,tk->ik", W, t4b * t3b)
        vv += np.einsum("tik,tjk,tk->ij", W, W, t3b)
        Cf = C[-1]
        vv += (Cf * v3[None, :]) @ Cf.T + Cf @ v2.T + v2 @ Cf.T
        var += vv[: ng - 1, : ng - 1]
    try:
        stat = float(score @ np.linalg.solve(var, score))
    except np.linalg.LinAlgError:
        stat = float("nan")
    return stat, ng - 1


@dataclass(frozen=True)
class CumulativeIncidence:
    """Aalen-Johansen cumulative incidence per group; see :func:`cumulative_incidence`.

    Attributes
    ----------
    summary : polars.DataFrame
        group, time, n_risk, n_event, n_competing, estimate, std_error, conf_low, conf_high.
    tests : polars.DataFrame or None
        Gray's test per cause: cause, statistic, df, p_value (when there are groups).
    """

    summary: pl.DataFrame
    groups: tuple[str, ...]
    cause: Any
    tests: pl.DataFrame | None
    conf_level: float
    warnings: tuple[str, ...] = ()
    converged: bool = True

    @property
    def statistic(self) -> float | None:
        return None if self.tests is None else float(self.tests["statistic"][0])

    @property
    def p_value(self) -> float | None:
        return None if self.tests is None else float(self.tests["p_value"][0])

    def at(self, times: Sequence[float] | float) -> pl.DataFrame:
        """Estimates at the given times (step function): group, time, estimate, std_error, conf_low, conf_high."""
        ts = np.atleast_1d(np.asarray(times, dtype=float))
        out = []
        for g in self.groups:
            sub = self.summary.filter(pl.col("group") == g)
            t = sub["time"].to_numpy()
            idx = np.searchsorted(t, ts, side="right") - 1
            pick = np.maximum(idx, 0)

            def get(c, pick=pick, idx=idx, sub=sub):
                return np.where(idx >= 0, sub[c].to_numpy()[pick], 0.0)

            out.append(
                pl.DataFrame(
                    {
                        "group": [g] * ts.size,
                        "time": ts,
                        "estimate": get("estimate"),
                        "std_error": get("std_error"),
                        "conf_low": get("conf_low"),
                        "conf_high": get("conf_high"),
                    }
                )
            )
        return pl.concat(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimator": "aalen_johansen",
            "cause": self.cause,
            "groups": list(self.groups),
            "summary": self.summary.to_dicts(),
            "tests": None if self.tests is None else self.tests.to_dicts(),
            "warnings": list(self.warnings),
        }

    def plot(self, **kwargs: Any):
        """CIF curves with CI bands and numbers at risk; see :func:`cohort.survival.plots.plot_cif`."""
        from cohort.survival.plots import plot_cif

        return plot_cif(self, **kwargs)


def cumulative_incidence(
    df: Any,
    *,
    time: str,
    event: str,
    cause: Any = 1,
    by: str | Sequence[str] | None = None,
    strata: str | Sequence[str] | None = None,
    censor_code: Any = 0,
    rho: float = 0.0,
    conf_level: float = 0.95,
    missing: str = "drop",
) -> CumulativeIncidence:
    """Cumulative incidence of ``cause`` with competing risks (Aalen-Johansen), as cmprsk::cuminc.

    No jittering of tied times: events of all causes at one time are handled
    together. Standard errors are Gray's (as cmprsk); the CI uses the
    log(-log) transform (est^exp(+-z se / (est log est))). With ``by``, Gray's
    test compares the groups (stratified by ``strata``) for every cause.

    Parameters
    ----------
    df : polars or pandas DataFrame
    time : follow-up time.
    event : status: ``censor_code`` (default 0) = censored, other values = causes.
    cause : the cause of interest.
    by : groups compared.
    strata : strata for Gray's test.
    rho : power of the weight in Gray's test.
    missing : "drop" (default, as R's ``na.omit``): rows with a missing value (null or NaN) in a
        column used are left out, the note in ``.warnings`` states how many, per column and which
        rows; "raise" refuses them.

    Examples
    --------
    >>> import polars as pl
    >>> from cohort import survival as sv
    >>> df = pl.DataFrame({"t": [1, 2, 3, 4, 5, 6], "status": [1, 2, 0, 1, 2, 1]})
    >>> ci = sv.cumulative_incidence(df, time="t", event="status", cause=1)
    >>> ci.at([3.5])["estimate"].round(4).to_list()
    [0.1667]
    """
    frame = as_polars(df)
    t = column_array(frame, time, role="time")
    st = column_array(frame, event, role="event")
    rows, notes = complete_rows(frame, [time, event, *as_columns(by), *as_columns(strata)], missing=missing,
                                model="cumulative_incidence")
    check_times(t, name=time, rows=rows)
    if notes:
        frame, t, st = frame[rows], t[rows], st[rows]
    codes, labels, _ = group_codes(frame, by)
    scodes = group_codes(frame, strata, role="strata")[0]
    z = z_value(conf_level)
    causes = np.unique(st[st != censor_code])
    if not np.any(causes == cause):
        raise ModelSpecError(f"cause {cause!r} does not occur in column {event!r}; causes found: {causes.tolist()}")
    parts = []
    for k, g in enumerate(labels):
        m = codes == k
        c = _cif_curve(t[m], st[m], cause, censor_code)
        est, se = c["estimate"], np.sqrt(np.maximum(c["variance"], 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            lg = np.log(est)
            fac = z * se / (est * lg)
            low = np.where((est > 0) & (est < 1), est ** np.exp(-fac), np.nan)
            high = np.where((est > 0) & (est < 1), est ** np.exp(fac), np.nan)
        low = np.where(est == 0, 0.0, low)
        high = np.where(est == 0, 0.0, high)
        parts.append(
            pl.DataFrame(
                {
                    "group": [g] * c["time"].size,
                    "time": c["time"],
                    "n_risk": c["n_risk"],
                    "n_event": c["n_event"],
                    "n_competing": c["n_competing"],
                    "estimate": est,
                    "std_error": se,
                    "conf_low": low,
                    "conf_high": high,
                }
            )
        )
    tests = None
    if len(labels) > 1:
        rows = []
        for cz in causes:
            stat, dof = _gray_test(t, st, codes, scodes, len(labels), cz, censor_code, rho)
            rows.append((cz.item() if hasattr(cz, "item") else cz, stat, dof, float(stats.chi2.sf(stat, dof))))
        tests = pl.DataFrame(
            {
                "cause": [r[0] for r in rows],
                "statistic": [r[1] for r in rows],
                "df": [r[2] for r in rows],
                "p_value": [r[3] for r in rows],
            }
        )
        # the cause of interest first
        tests = tests.sort(pl.col("cause") != cause)
    return CumulativeIncidence(
        summary=pl.concat(parts),
        groups=tuple(labels),
        cause=cause,
        tests=tests,
        conf_level=conf_level,
        warnings=tuple(notes),
    )


# ---- Fine-Gray ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FineGrayFit:
    """Fine-Gray subdistribution hazards model; see :func:`fine_gray`.

    ``summary`` has term, estimate, std_error (Fine-Gray sandwich, as crr),
    hazard_ratio (subdistribution HR), conf_low, conf_high, statistic, p_value.
    """

    summary: pl.DataFrame
    coef: np.ndarray
    vcov: np.ndarray
    loglik: float
    n: int
    n_events: int
    n_competing: int
    cause: Any
    formula: str
    converged: bool
    warnings: tuple[str, ...]
    engine: str = "numpy"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": "fine_gray",
            "cause": self.cause,
            "formula": self.formula,
            "n": self.n,
            "n_events": self.n_events,
            "n_competing": self.n_competing,
            "loglik": self.loglik,
            "converged": self.converged,
            "warnings": list(self.warnings),
            "summary": self.summary.to_dicts(),
            "vcov": self.vcov.tolist(),
        }

    def plot(self, **kwargs: Any):
        from cohort.survival.plots import plot_forest

        return plot_forest(self, **kwargs)


def _censor_km_left(time: np.ndarray, is_cens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Censoring KM G: distinct times, G at those times (right-continuous)."""
    times, inv = np.unique(time, return_inverse=True)
    dc = np.bincount(inv, weights=is_cens.astype(float), minlength=times.size)
    nall = np.bincount(inv, minlength=times.size).astype(float)
    rs = time.size - np.concatenate([[0.0], np.cumsum(nall)[:-1]])
    G = np.cumprod(1 - dc / rs)
    return times, G


def _G_left(times: np.ndarray, G: np.ndarray, t: np.ndarray) -> np.ndarray:
    """G(t-), except G(0) at t = 0: crr's weight (its ``uuu``, G just before t*(1 - 100 eps)).

    A row at time 0 (an event, a competing event or a censoring) is at risk at time 0, as in
    cmprsk::crr; censorings at 0 then count in the weight of the rows that end at 0.
    """
    idx = np.searchsorted(times, t, side="left") - 1  # last time < t
    idx = np.where(t == 0, np.searchsorted(times, t, side="right") - 1, idx)
    return np.where(idx >= 0, G[np.maximum(idx, 0)], 1.0)


def _G_right(times: np.ndarray, G: np.ndarray, t: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(times, t, side="right") - 1  # last time <= t
    return np.where(idx >= 0, G[np.maximum(idx, 0)], 1.0)


def fine_gray(
    df: Any,
    formula: str,
    *,
    time: str,
    event: str,
    cause: Any = 1,
    censor_code: Any = 0,
    conf_level: float = 0.95,
    missing: str = "drop",
    max_iter: int = 50,
) -> FineGrayFit:
    """Fine-Gray regression of the subdistribution hazard of ``cause``, as cmprsk::crr.

    Subjects failing from a competing cause stay in the risk set with weight
    G(t-)/G(T-) (G: Kaplan-Meier of censoring); ties as Breslow (as crr). The
    variance is the Fine-Gray sandwich including the censoring-distribution term.

    Rows at time 0 (events of any cause or censorings) are at risk at time 0, as in
    crr (whose weight for a row ending at 0 is G(0), after censorings at 0).

    Parameters
    ----------
    df : polars or pandas DataFrame
    formula : right-hand side of the model, e.g. ``"age + male"``.
    time : follow-up time (>= 0).
    event : status: ``censor_code`` = censored, other values = causes.
    cause : the cause of interest.
    missing : "drop" (default, as R's ``na.omit``): rows with a missing value (null or NaN) in a
        column used are left out, the note in ``.warnings`` states how many, per column and which
        rows; "raise" refuses them.
    max_iter : Newton-Raphson iterations; every loop is bounded. A fit that does not
        converge (or whose likelihood is not finite) returns ``converged=False`` with
        the reason in ``warnings`` and a :class:`~cohort.errors.ConvergenceWarning`.

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> from cohort import survival as sv
    >>> rng = np.random.default_rng(2)
    >>> n = 300
    >>> x = rng.normal(size=n)
    >>> t = rng.exponential(1 / np.exp(0.5 * x))
    >>> status = np.where(rng.random(n) < 0.6, 1, 2) * (t < 1.5)
    >>> df = pl.DataFrame({"t": np.minimum(t, 1.5), "status": status, "x": x})
    >>> fit = sv.fine_gray(df, "x", time="t", event="status", cause=1)
    >>> fit.summary["term"].to_list()
    ['x']
    """
    from cohort.survival._cox_engine import CoxData, newton_raphson
    from cohort.survival.cox import _summary
    from cohort.survival.formula import design_matrix

    frame = as_polars(df)
    t_all = column_array(frame, time, role="time")
    design = design_matrix(frame, formula, missing=missing, extra=(time, event), model="fine_gray")
    check_times(t_all, name=time, rows=design.rows)
    st_all = column_array(frame, event, role="event")
    warn = list(design.notes)
    X = design.X
    t = t_all[design.rows]
    st = st_all[design.rows]
    n, p = X.shape
    ev1 = st == cause
    comp = (st != cause) & (st != censor_code)
    cens = st == censor_code
    if not ev1.any():
        raise ModelSpecError(f"no events of cause {cause!r} in column {event!r}")
    gt, G = _censor_km_left(t, cens)
    # expand competing-event rows over the censoring jumps after T: weight G(a)/G(T-)
    ev_times = np.unique(t[ev1])
    tmax = ev_times[-1]
    jumps = gt[np.r_[True, np.diff(G) != 0] & (np.bincount(np.unique(t, return_inverse=True)[1],
                                                                weights=cens.astype(float)) > 0)]
    # every row is at risk from the origin to its time, inclusive: a right-censored row (start
    # -inf), so that a row at time 0 is at risk at time 0 (as crr), never an empty (0, 0] interval
    rows_start, rows_stop, rows_w, rows_id = [np.full(n, -np.inf)], [t], [np.ones(n)], [np.arange(n)]
    ci = np.flatnonzero(comp & (t < tmax))
    if ci.size:
        Tc = t[ci]
        GTm = _G_left(gt, G, Tc)
        # breakpoints: T_j, then each censoring jump u > T_j (and < tmax), then tmax
        js = jumps[(jumps < tmax)]
        pos = np.searchsorted(js, Tc, side="right")  # first jump > T_j
        counts = js.size - pos + 1
        rep = np.repeat(np.arange(ci.size), counts)
        k = np.arange(rep.size) - np.repeat(np.cumsum(counts) - counts, counts)
        jidx = pos[rep] + k  # index into js of the interval end (js.size -> tmax)
        jsp = np.append(js, tmax)
        ends = jsp[jidx]
        starts = np.where(k == 0, Tc[rep], jsp[np.maximum(jidx - 1, 0)])
        w = _G_right(gt, G, starts) / GTm[rep]
        rows_start.append(starts)
        rows_stop.append(ends)
        rows_w.append(w)
        rows_id.append(ci[rep])
    start = np.concatenate(rows_start)
    stop = np.concatenate(rows_stop)
    wts = np.concatenate(rows_w)
    rid = np.concatenate(rows_id)
    evx = np.concatenate([ev1, np.zeros(start.size - n, dtype=bool)])
    Xx = X[rid]
    data = CoxData(Xx, stop, evx, start=start, weights=wts, ties="breslow")
    res = newton_raphson(data, max_iter=max_iter)
    fit_msgs = [m.replace("{cols}", ", ".join(design.names[i] for i in res.diverging) or "some coefficients")
                for m in res.messages]
    for m in fit_msgs:
        _warnings.warn(f"fine_gray: {m}", ConvergenceWarning, stacklevel=2)
    warn.extend(fit_msgs)
    info = res.info
    ev = res.ev
    # eta_i: weighted score residuals summed per subject
    resid = data.score_residuals(res.beta, ev) * wts[:, None]
    eta_i = np.stack([np.bincount(rid, weights=resid[:, j], minlength=n) for j in range(p)], 1)
    # psi_i: the censoring martingale term, q(u) = A(u) B(u) - a(u) b(u) (separable sums)
    Xc = X - data.means
    beta = res.beta
    risk_c = np.exp(np.einsum("ij,j->i", Xc[comp], beta)) / _G_left(gt, G, t[comp])
    tc = t[comp]
    gidx = data.ev_group
    S0 = ev["S0"]
    S1 = ev["S1"]
    g_time = data.group_time
    dcount = data.d
    be = _G_left(gt, G, g_time) * dcount / S0  # per event time (multiplicity d)
    bx = be[:, None] * (S1 / S0[:, None])
    # suffix sums over event times >= u, prefix sums over competing T < u
    be_suf = np.concatenate([np.cumsum(be[::-1])[::-1], [0.0]])
    bx_suf = np.concatenate([np.cumsum(bx[::-1], axis=0)[::-1], np.zeros((1, p))])
    oc = np.argsort(tc)
    tcs = tc[oc]
    ac = np.concatenate([[0.0], np.cumsum(risk_c[oc])])
    acx = np.concatenate([np.zeros((1, p)), np.cumsum(risk_c[oc][:, None] * Xc[comp][oc], axis=0)])
    del gidx
    ctimes, cinv = np.unique(t, return_inverse=True)
    ncen = np.bincount(cinv, weights=cens.astype(float), minlength=ctimes.size)
    nall = np.bincount(cinv, minlength=ctimes.size).astype(float)
    at_risk = n - np.concatenate([[0.0], np.cumsum(nall)[:-1]])
    u = ctimes[ncen > 0]
    ie = np.searchsorted(g_time, u, side="left")  # event times >= u
    ip = np.searchsorted(tcs, u, side="left")  # competing with T < u
    q = acx[ip] * be_suf[ie][:, None] - ac[ip][:, None] * bx_suf[ie]
    yk = at_risk[ncen > 0]
    dn = ncen[ncen > 0]
    cum = np.cumsum(q * (dn / yk**2)[:, None], axis=0)
    iu = np.searchsorted(u, t, side="right") - 1  # censoring times <= T_i
    psi = -np.where(iu[:, None] >= 0, cum[np.maximum(iu, 0)], 0.0)
    ci_rows = np.flatnonzero(cens)
    ju = np.searchsorted(u, t[ci_rows])
    psi[ci_rows] += q[ju] / yk[ju][:, None]
    tot = eta_i + psi
    hinv = np.linalg.inv(info)
    vcov = hinv @ np.einsum("ij,ik->jk", tot, tot) @ hinv
    summary = _summary(design.names, beta, vcov, None, conf_level)
    return FineGrayFit(
        summary=summary,
        coef=beta,
        vcov=vcov,
        loglik=res.loglik,
        n=n,
        n_events=int(ev1.sum()),
        n_competing=int(comp.sum()),
        cause=cause,
        formula=formula,
        converged=res.converged,
        warnings=tuple(warn),
    )
