"""Cox proportional hazards regression that matches R's coxph.

The default engine ("numpy") is the vectorised exact partial-likelihood engine
in :mod:`cohort.survival._cox_engine` (Efron or Breslow ties, (start, stop]
data with left truncation, strata, case weights, cluster-robust sandwich
variance). ``engine="lifelines"`` runs lifelines instead (for penalised fits,
or to cross-check); ``fit.engine`` says which one ran.
"""

from __future__ import annotations

import warnings as _warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from cohort._missing import check_missing
from cohort.errors import ConvergenceWarning, ModelSpecError
from cohort.survival._common import (
    as_polars,
    check_times,
    column_array,
    event_array,
    group_codes,
    rows_text,
    weight_array,
    z_value,
)
from cohort.survival._common import timefix as aeq_times
from cohort.survival._cox_engine import CoxData, newton_raphson
from cohort.survival.formula import design_matrix

__all__ = ["CoxFit", "cox", "concordance_counts"]


# ---- concordance ------------------------------------------------------------------------
def _suffix_counts(
    a: np.ndarray, b: np.ndarray, q: np.ndarray, v: np.ndarray, wts: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """For each query i: #{j: a_j >= q_i, b_j < v_i} and #{j: a_j >= q_i, b_j <= v_i}.

    ``a`` and ``q`` are integer keys, ``b`` and ``v`` integer ranks; vectorised
    over queries by a dyadic decomposition of the suffix of the a-sorted data.
    With ``wts`` the counts are sums of the weights of those j.
    """
    n = a.size
    order = np.argsort(a, kind="stable")
    a_s = a[order]
    b_s = b[order].astype(np.int64)
    p = np.searchsorted(a_s, q, side="left").astype(np.int64)
    dtype = np.int64 if wts is None else np.float64
    less = np.zeros(q.size, dtype=dtype)
    leq = np.zeros(q.size, dtype=dtype)
    if n == 0:
        return less, leq
    top = int(np.ceil(np.log2(n))) if n > 1 else 0
    N = 1 << top
    M = int(max(b_s.max(initial=0), v.max(initial=0))) + 2
    whole = p == 0
    keys = np.arange(n, dtype=np.int64) * M + b_s  # level 0: one row per block
    wk = None if wts is None else np.asarray(wts, dtype=np.float64)[order]
    cw = None if wk is None else np.concatenate([[0.0], np.cumsum(wk)])
    for L in range(top + 1):
        if L:
            # merge pairs of sorted blocks: the stable sort sees two sorted runs per block (O(n))
            keys = ((keys // M) >> 1) * M + keys % M
            if wk is None:
                keys = np.sort(keys, kind="stable")
            else:
                o = np.argsort(keys, kind="stable")
                keys, wk = keys[o], wk[o]
                cw = np.concatenate([[0.0], np.cumsum(wk)])
        if L == top:
            sel = whole
            qb = np.zeros(int(sel.sum()), dtype=np.int64)
        else:
            sel = ((p >> L) & 1).astype(bool) & (p < N) & ~whole
            qb = p[sel] >> L
        if sel.any():
            base = np.searchsorted(keys, qb * M, side="left")
            vv = v[sel].astype(np.int64)
            lo = np.searchsorted(keys, qb * M + vv, side="left")
            hi = np.searchsorted(keys, qb * M + vv, side="right")
            if cw is None:
                less[sel] += lo - base
                leq[sel] += hi - base
            else:
                less[sel] += cw[lo] - cw[base]
                leq[sel] += cw[hi] - cw[base]
        if L < top:
            p = np.where(sel, p + (1 << L), p)
    return less, leq


def _count_at_least(a: np.ndarray, q: np.ndarray, wts: np.ndarray | None = None) -> np.ndarray:
    """#{j: a_j >= q_i} (the sum of their weights with ``wts``)."""
    if wts is None:
        return a.size - np.searchsorted(np.sort(a), q, side="left")
    order = np.argsort(a, kind="stable")
    tail = np.concatenate([np.cumsum(np.asarray(wts, dtype=np.float64)[order][::-1])[::-1], [0.0]])
    return tail[np.searchsorted(a[order], q, side="left")]


def _tied_pairs(group: np.ndarray, w: np.ndarray) -> float:
    """Sum over pairs of rows in one group of w_i * w_j (n (n - 1) / 2 pairs without weights)."""
    sw = np.bincount(group, weights=w)
    return float(((sw * sw - np.bincount(group, weights=w * w)) / 2).sum())


def concordance_counts(data: CoxData, eta: np.ndarray) -> dict[str, float]:
    """Harrell's concordance as R's ``concordance(coxph fit)``: counts and the index.

    A pair is comparable when one row has an event at t and the other is in
    the same stratum and at risk beyond t (still at risk at t and not an
    event at t); concordant when the row with the event has the larger risk
    score. Ties in the risk score count one half. With case weights each pair
    counts w_i * w_j (as R). Pairs of events at one time are not comparable: ``tied_y``
    counts those with different risk scores and ``tied_xy`` those with equal ones (R's
    tied.y and tied.xy).
    """
    ranks = np.unique(eta, return_inverse=True)[1].astype(np.int64)
    ev = data.ev_idx
    wts = None if data.unit_weights else data.w
    # stop side: key2 > 2*key_i and key2 < 2*stratum_end; censored rows at t_i count (key2 = 2k+1)
    key2 = 2 * data.key_stop + (~data.event).astype(np.int64)
    qi = 2 * data.key_stop[ev] + 1
    qend = 2 * data.stratum_end[ev]
    l1, e1 = _suffix_counts(key2, ranks, np.concatenate([qi, qend]), np.concatenate([ranks[ev]] * 2), wts)
    m = ev.size
    less = l1[:m] - l1[m:]
    leq = e1[:m] - e1[m:]
    tot = _count_at_least(key2, qi, wts) - _count_at_least(key2, qend, wts)
    if data.counting:
        kst = data.key_start
        ki = data.key_stop[ev]
        kend = data.stratum_end[ev]
        l2, e2 = _suffix_counts(kst, ranks, np.concatenate([ki, kend]), np.concatenate([ranks[ev]] * 2), wts)
        less = less - (l2[:m] - l2[m:])
        leq = leq - (e2[:m] - e2[m:])
        tot = tot - (_count_at_least(kst, ki, wts) - _count_at_least(kst, kend, wts))
    we = np.ones(m) if wts is None else data.w[:m]
    concordant = float(we @ less)
    tied_x = float(we @ (leq - less))
    discordant = float(we @ (tot - leq))
    # pairs of events at one time (one stratum): tied on y; tied on y and x when their risk
    # scores are equal too (R's tied.y and tied.xy); each pair counts w_i * w_j
    tied_any = _tied_pairs(data.ev_group, we)
    tied_xy = _tied_pairs(np.unique(data.ev_group * (int(ranks.max(initial=0)) + 1) + ranks[ev],
                                    return_inverse=True)[1], we)
    tied_y = tied_any - tied_xy
    denom = concordant + discordant + tied_x
    return {
        "concordant": concordant,
        "discordant": discordant,
        "tied_x": tied_x,
        "tied_y": tied_y,
        "tied_xy": tied_xy,
        "concordance": (concordant + tied_x / 2) / denom if denom > 0 else float("nan"),
    }


# ---- the result ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CoxFit:
    """A fitted Cox model; see :func:`cox`.

    Attributes
    ----------
    summary : polars.DataFrame
        term, estimate, std_error (model-based), robust_std_error (when robust),
        hazard_ratio, conf_low, conf_high (of the hazard ratio), statistic (z),
        p_value. With a robust variance, z, p and the CI use the robust SE (as R).
    coef, vcov, robust_vcov : numpy arrays.
    loglik, loglik_null : log partial likelihood at the estimate and at zero.
    n, n_events : rows used and events.
    engine : "numpy" (the fast exact engine) or "lifelines".
    converged : False on non-convergence or infinite estimates (see warnings).
    """

    summary: pl.DataFrame
    coef: np.ndarray
    vcov: np.ndarray
    robust_vcov: np.ndarray | None
    loglik: float
    loglik_null: float
    n: int
    n_events: int
    n_clusters: int | None
    ties: str
    formula: str
    terms: dict[str, list[int]]
    iterations: int
    converged: bool
    warnings: tuple[str, ...]
    engine: str
    conf_level: float
    strata_labels: tuple[str, ...] | None = None
    means: np.ndarray | None = None
    _data: CoxData | None = field(default=None, repr=False, compare=False)
    _times: tuple | None = field(default=None, repr=False, compare=False)
    _design: Any = field(default=None, repr=False, compare=False)
    _strata_cols: tuple[str, ...] = field(default=(), repr=False, compare=False)
    _strata_keys: pl.DataFrame | None = field(default=None, repr=False, compare=False)
    _names: dict[str, str | None] = field(default_factory=dict, repr=False, compare=False)
    _keep: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def _coef_fit(self) -> np.ndarray:
        """The estimated (non-aliased) coefficients, in the layout of ``_data``."""
        return self.coef if self._keep is None else self.coef[self._keep]

    def _fitted(self, a: np.ndarray) -> np.ndarray:
        """The non-aliased rows/columns of a p x p matrix."""
        return a if self._keep is None else a[np.ix_(self._keep, self._keep)]

    @property
    def aliased(self) -> tuple[str, ...]:
        """Terms whose coefficients are not estimable (NaN, as R's NA): collinear or constant columns."""
        return tuple(n for n, c in zip(self.names, self.coef, strict=True) if np.isnan(c))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.summary.get_column("term").to_list())

    @property
    def hazard_ratios(self) -> dict[str, float]:
        return dict(zip(self.names, np.exp(self.coef).tolist(), strict=True))

    @cached_property
    def _concordance(self) -> dict[str, float]:
        if self._data is None:
            raise ModelSpecError("concordance needs the numpy engine")
        eta = np.einsum("ij,j->i", self._data.X, self._coef_fit)
        if self._data.offset is not None:  # R's linear.predictors include the offset
            eta = eta + self._data.offset
        return concordance_counts(self._data, eta)

    @property
    def concordance(self) -> float:
        """Harrell's C as R's coxph (computed on first use)."""
        return self._concordance["concordance"]

    @property
    def concordance_detail(self) -> dict[str, float]:
        """Counts behind the concordance, as R's ``concordance``: concordant, discordant, tied_x,
        tied_y (events at one time, different risk scores), tied_xy (equal risk scores too)."""
        return dict(self._concordance)

    @cached_property
    def tests(self) -> pl.DataFrame:
        """Likelihood-ratio, Wald and score tests of all coefficients = 0 (as R's summary.coxph)."""
        coef = self._coef_fit
        p = coef.size
        lr = 2 * (self.loglik - self.loglik_null)
        wald = float(coef @ np.linalg.solve(self._fitted(self.vcov), coef))
        score = float("nan")
        if self._data is not None:
            ev0 = self._data.evaluate(np.zeros(p))
            score = float(ev0["score"] @ np.linalg.solve(ev0["info"], ev0["score"]))
        rows = [("likelihood_ratio", lr), ("wald", wald), ("score", score)]
        if self.robust_vcov is not None:
            rows.append(("robust_wald", float(coef @ np.linalg.solve(self._fitted(self.robust_vcov), coef))))
        return pl.DataFrame(
            {
                "test": [r[0] for r in rows],
                "statistic": [r[1] for r in rows],
                "df": [p] * len(rows),
                "p_value": [float(stats.chi2.sf(r[1], p)) for r in rows],
            }
        )

    def reference_point(self) -> np.ndarray:
        """Covariate values of the "centered" baseline, R's ``fit$means``.

        The (case-weighted) column means, with 0 for columns whose values are all
        in {-1, 0, 1} (R's ``nocenter``).
        """
        if self.means is None:
            raise ModelSpecError("reference_point needs the numpy engine")
        return self.means.copy()

    # ---- prediction (survfit.coxph / predict.coxph) ------------------------------------
    def _need_numpy(self, what: str) -> CoxData:
        if self._data is None or self._design is None:
            raise ModelSpecError(f"{what} needs the numpy engine (engine='numpy')")
        self._refuse_offset(what)
        return self._data

    def _refuse_offset(self, what: str) -> None:
        if self._data is not None and self._data.offset is not None:
            raise ModelSpecError(
                f"{what} from a model with offset() ({self.formula!r}) is not supported yet; "
                "coefficients, tests, concordance and residuals are"
            )

    @property
    def _coef0(self) -> np.ndarray:
        """Coefficients with NaN (aliased columns) as 0, as R uses them for prediction."""
        return np.nan_to_num(self.coef, nan=0.0)

    @property
    def _vcov0(self) -> np.ndarray:
        """The variance R's predictions use (fit$var: the robust one when there is one)."""
        v = self.robust_vcov if self.robust_vcov is not None else self.vcov
        return np.nan_to_num(v, nan=0.0)

    @cached_property
    def _train_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Uncentered X, weights and strata codes of the rows used, in the data's row order."""
        d = self._need_numpy("prediction")
        return np.asarray(self._design.X, dtype=np.float64), d.unpermute(d.w), d.unpermute(d.strata)

    @cached_property
    def _baseline_curves(self) -> list:
        """Per stratum: R's agsurv baseline at the reference point (see _predict.agsurv)."""
        from cohort.survival._predict import agsurv

        X, w, s = self._train_arrays
        start, stop, event = self._times
        beta = self._coef0
        risk = np.exp(X @ beta - float(self.means @ beta))
        curves = []
        for k in range(int(s.max()) + 1):
            m = s == k
            curves.append(agsurv(None if start is None else start[m], stop[m], event[m], w[m], X[m], risk[m],
                                 efron=self.ties == "efron"))
        return curves

    def _new_x(self, frame: pl.DataFrame) -> np.ndarray:
        from cohort.survival.formula import new_design_matrix

        self._need_numpy("prediction")
        return new_design_matrix(self._design, frame)

    def predict(
        self, newdata: Any = None, *, type: str = "lp", reference: str = "strata", se_fit: bool = False
    ) -> pl.DataFrame:
        """Predictions as R's ``predict.coxph``.

        Parameters
        ----------
        newdata : rows with the formula's columns (and the strata columns for
            stratified models; the time columns for "expected"/"survival"), or None
            for the rows used in the fit.
        type : "lp" (linear predictor), "risk" (exp(lp)), "expected" (expected number
            of events H0(t) exp(lp) by each row's time; over (start, stop] for
            counting-process data) or "survival" (exp(-expected)).
        reference : centering of "lp"/"risk": "strata" (R's default: the weighted
            means of the row's stratum; the overall means without strata),
            "sample" (``fit.means``, R's ``fit$means``) or "zero" (no centering).
        se_fit : add ``std_error`` (for "risk" it is se(lp) * sqrt(risk), as R).

        Returns
        -------
        polars.DataFrame with row, prediction (and std_error).

        Examples
        --------
        >>> import polars as pl
        >>> from cohort import survival as sv
        >>> df = pl.DataFrame({"t": [2, 3, 5, 7, 8, 11, 12, 15], "e": [1, 1, 0, 1, 1, 0, 1, 1],
        ...                    "x": [3.0, 2.5, 1.0, 2.0, 0.5, 1.5, 0.0, 1.0]})
        >>> fit = sv.cox(df, "x", time="t", event="e")
        >>> p = fit.predict(pl.DataFrame({"x": [0.0, 2.0]}), type="risk")
        >>> bool(p["prediction"][1] > p["prediction"][0])
        True
        """
        from cohort.survival._predict import predict_frame

        self._need_numpy("predict")
        return predict_frame(self, newdata, type=type, reference=reference, se_fit=se_fit)

    def predict_survival(
        self,
        newdata: Any,
        *,
        times: Sequence[float] | float | None = None,
        conf_level: float | None = None,
        conf_type: str = "log",
    ) -> pl.DataFrame:
        """Survival curves for new covariate values, as R's ``survfit(fit, newdata=...)``.

        The baseline hazard is Breslow's or Efron's (as the fit's ties), the
        standard error includes the variance of the coefficients (R's delta
        method), and the band is on the log scale by default (as R).

        Parameters
        ----------
        newdata : one row per covariate pattern. For a stratified model give the
            strata columns to get each row's own stratum, or leave them out to get
            one curve per stratum for every row (as R).
        times : evaluate at these times (step function; before the first time the
            survival is 1, after the last the last value is carried, as R's
            ``summary(..., times, extend=TRUE)``); None gives every distinct time
            of the stratum with n_risk, n_event, n_censor.
        conf_level : defaults to the fit's.
        conf_type : "log" (R's default), "log-log" or "plain".

        Returns
        -------
        polars.DataFrame
            row (index in newdata), strata, time, [n_risk, n_event, n_censor],
            survival, std_error (of the survival, as R's summary), conf_low,
            conf_high, cumulative_hazard, std_error_cumhaz (R's ``fit$std.err``).

        Examples
        --------
        >>> import polars as pl
        >>> from cohort import survival as sv
        >>> df = pl.DataFrame({"t": [2, 3, 5, 7, 8, 11, 12, 15], "e": [1, 1, 0, 1, 1, 0, 1, 1],
        ...                    "x": [3.0, 2.5, 1.0, 2.0, 0.5, 1.5, 0.0, 1.0]})
        >>> fit = sv.cox(df, "x", time="t", event="e")
        >>> curve = fit.predict_survival(pl.DataFrame({"x": [1.0]}), times=[0, 100])
        >>> curve["survival"].to_list()[0]
        1.0
        """
        from cohort.survival._predict import survival_frame

        self._need_numpy("predict_survival")
        return survival_frame(self, newdata, times=times, conf_level=conf_level, conf_type=conf_type)

    def survival_function(self, newdata: Any, *, times: Sequence[float] | None = None) -> pl.DataFrame:
        """Predicted survival as a wide table: ``time`` and one column per curve.

        Columns are named by the newdata row index ("0", "1", ...); when a
        stratified model gets newdata without the strata columns, "0: stratum".
        ``times`` defaults to every distinct time of the fitted data.
        """
        from cohort.survival._predict import survival_frame

        self._need_numpy("survival_function")
        if times is None:
            times = np.unique(np.concatenate([c.time for c in self._baseline_curves]))
        long = survival_frame(self, newdata, times=times)
        keys = long.select("row", "strata").unique(maintain_order=True)
        multi = keys.height > long.get_column("row").n_unique()
        out = {"time": np.asarray(times, dtype=np.float64)}
        for r, st in keys.iter_rows():
            sel = long.filter((pl.col("row") == r) & (pl.col("strata") == st))
            out[f"{r}: {st}" if multi else str(r)] = sel.get_column("survival").to_numpy()
        return pl.DataFrame(out)

    def baseline_hazard(self, *, centered: bool = True) -> pl.DataFrame:
        """Cumulative baseline hazard per stratum at the event times, as R's ``basehaz``.

        Breslow increments for Breslow fits, Efron's for Efron fits (as R's
        survfit.coxph). ``centered=True`` gives the hazard at :meth:`reference_point`
        (the covariate means, 0 for 0/1 columns, as R's default); ``centered=False``
        at covariates all zero.
        Returns strata, time, cumulative_hazard, survival.
        """
        d = self._data
        if d is None:
            raise ModelSpecError("baseline_hazard needs the numpy engine")
        self._refuse_offset("baseline_hazard")
        coef = self._coef_fit
        inc = d.evaluate(coef, second=False)["A"]  # hazard increments at d.means
        ref = self.reference_point() if centered else np.zeros(self.coef.size)
        if self._keep is not None:
            ref = ref[self._keep]
        inc = inc * float(np.exp(np.dot(ref - d.means, coef)))
        gs = d.group_stratum
        cum = np.empty_like(inc)
        for s in np.unique(gs):
            m = gs == s
            cum[m] = np.cumsum(inc[m])
        labels = self.strata_labels or ("all",)
        return pl.DataFrame(
            {
                "strata": [labels[int(s)] for s in gs],
                "time": d.group_time,
                "cumulative_hazard": cum,
                "survival": np.exp(-cum),
            }
        )

    def score_residuals(self) -> np.ndarray:
        """Per-row score residuals (n x p), as R's ``residuals(fit, type="score")``."""
        if self._data is None:
            raise ModelSpecError("score residuals need the numpy engine")
        r = self._data.score_residuals(self._coef_fit)
        if self._keep is None:
            return r
        out = np.full((r.shape[0], self.coef.size), np.nan)
        out[:, self._keep] = r
        return out

    def check_proportional_hazards(self, *, transform: str = "km", global_test: bool = True) -> pl.DataFrame:
        """Test proportional hazards from scaled Schoenfeld residuals, as R's ``cox.zph``.

        A score test, per term and GLOBAL, of adding ``x * g(t)`` to the model,
        where g is the time transform: "km" (R's default: 1 - KM(t-)),
        "identity", "log" or "rank". Returns term, chisq, df, p_value.
        """
        d = self._data
        if d is None:
            raise ModelSpecError("check_proportional_hazards needs the numpy engine")
        if d.G == 0:
            raise ModelSpecError("no events: the proportional hazards test is not defined")
        times = d.group_time
        if transform == "km":
            tt = _km_transform(*self._times, d)
        elif transform == "identity":
            tt = times
        elif transform == "log":
            tt = np.log(times)
        elif transform == "rank":
            # R ranks all rows' stop times (average ranks for ties, pooled over strata)
            allstop = np.sort(self._times[1])
            lo = np.searchsorted(allstop, times, side="left")
            hi = np.searchsorted(allstop, times, side="right")
            tt = (lo + 1 + hi) / 2.0
        else:
            raise ModelSpecError(f"unknown transform {transform!r}; use 'km', 'rank', 'identity' or 'log'")
        # centre on the mean over event rows (unweighted, as R)
        gt = tt - np.sum(tt * d.d) / d.d.sum()
        ev = d.evaluate(self._coef_fit)
        # score of the x*g(t) block at gamma = 0
        per_group = d._gsum(d.X[: d.m] * d.wev[:, None])
        per_group -= ev["A"][:, None] * ev["S1"] - ev["B"][:, None] * ev["S1D"]
        u2 = np.einsum("g,gj->j", gt, per_group)
        i11 = d.information(ev)
        i12 = d.information(ev, gt)
        i22 = d.information(ev, gt * gt)
        p = d.p
        imat = np.block([[i11, i12], [i12.T, i22]])
        u = np.concatenate([np.zeros(p), u2])
        rows = []
        pos = {int(c): i for i, c in enumerate(self._keep)} if self._keep is not None else None
        for term, cols_all in self.terms.items():
            cols = cols_all if pos is None else [pos[c] for c in cols_all if c in pos]
            if not cols:  # every column of the term is aliased: no row (as R)
                continue
            kk = list(range(p)) + [p + c for c in cols]
            uk = u[kk]
            stat = float(uk @ np.linalg.solve(imat[np.ix_(kk, kk)], uk))
            rows.append((term, stat, len(cols)))
        if global_test:
            rows.append(("GLOBAL", float(u @ np.linalg.solve(imat, u)), p))
        return pl.DataFrame(
            {
                "term": [r[0] for r in rows],
                "chisq": [r[1] for r in rows],
                "df": [r[2] for r in rows],
                "p_value": [float(stats.chi2.sf(r[1], r[2])) for r in rows],
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable plain data."""
        return {
            "model": "cox",
            "formula": self.formula,
            "ties": self.ties,
            "engine": self.engine,
            "n": self.n,
            "n_events": self.n_events,
            "n_clusters": self.n_clusters,
            "loglik": self.loglik,
            "loglik_null": self.loglik_null,
            "converged": self.converged,
            "iterations": self.iterations,
            "warnings": list(self.warnings),
            "aliased": list(self.aliased),
            "summary": _nan_to_none(self.summary.to_dicts()),
            "vcov": _nan_to_none(self.vcov.tolist()),
            "robust_vcov": None if self.robust_vcov is None else _nan_to_none(self.robust_vcov.tolist()),
        }

    def plot(self, **kwargs: Any):
        """Forest plot of the hazard ratios; see :func:`cohort.survival.plots.plot_forest`."""
        from cohort.survival.plots import plot_forest

        return plot_forest(self, **kwargs)


def _summary(names, coef, vcov, robust, conf_level) -> pl.DataFrame:
    with np.errstate(invalid="ignore", over="ignore"):
        se = np.sqrt(np.diag(vcov))
        use = np.sqrt(np.diag(robust)) if robust is not None else se
    z = z_value(conf_level)
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = coef / use
    cols = {
        "term": list(names),
        "estimate": coef,
        "std_error": se,
    }
    if robust is not None:
        cols["robust_std_error"] = use
    with np.errstate(over="ignore"):
        cols.update(
            {
                "hazard_ratio": np.exp(coef),
                "conf_low": np.exp(coef - z * use),
                "conf_high": np.exp(coef + z * use),
                "statistic": stat,
                "p_value": 2 * stats.norm.sf(np.abs(stat)),
            }
        )
    return pl.DataFrame(cols)


def _km_transform(start, stop, event, d: CoxData) -> np.ndarray:
    """1 - KM(t-) at each event group time, pooled over strata (R's cox.zph transform='km')."""
    times, inv = np.unique(stop, return_inverse=True)
    nev = np.bincount(inv, weights=event.astype(float), minlength=times.size)
    nall = np.bincount(inv, minlength=times.size).astype(float)
    nrisk = np.cumsum(nall[::-1])[::-1]
    if start is not None:
        ss = np.sort(start)
        nrisk = nrisk - (ss.size - np.searchsorted(ss, times, side="left"))
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(np.where(nrisk > 0, 1 - nev / nrisk, 1.0))
    idx = np.searchsorted(times, d.group_time, side="left")  # number of times < t
    return 1 - np.concatenate([[1.0], surv])[idx]


def _nan_to_none(x: Any) -> Any:
    """NaN floats (aliased coefficients) as None, so the data is strict JSON."""
    if isinstance(x, float):
        return None if x != x else x
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    return x


def _aliased_columns(info: np.ndarray, toler: float = float(np.finfo(float).eps ** 0.75)) -> np.ndarray:
    """Columns R's ``cholesky2`` declares singular in the information matrix (toler.chol default).

    In column order, a pivot below ``toler`` times the largest diagonal element
    marks the column aliased (it adds nothing to the earlier ones).
    """
    a = np.array(info, dtype=np.float64, copy=True)
    k = a.shape[0]
    eps = toler * max(float(np.max(np.diag(a), initial=0.0)), 0.0)
    out = np.zeros(k, dtype=bool)
    for i in range(k):
        piv = a[i, i]
        if not np.isfinite(piv) or piv < eps or piv <= 0:
            out[i] = True
            a[i, i] = 0.0
            continue
        col = a[i + 1 :, i] / piv
        a[i + 1 :, i + 1 :] -= np.outer(col, col) * piv
    return out


def _expand(a: np.ndarray, keep: np.ndarray, p: int) -> np.ndarray:
    """Put fitted-column results back in the full column layout, NaN for aliased columns."""
    if keep.size == p:
        return a
    if a.ndim == 1:
        out = np.full(p, np.nan)
        out[keep] = a
        return out
    out = np.full((p, p), np.nan)
    out[np.ix_(keep, keep)] = a
    return out


def _refuse_singular(X: np.ndarray, names: tuple[str, ...]) -> None:
    """For the lifelines engine: a clear error for constant or collinear columns."""
    from cohort.survival._cox_engine import _wgram

    n = X.shape[0]
    mu = X.mean(axis=0)
    gram = _wgram(X, np.full(n, 1.0 / n)) - np.outer(mu, mu)
    sd = np.sqrt(np.maximum(np.diag(gram), 0))
    const = np.flatnonzero(sd <= 1e-12 * np.maximum(1.0, np.abs(mu)))
    if const.size:
        raise ModelSpecError(
            f"column(s) {', '.join(names[i] for i in const)} are constant in the data used; "
            "drop them from the formula (the numpy engine gives them NaN coefficients, as R)"
        )
    eigval, eigvec = np.linalg.eigh(gram / np.outer(sd, sd))
    if eigval[0] < 1e-10 * max(1.0, eigval[-1]):
        involved = np.flatnonzero(np.abs(eigvec[:, 0]) > 1e-3)
        raise ModelSpecError(
            "the design is collinear: column(s) " + ", ".join(names[i] for i in involved)
            + " are linearly dependent; drop one of them (the numpy engine gives NaN coefficients, as R)"
        )


def _r_means(X: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """R's coxph ``means``: case-weighted column means, 0 for columns with values only in {-1, 0, 1}."""
    means = X.mean(axis=0) if w is None else (w @ X) / w.sum()
    nocenter = np.array([np.all(np.isin(X[:, j], (-1.0, 0.0, 1.0))) for j in range(X.shape[1])], dtype=bool)
    return np.where(nocenter, 0.0, means)


def cox(
    df: Any,
    formula: str,
    *,
    time: str,
    event: str,
    start: str | None = None,
    strata: str | Sequence[str] | None = None,
    cluster: str | None = None,
    robust: bool | None = None,
    weights: str | None = None,
    ties: str = "efron",
    conf_level: float = 0.95,
    missing: str = "drop",
    engine: str = "auto",
    penalizer: float = 0.0,
    max_iter: int = 50,
    tol: float = 1e-12,
    timefix: bool = True,
) -> CoxFit:
    """Fit a Cox proportional hazards model, as R's ``coxph``.

    Parameters
    ----------
    df : polars or pandas DataFrame, one row per subject or per (start, stop] interval.
    formula : right-hand side (formulaic syntax), e.g. ``"fin + age + prio"``, ``"a*b"``,
        ``"C(site)"``. A categorical reference level is set with
        ``treatment(site, reference='b')`` (also ``treatment(site, 'b')``,
        ``C(site, contr.treatment(base='b'))`` or ``C(site, Treatment(reference='b'))``).
        Coefficient names: numeric columns keep their name; each non-reference level
        of a categorical column is ``C(site)[T.a]`` whatever the spelling (strings used
        without ``C()``: ``site[T.a]``); interactions join with ``:``, e.g.
        ``fin:age``. Term names (``fit.terms``, the rows of the proportional hazards
        test) are ``C(site)`` for all of a factor's columns. Quote names with dots
        in backticks: ```ph.ecog```. Levels, whatever the row order: strings sorted
        as R's ``factor()`` in the C locale, polars Enum / pandas ordered Categorical in
        their declared order, other Categoricals sorted as strings (the first is the
        reference). ``offset(log(years))`` adds a term with coefficient fixed at 1, as
        R's ``offset()`` (predictions and baseline hazards of such a fit are refused).
    time : follow-up (stop) time column.
    event : 0/1 event column.
    start : interval start column: counting-process data, time-varying
        covariates, left truncation (delayed entry), recurrent events (Andersen-Gill;
        PWP with ``strata`` = the event number).
    strata : column(s): a separate baseline hazard per stratum.
    cluster : column identifying subjects: cluster-robust (sandwich) SEs, as
        R's ``cluster(id)``; z, p and CI then use the robust SE.
    robust : sandwich SEs with each row its own cluster (defaults to True when cluster is
        given or the case weights are not all whole numbers, as R).
    weights : case weights column; every weight must be > 0 (zero, negative or missing weights are refused, as R).
    ties : "efron" (default, as R) or "breslow".
    missing : "drop" (default, as R's ``na.omit``): rows with a missing value (null or NaN) in any
        column used (formula, time, start, event, strata, cluster, weights) are left out and the
        note in ``.warnings`` states how many, per column and which rows; "raise" refuses them.
    engine : "auto"/"numpy" (fast exact engine), or "lifelines" (general path; needed for penalizer).
    penalizer : ridge penalty (lifelines engine only).
    timefix : merge nearly equal times (floating-point noise such as 1.0 and 1.0 + 1e-12)
        as R's ``aeqSurv`` before fitting (default, as R's ``coxph.control(timefix=TRUE)``).

    Returns
    -------
    CoxFit

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> from cohort import survival as sv
    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(size=200)
    >>> t = rng.exponential(1 / np.exp(0.7 * x))
    >>> df = pl.DataFrame({"t": t, "e": (t < 2).astype(int), "x": x}).with_columns(pl.col("t").clip(upper_bound=2))
    >>> fit = sv.cox(df, "x", time="t", event="e")
    >>> round(fit.summary["estimate"][0], 1)
    0.7
    """
    if ties not in ("efron", "breslow"):
        raise ModelSpecError(f"ties must be 'efron' or 'breslow', got {ties!r}")
    check_missing(missing, model="cox")
    if engine not in ("auto", "numpy", "lifelines"):
        raise ModelSpecError(f"engine must be 'auto', 'numpy' or 'lifelines', got {engine!r}")
    frame = as_polars(df)
    for role, c in (("time", time), ("event", event), ("start", start), ("cluster", cluster), ("weights", weights)):
        if c is not None and c not in frame.columns:
            raise ModelSpecError(f"{role} column {c!r} is not in the data")
    stop_all = column_array(frame, time, role="time")
    start_all = column_array(frame, start, role="start") if start else None
    scols = () if strata is None else ((strata,) if isinstance(strata, str) else tuple(strata))
    design = design_matrix(frame, formula, missing=missing, allow_offset=True,
                           extra=(time, start, event, *scols, cluster, weights))
    check_times(stop_all, name=time, start=start_all, start_name=start or "start", rows=design.rows)
    event_array(frame, event, rows=design.rows)  # validates 0/1
    warn: list[str] = list(design.notes)
    sub = frame[design.rows] if design.dropped else frame
    stop = stop_all[design.rows]
    st = None if start_all is None else start_all[design.rows]
    if timefix:
        stop, st = aeq_times(stop, st)
    ev = event_array(sub, event)
    w = None
    if weights:
        w = weight_array(frame, weights, rows=design.rows)
    scodes, slabels, skeys = group_codes(sub, strata, role="strata") if strata is not None else (None, None, None)
    X = design.X
    n, p = X.shape
    if p == 0:
        raise ModelSpecError(f"formula {formula!r} has no covariates")
    if engine == "lifelines" or penalizer > 0:
        if design.offset is not None:
            raise ModelSpecError("offset() needs the numpy engine (engine='numpy', penalizer=0)")
        from cohort.survival._lifelines import fit_lifelines

        _refuse_singular(X, design.names)
        return fit_lifelines(
            X, stop, ev, start=st, strata=scodes, weights=w, names=design.names, terms=design.terms,
            formula=formula, ties=ties, conf_level=conf_level, penalizer=penalizer,
            cluster=None if cluster is None else sub.get_column(cluster).to_numpy(), warn=warn,
        )
    data = CoxData(X, stop, ev, start=st, strata=scodes, weights=w, ties=ties, offset=design.offset)
    if data.G == 0:
        raise ModelSpecError(f"no events in column {event!r}: a Cox model cannot be fitted")
    # aliased columns (collinear, constant, or constant within strata): R's cholesky2 on the
    # information matrix flags them; their coefficients are NA in R, NaN here, and the others
    # are fitted without them
    ev0 = data.evaluate(np.zeros(p))
    aliased = _aliased_columns(ev0["info"])
    keep = np.flatnonzero(~aliased)
    alias_msg = ""
    if aliased.any():
        if keep.size == 0:
            raise ModelSpecError(
                f"no column of {formula!r} varies within the risk sets (all are constant, or constant "
                "within strata): nothing to estimate"
            )
        bad = ", ".join(design.names[i] for i in np.flatnonzero(aliased))
        alias_msg = (
            f"X matrix deemed to be singular: the coefficient(s) of {bad} are not estimable (linearly "
            "dependent on earlier columns, constant, or constant within strata) and are NaN, as R's NA; "
            "the other coefficients are fitted without them"
        )
        warn.append(alias_msg)
        data = CoxData(X[:, keep], stop, ev, start=st, strata=scodes, weights=w, ties=ties, offset=design.offset)
        res = newton_raphson(data, max_iter=max_iter, tol=tol)
    else:
        res = newton_raphson(data, max_iter=max_iter, tol=tol, first=ev0)
    pk = keep.size
    fit_names = [design.names[i] for i in keep]
    names_div = ", ".join(fit_names[i] for i in res.diverging) or "some coefficients"
    res.messages[:] = [m.replace("{cols}", names_div) for m in res.messages]
    warn.extend(res.messages)
    try:
        vcov = np.linalg.inv(res.info)
    except np.linalg.LinAlgError:
        vcov = np.full((pk, pk), np.nan)
        warn.append("the information matrix is singular: standard errors are not available")
    robust_vcov = None
    n_clusters = None
    if robust is None:  # as R: robust with a cluster or non-integer case weights
        robust = cluster is not None or (w is not None and bool(np.any(w != np.floor(w))))
    if robust:
        resid = data.score_residuals(res.beta, res.ev)
        dfb = np.einsum("ij,jk->ik", resid if w is None else resid * w[:, None], vcov)
        if cluster is not None:
            cl = sub.get_column(cluster)
            nulls = cl.is_null().to_numpy()
            if nulls.any():
                raise ModelSpecError(f"cluster column {cluster!r} has missing values at {rows_text(nulls)}")
            codes = cl.rank("dense").to_numpy().astype(np.int64) - 1
            n_clusters = int(codes.max()) + 1
            dfb = np.stack([np.bincount(codes, weights=dfb[:, j], minlength=n_clusters) for j in range(pk)], 1)
        robust_vcov = np.einsum("ij,ik->jk", dfb, dfb)
    if alias_msg:
        _warnings.warn(alias_msg, ConvergenceWarning, stacklevel=2)
    for m in res.messages:
        _warnings.warn(m, ConvergenceWarning, stacklevel=2)
    coef = _expand(res.beta, keep, p)
    vcov = _expand(vcov, keep, p)
    robust_vcov = None if robust_vcov is None else _expand(robust_vcov, keep, p)
    summary = _summary(design.names, coef, vcov, robust_vcov, conf_level)
    return CoxFit(
        summary=summary,
        coef=coef,
        vcov=vcov,
        robust_vcov=robust_vcov,
        loglik=res.loglik,
        loglik_null=data.null_loglik(),
        n=n,
        n_events=int(ev.sum()),
        n_clusters=n_clusters,
        ties=ties,
        formula=formula,
        terms=design.terms,
        iterations=res.iterations,
        converged=res.converged,
        warnings=tuple(warn),
        engine="numpy",
        conf_level=conf_level,
        strata_labels=None if slabels is None else tuple(slabels),
        means=_r_means(X, w),
        _data=data,
        _times=(st, stop, ev),
        _design=design,
        _strata_cols=scols,
        _strata_keys=skeys,
        _names={"time": time, "event": event, "start": start},
        _keep=None if keep.size == p else keep,
    )
