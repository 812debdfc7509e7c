"""GEE with geepack's estimators: ``gee(df, "y ~ x", groups="id", correlation="ar1", waves="visit")``.

The fit reproduces ``geepack::geeglm`` (geepack 1.3.9) step by step, in NumPy
(:mod:`cohort.longitudinal._geepack`): glm start values, one Fisher-scoring step for the
coefficients, the scale (mean squared Pearson residual, denominator N) and one Gauss-Newton
step for the correlation parameters per iteration, geepack's stopping rule (largest absolute
change <= ``tol``) and its sandwich and naive covariances. Correlation parameters use all
within-cluster pairs of Pearson residuals scaled by the scale: exchangeable their mean,
AR-1 the least-squares fit of ``alpha ** |w_j - w_k|``, unstructured the mean per pair of waves.

Waves (``waves=``) are coded like R's ``as.integer(factor(waves))``: the sorted distinct values
become 1, 2, ... and AR-1 distances are differences of these codes. Without ``waves`` the
wave of a row is its position within its cluster, as in geepack.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from cohort.errors import ConvergenceWarning, ModelSpecError
from cohort.frames import as_polars
from cohort.longitudinal._design import build_design, rows_text
from cohort.longitudinal._geepack import Clusters, fit_geepack

__all__ = ["gee", "GEEResult"]

FAMILIES = ("gaussian", "binomial", "poisson")
CORRELATIONS = ("independence", "exchangeable", "ar1", "unstructured")
_ROW = "__gee_row__"


@dataclass(frozen=True, eq=False)
class GEEResult:
    """A fitted GEE (frozen). ``summary`` has robust SEs; ``naive_std_error`` model-based.

    ``correlation_params`` is None (independence), a float (exchangeable, AR-1) or the
    working correlation matrix indexed by wave codes (unstructured); ``wave_levels`` lists
    the wave values behind the codes 1, 2, ...; ``weights`` names the prior-weights column, if any.
    """

    formula: str
    groups: str
    family: str
    correlation: str
    summary: pl.DataFrame
    correlation_params: Any
    scale: float
    nobs: int
    ngroups: int
    converged: bool
    warnings: tuple[str, ...]
    vcov: np.ndarray = field(repr=False)
    vcov_naive: np.ndarray = field(repr=False)
    engine: str = "geepack"
    waves: str | None = None
    wave_levels: tuple = ()
    iterations: int = 0
    weights: str | None = None

    def to_dict(self) -> dict:
        """JSON-serialisable plain data."""
        cp = self.correlation_params
        return {
            "model": "gee",
            "formula": self.formula,
            "groups": self.groups,
            "family": self.family,
            "correlation": self.correlation,
            "waves": self.waves,
            "weights": self.weights,
            "wave_levels": [v if isinstance(v, (str, int, float)) else str(v) for v in self.wave_levels],
            "summary": self.summary.to_dicts(),
            "correlation_params": cp.tolist() if isinstance(cp, np.ndarray) else cp,
            "scale": self.scale,
            "nobs": self.nobs,
            "ngroups": self.ngroups,
            "converged": self.converged,
            "iterations": self.iterations,
            "warnings": list(self.warnings),
        }

    def plot(self, **kwargs: Any):
        """Forest plot of the coefficients with robust CIs."""
        from cohort.longitudinal.plots import forest

        return forest(self.summary, **kwargs)


def _wave_codes(values: pl.Series) -> tuple[np.ndarray, tuple]:
    """R's ``as.integer(factor(x))``: codes 1..L of the sorted distinct values."""
    levels = values.unique().sort()
    codes = values.to_frame("v").join(
        levels.to_frame("v").with_row_index("code"), on="v", how="left", maintain_order="left"
    )["code"]
    return codes.to_numpy().astype(np.int64) + 1, tuple(levels.to_list())


