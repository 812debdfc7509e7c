"""GEE (statsmodels) with geepack's conventions: ``gee(df, "y ~ x", groups="id", ...)``.

As ``geepack::geeglm``: the scale is estimated for every family by the Pearson
moment estimator with denominator N, the working correlation by moments of the
Pearson residuals scaled by that scale (exchangeable: all within-cluster pairs;
AR-1: pairs of consecutive visits; unstructured: per pair of visit positions),
robust (sandwich) and naive (model-based) standard errors.
Rows are taken in the order given within each cluster (sort by time first).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from cohort.errors import ConvergenceWarning, ModelSpecError
from cohort.longitudinal._design import build_design, to_polars

__all__ = ["gee", "GEEResult"]

FAMILIES = ("gaussian", "binomial", "poisson")
CORRELATIONS = ("independence", "exchangeable", "ar1", "unstructured")


def _pearson(model) -> list[np.ndarray]:
    out = []
    for i in range(model.num_group):
        expval, _ = model.cached_means[i]
        out.append((model.endog_li[i] - expval) / np.sqrt(model.family.variance(expval)))
    return out


def _cov_structs():
    from statsmodels.genmod import cov_struct as cs

    class GeepackAR1(cs.Autoregressive):
        """AR-1 with geepack's moment estimator (lag-1 pairs, common scale)."""

        def update(self, params):  # noqa: ARG002 (statsmodels signature)
            res = _pearson(self.model)
            scale = sum(float(r @ r) for r in res) / sum(len(r) for r in res)
            num = sum(float(r[:-1] @ r[1:]) for r in res)
            npairs = sum(max(len(r) - 1, 0) for r in res)
            self.dep_params = num / (scale * npairs) if npairs else 0.0

    class GeepackUnstructured(cs.Unstructured):
        """Unstructured with geepack's moment estimator (common scale, pairwise counts)."""

        def update(self, params):  # noqa: ARG002
            res = _pearson(self.model)
            q = int(self.model.time.max()) + 1
            num = np.zeros((q, q))
            cnt = np.zeros((q, q))
            for r, t in zip(res, self.model.time_li, strict=True):
                ix = t[:, 0].astype(int)
                num[np.ix_(ix, ix)] += np.outer(r, r)
                cnt[np.ix_(ix, ix)] += 1
            scale = sum(float(r @ r) for r in res) / sum(len(r) for r in res)
            with np.errstate(invalid="ignore", divide="ignore"):
                corr = np.where(cnt > 0, num / (scale * cnt), 0.0)
            np.fill_diagonal(corr, 1.0)
            self.dep_params = corr

    return {
        "independence": cs.Independence,
        "exchangeable": cs.Exchangeable,
        "ar1": GeepackAR1,
        "unstructured": GeepackUnstructured,
    }


@dataclass(frozen=True, eq=False)
class GEEResult:
    """A fitted GEE (frozen). ``summary`` has robust SEs; ``naive_std_error`` model-based."""

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
    engine: str = "statsmodels"

    def to_dict(self) -> dict:
        """JSON-serialisable plain data."""
        cp = self.correlation_params
        return {
            "model": "gee",
            "formula": self.formula,
            "groups": self.groups,
            "family": self.family,
            "correlation": self.correlation,
            "summary": self.summary.to_dicts(),
            "correlation_params": cp.tolist() if isinstance(cp, np.ndarray) else cp,
            "scale": self.scale,
            "nobs": self.nobs,
            "ngroups": self.ngroups,
            "converged": self.converged,
            "warnings": list(self.warnings),
        }

    def plot(self, **kwargs: Any):
        """Forest plot of the coefficients with robust CIs."""
        from cohort.longitudinal.plots import forest

        return forest(self.summary, **kwargs)