def gee(
    data: Any,
    formula: str,
    *,
    groups: str,
    family: str = "gaussian",
    correlation: str = "exchangeable",
    waves: str | None = None,
    conf_level: float = 0.95,
    maxiter: int = 25,
    tol: float = 1e-4,
    missing: str = "drop",
    weights: str | None = None,
) -> GEEResult:
    """Fit a marginal model by generalised estimating equations, as ``geepack::geeglm``.

    Parameters
    ----------
    data
        Polars (or pandas) frame, one row per visit. Rows of a cluster need not be
        contiguous (geepack needs data sorted by cluster; here rows are grouped by cluster,
        keeping their order within it).
    formula
        Mean model, e.g. ``"resp ~ age + smoke"``; ``offset(log(years))`` adds a term with
        coefficient fixed at 1, as R's ``offset()`` (e.g. the log person-time of a Poisson
        rate model). Category levels do not depend on row order: strings sorted as R's
        ``factor()`` in the C locale, polars Enum / pandas ordered Categorical in their
        declared order, other Categoricals sorted as strings; the first is the reference.
    groups
        Cluster column (participant).
    family
        ``"gaussian"`` (identity link), ``"binomial"`` (logit), ``"poisson"`` (log).
    correlation
        Working correlation: ``"independence"``, ``"exchangeable"``, ``"ar1"``, ``"unstructured"``.
    waves
        Column giving each visit's wave (visit number or time), as geeglm's ``waves=``:
        AR-1 distances and unstructured pairs follow the wave codes, so a missed visit
        leaves a gap. Default: the row's position within its cluster (geepack's default).
        At most one row per cluster and wave.
    conf_level
        Level of the Wald confidence intervals (robust standard errors).
    maxiter, tol
        geepack's ``geese.control(maxit=25, epsilon=1e-4)``: stop when the largest absolute
        change of coefficients, scale and correlation parameters is <= ``tol``. The defaults
        reproduce geepack's numbers; a smaller ``tol`` gives the solution of the equations.
    missing
        Rows with a missing value (null, or NaN) in a column the model uses (response,
        terms, ``groups``, ``waves``): ``"drop"`` (default, as geeglm's ``na.action =
        na.omit``) leaves them out and states their number, per column, in ``warnings``;
        ``"raise"`` refuses them with a :class:`~cohort.errors.ModelSpecError` naming the
        columns and rows.
    weights
        Column of prior weights, as geeglm's ``weights=`` (geepack's ``W``: each row's
        contribution to the estimating equations, scale and correlation moments is weighted).
        Negative or infinite weights are refused in one line naming the column, count and rows
        (glm.fit, which geeglm calls first, stops on both); a missing (null/NaN) weight is a
        missing value (see ``missing``). A zero weight is accepted, as geeglm does, but it is
        not the same as leaving the row out: geeglm keeps the row in its cluster's working
        correlation matrix, which changes the other rows' weights; ``warnings`` says so.

    Examples
    --------
    >>> from cohort.longitudinal import gee, example_data
    >>> g = gee(example_data(), "y ~ time + x", groups="subject", correlation="ar1")
    >>> g.summary.columns[:4]
    ['term', 'estimate', 'std_error', 'naive_std_error']
    >>> 0 < g.correlation_params < 1
    True
    """
    if family not in FAMILIES:
        raise ModelSpecError(f"gee: family={family!r}; use one of {', '.join(FAMILIES)}")
    if correlation not in CORRELATIONS:
        raise ModelSpecError(f"gee: correlation={correlation!r}; use one of {', '.join(CORRELATIONS)}")
    if not (0 < conf_level < 1):
        raise ModelSpecError(f"gee: conf_level={conf_level!r}; give a number between 0 and 1, e.g. 0.95")
    if maxiter < 1 or not (tol > 0):
        raise ModelSpecError(f"gee: maxiter={maxiter!r}, tol={tol!r}; give maxiter >= 1 and tol > 0")
    frame = as_polars(data)
    if waves is not None and waves not in frame.columns:
        raise ModelSpecError(f"gee: waves column {waves!r} is not in the data (columns: {', '.join(frame.columns)})")
    frame = frame.with_row_index(_ROW)
    group_cols = [groups, _ROW] + ([waves] if waves is not None and waves != groups else [])
    y, X, _, _, info, notes = build_design(frame, formula, random=None, group_cols=group_cols, model="gee",
                                        missing=missing, weights=weights)
    row_levels, row_codes = info.group_codes[_ROW]
    rows = np.asarray(row_levels, dtype=np.int64)[row_codes]  # original row index of each design row
    if info.weights is not None and np.any(info.weights == 0):
        zero = np.sort(rows[info.weights == 0])
        notes.append(
            f"weights column {weights!r} is zero at {rows_text(zero)}; kept as geeglm does (they stay in "
            "their cluster's working correlation, so this is not leaving them out): drop them to leave them out"
        )
    levels, codes = info.group_codes[groups]
    if family == "binomial" and not np.all((y == 0) | (y == 1)):
        bad = rows[(y != 0) & (y != 1)][:10].tolist()
        raise ModelSpecError(
            f"gee: family='binomial' needs a 0/1 response; {info.response!r} has other values (rows {bad}); "
            "recode it to 0/1"
        )
    if family == "poisson" and (np.any(y < 0) or np.any(y != np.round(y))):
        bad = rows[(y < 0) | (y != np.round(y))][:10].tolist()
        raise ModelSpecError(
            f"gee: family='poisson' needs non-negative counts; {info.response!r} has other values (rows {bad})"
        )
    # group the rows by cluster, keeping their order within a cluster
    order = np.argsort(codes, kind="stable")
    if np.count_nonzero(np.diff(codes)) + 1 != len(levels):
        notes.append(
            f"rows of a cluster ({groups!r}) were not contiguous; they were grouped by cluster "
            "(geeglm would treat each run of rows as a separate cluster: sort by cluster before comparing)"
        )
    y, X, codes, rows = y[order], X[order], codes[order], rows[order]
    offset = None if info.offset is None else info.offset[order]
    prior = None if info.weights is None else info.weights[order]
    sizes = np.bincount(codes, minlength=len(levels))
    wave_levels: tuple = ()
    wave_codes = None
    if waves is not None:
        wave_codes, wave_levels = _wave_codes(frame[waves].gather(rows))
        key = codes * (int(wave_codes.max()) + 1) + wave_codes
        uniq, counts = np.unique(key, return_counts=True)
        if np.any(counts > 1):
            dup = uniq[counts > 1][0]
            where = rows[key == dup].tolist()
            raise ModelSpecError(
                f"gee: cluster {levels[codes[key == dup][0]]!r} has {len(where)} rows with the same wave "
                f"({waves}={frame[waves][where[0]]!r}; rows {where[:10]}); keep one row per cluster and wave"
            )
    cl = Clusters.build(sizes, wave_codes)
    fit = fit_geepack(y, X, cl, family=family, corstr=correlation, tol=tol, maxiter=maxiter, offset=offset,
                      weights=prior)
    warn = list(notes)
    if fit.unobserved_pairs:
        shown = ", ".join(f"{wave_levels[a - 1]}-{wave_levels[b - 1]}" for a, b in fit.unobserved_pairs[:10])
        warn.append(
            f"unstructured: no cluster has both waves of {len(fit.unobserved_pairs)} pair(s) ({shown}); "
            "their correlation is set to 0"
        )
    if not fit.converged:
        msg = (f"the estimating equations did not converge in {maxiter} iterations "
               f"(tol={tol}); geepack stops there too (error 1); raise maxiter")
        warnings.warn(f"gee: {msg}", ConvergenceWarning, stacklevel=2)
        warn.append(msg)
    est = fit.beta
    with np.errstate(invalid="ignore"):  # a diverged fit can leave a non-PSD covariance
        se = np.sqrt(np.diag(fit.vbeta))
        naive_se = np.sqrt(np.diag(fit.vbeta_naive))
    z = est / se
    crit = stats.norm.ppf(0.5 + conf_level / 2)
    summary = pl.DataFrame(
        {
            "term": list(info.fixed_names),
            "estimate": est,
            "std_error": se,
            "naive_std_error": naive_se,
            "statistic": z,
            "p_value": 2 * stats.norm.sf(np.abs(z)),
            "conf_low": est - crit * se,
            "conf_high": est + crit * se,
        }
    )
    if family in ("binomial", "poisson"):
        name = "odds_ratio" if family == "binomial" else "rate_ratio"
        summary = summary.with_columns(pl.col("estimate").exp().alias(name))
    dep: Any = None
    if correlation in ("exchangeable", "ar1"):
        dep = float(fit.alpha[0])
    elif correlation == "unstructured":
        L = cl.nwaves
        dep = np.eye(L)
        iu = np.triu_indices(L, 1)
        dep[iu] = fit.alpha
        dep.T[iu] = fit.alpha
    if waves is None:
        wave_levels = tuple(range(1, cl.nwaves + 1))
    return GEEResult(
        formula=formula,
        groups=groups,
        family=family,
        correlation=correlation,
        summary=summary,
        correlation_params=dep,
        scale=fit.scale,
        nobs=len(y),
        ngroups=len(levels),
        converged=fit.converged,
        warnings=tuple(warn),
        vcov=fit.vbeta,
        vcov_naive=fit.vbeta_naive,
        waves=waves,
        wave_levels=wave_levels,
        iterations=fit.iterations,
        weights=weights,
    )