def gee(
    data: Any,
    formula: str,
    *,
    groups: str,
    family: str = "gaussian",
    correlation: str = "exchangeable",
    conf_level: float = 0.95,
    maxiter: int = 200,
) -> GEEResult:
    """Fit a marginal model by generalised estimating equations, as ``geepack::geeglm``.

    Parameters
    ----------
    data
        Polars (or pandas) frame, one row per visit, visits in time order within a cluster.
    formula
        Mean model, e.g. ``"resp ~ age + smoke"``.
    groups
        Cluster column (participant).
    family
        ``"gaussian"`` (identity link), ``"binomial"`` (logit), ``"poisson"`` (log).
    correlation
        Working correlation: ``"independence"``, ``"exchangeable"``, ``"ar1"``, ``"unstructured"``
        (visit position within the cluster indexes the unstructured matrix).

    Examples
    --------
    >>> from cohort.longitudinal import gee, example_data
    >>> g = gee(example_data(), "y ~ time + x", groups="subject", correlation="ar1")
    >>> g.summary.columns[:4]
    ['term', 'estimate', 'std_error', 'naive_std_error']
    """
    import statsmodels.api as sm

    if family not in FAMILIES:
        raise ModelSpecError(f"gee: family={family!r}; use one of {', '.join(FAMILIES)}")
    if correlation not in CORRELATIONS:
        raise ModelSpecError(f"gee: correlation={correlation!r}; use one of {', '.join(CORRELATIONS)}")
    frame = to_polars(data)
    y, X, _, _, info, notes = build_design(frame, formula, random=None, group_cols=[groups], model="gee")
    levels, codes = info.group_codes[groups]
    # clusters must be contiguous for the visit index; keep the given order inside each cluster
    order = np.argsort(codes, kind="stable")
    y, X, codes = y[order], X[order], codes[order]
    first = np.r_[0, np.flatnonzero(np.diff(codes)) + 1]
    sizes = np.diff(np.r_[first, len(codes)])
    visit = np.arange(len(codes)) - np.repeat(first, sizes)
    if family == "binomial" and not np.all((y == 0) | (y == 1)):
        raise ModelSpecError(f"gee: family='binomial' needs a 0/1 response; {info.response!r} has other values")
    if family == "poisson" and np.any(y < 0):
        raise ModelSpecError(f"gee: family='poisson' needs a non-negative response; {info.response!r} has negatives")
    fam = {"gaussian": sm.families.Gaussian(), "binomial": sm.families.Binomial(),
           "poisson": sm.families.Poisson()}[family]
    cov = _cov_structs()[correlation]()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = sm.GEE(y, X, groups=codes, family=fam, cov_struct=cov, time=visit)
        res = model.fit(maxiter=maxiter, ctol=1e-10, ddof_scale=0, scale="X2")
    warn = list(notes) + [f"statsmodels: {w.message}" for w in caught]
    converged = bool(getattr(res, "converged", True)) and not any(
        "not converge" in str(w.message).lower() or "iteration limit" in str(w.message).lower() for w in caught
    )
    if not converged:
        warnings.warn("gee: the estimating equations did not converge", ConvergenceWarning, stacklevel=2)
        warn.append("the estimating equations did not converge")
    est = np.asarray(res.params, dtype=float)
    vcov = np.asarray(res.cov_robust)
    vnaive = np.asarray(res.cov_naive)
    se = np.sqrt(np.diag(vcov))
    z = est / se
    crit = stats.norm.ppf(0.5 + conf_level / 2)
    summary = pl.DataFrame(
        {
            "term": list(info.fixed_names),
            "estimate": est,
            "std_error": se,
            "naive_std_error": np.sqrt(np.diag(vnaive)),
            "statistic": z,
            "p_value": 2 * stats.norm.sf(np.abs(z)),
            "conf_low": est - crit * se,
            "conf_high": est + crit * se,
        }
    )
    if family in ("binomial", "poisson"):
        name = "odds_ratio" if family == "binomial" else "rate_ratio"
        summary = summary.with_columns(pl.col("estimate").exp().alias(name))
    dep = cov.dep_params
    if correlation == "independence":
        dep = None
    elif correlation in ("exchangeable", "ar1"):
        dep = float(dep)
    return GEEResult(
        formula=formula,
        groups=groups,
        family=family,
        correlation=correlation,
        summary=summary,
        correlation_params=dep,
        scale=float(res.scale),
        nobs=len(y),
        ngroups=len(levels),
        converged=converged,
        warnings=tuple(warn),
        vcov=vcov,
        vcov_naive=vnaive,
    )
