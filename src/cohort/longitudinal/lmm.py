"""Linear mixed models that match lme4/lmerTest: ``lmm(df, "y ~ t", groups="id", random="~t")``.

Three engines, chosen automatically and reported as ``.engine``:

``"fast"``
    One grouping factor with a few random effects per group (intercepts, slopes;
    unstructured or diagonal covariance). The profiled (RE)ML deviance over lme4's
    relative covariance factor ``theta`` is computed for all groups at once from
    per-group sufficient statistics, with its exact gradient; L-BFGS-B then Newton
    steps leave ``theta`` tight to about 1e-10. Degrees of freedom: Satterthwaite, as
    lmerTest computes them.
``"nested"``
    Nested grouping (``groups="site/participant"``: random intercepts per site and per
    participant within site): the exact profiled (RE)ML of two nested intercepts in closed
    form, Satterthwaite df as lmerTest (:mod:`cohort.longitudinal._nested`).
``"statsmodels"``
    ``engine="statsmodels"`` (one grouping factor): statsmodels MixedLM with tight
    tolerances. Tests use normal reference distributions (``df`` infinite) there.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from cohort.errors import ConvergenceWarning, ModelSpecError
from cohort.frames import as_polars
from cohort.longitudinal._design import INTERCEPT, DesignInfo, build_design, new_frame
from cohort.longitudinal._fastlmm import FastLMM
from cohort.longitudinal._nested import NestedLMM

__all__ = ["lmm", "LMMResult"]

SINGULAR_TOL = 1e-4  # lme4's isSingular tolerance on theta


@dataclass(frozen=True, eq=False)
class LMMResult:
    """A fitted linear mixed model (frozen). See :func:`lmm`.

    Attributes
    ----------
    summary : polars.DataFrame
        Fixed effects: term, estimate, std_error, statistic, df, p_value, conf_low, conf_high.
    variance_components : polars.DataFrame
        As R's ``as.data.frame(VarCorr(fit))``: group, var1, var2, vcov, sdcor (variances
        first, then covariances/correlations, then the residual row).
    random_effects : polars.DataFrame
        Conditional modes (BLUPs) as R's ``as.data.frame(ranef(fit, condVar=TRUE))``:
        group, term, level, estimate, cond_sd; with nested groups both levels, the
        ``participant:site`` term (levels ``participant:site``) first.
    loglik, aic, bic : float
        As R's ``logLik``/``AIC``/``BIC``; with ``reml=True`` the REML criterion.
    theta : tuple of float
        The relative covariance factor, in the order of lme4's ``getME(fit, "theta")``:
        per grouping term the lower triangle column by column; with nested groups the
        inner term (``participant:site``) first, then the outer (``site``).
    weights : str or None
        The column of prior weights (``weights=``), if any.
    theta_names : tuple of str
        lme4's names of ``theta``, e.g. ``"Subject.(Intercept)"``,
        ``"Subject.Days.(Intercept)"``, ``"participant:site.(Intercept)"``.
    ngroups : int or dict
        Number of groups; with nested groups a dict in the order of lme4's ``ngrps``
        (inner term first).
    """

    formula: str
    groups: str
    random: str
    reml: bool
    engine: str
    summary: pl.DataFrame
    variance_components: pl.DataFrame
    random_effects: pl.DataFrame
    loglik: float
    nobs: int
    ngroups: int | dict[str, int]
    n_params: int
    converged: bool
    singular: bool
    warnings: tuple[str, ...]
    theta: tuple[float, ...]
    sigma: float
    df_method: str
    vcov: np.ndarray = field(repr=False)
    theta_names: tuple[str, ...] = ()
    weights: str | None = None
    fit_info: dict = field(repr=False, default_factory=dict)
    _design: DesignInfo | None = field(repr=False, default=None)
    _blups: dict = field(repr=False, default_factory=dict)
    _group_cols: tuple[str, ...] = field(repr=False, default=())
    _data: Any = field(repr=False, default=None)
    _options: dict = field(repr=False, default_factory=dict)

    @property
    def fixed_effects(self) -> dict[str, float]:
        """Fixed-effect estimates by term."""
        return dict(zip(self.summary["term"].to_list(), self.summary["estimate"].to_list(), strict=True))

    @property
    def aic(self) -> float:
        """Akaike's criterion, as R's ``AIC``: -2 loglik + 2 n_params."""
        return float(-2.0 * self.loglik + 2 * self.n_params)

    @property
    def bic(self) -> float:
        """Bayesian criterion, as R's ``BIC``: -2 loglik + n_params log(nobs)."""
        return float(-2.0 * self.loglik + self.n_params * np.log(self.nobs))

    @property
    def deviance(self) -> float:
        """-2 log-likelihood (the REML criterion when ``reml=True``)."""
        return -2.0 * self.loglik

    def predict(self, newdata: Any = None, *, include_random: bool = True) -> pl.Series:
        """Predictions: population level (``include_random=False``) or subject level.

        Groups not seen in the fit get the population-level prediction (as lme4's
        ``allow.new.levels=TRUE``).

        Examples
        --------
        >>> from cohort.longitudinal import lmm, example_data
        >>> m = lmm(example_data(), "y ~ time", groups="subject", random="~time")
        >>> m.predict(example_data().head(3), include_random=False).len()
        3
        """
        assert self._design is not None
        data = self._data if newdata is None else newdata
        pdf = new_frame(self._design, data, self._group_cols)
        try:
            X = self._design.fixed(pdf)
        except Exception as exc:  # noqa: BLE001
            raise ModelSpecError(f"predict: cannot build the fixed-effects design on newdata: {exc}") from None
        beta = self.summary["estimate"].to_numpy()
        pred = X @ beta
        if include_random and self._blups:
            for gcol, (levels, terms_spec, values) in self._blups.items():
                for col in gcol if isinstance(gcol, tuple) else (gcol,):
                    if col not in pdf.columns:
                        raise ModelSpecError(
                            f"predict: newdata has no column {col!r}; add it or use include_random=False"
                        )
                Z = terms_spec(pdf)
                index = {lev: i for i, lev in enumerate(levels)}
                key = pdf[gcol] if not isinstance(gcol, tuple) else pdf[list(gcol)].agg(":".join, axis=1)
                idx = np.array([index.get(v, -1) for v in key])
                known = idx >= 0
                pred[known] += np.sum(Z[known] * values[idx[known]], axis=1)
        return pl.Series("predicted", pred)

    def to_dict(self) -> dict:
        """JSON-serialisable plain data."""
        return {
            "model": "lmm",
            "formula": self.formula,
            "groups": self.groups,
            "random": self.random,
            "reml": self.reml,
            "engine": self.engine,
            "summary": self.summary.to_dicts(),
            "variance_components": self.variance_components.to_dicts(),
            "loglik": self.loglik,
            "aic": self.aic,
            "bic": self.bic,
            "nobs": self.nobs,
            "ngroups": self.ngroups,
            "converged": self.converged,
            "singular": self.singular,
            "warnings": list(self.warnings),
            "theta": list(self.theta),
            "theta_names": list(self.theta_names),
            "weights": self.weights,
            "sigma": self.sigma,
            "df_method": self.df_method,
            "vcov": self.vcov.tolist(),
        }

    def plot(self, **kwargs: Any):
        """Caterpillar plot of the BLUPs (see :func:`cohort.longitudinal.plots.caterpillar`)."""
        from cohort.longitudinal.plots import caterpillar

        return caterpillar(self, **kwargs)


def _parse_groups(groups: str | list[str] | tuple[str, ...]) -> list[str]:
    if isinstance(groups, str):
        parts = [g.strip() for g in groups.split("/")]
    else:
        parts = [str(g).strip() for g in groups]
    if not parts or any(not p for p in parts):
        raise ModelSpecError(f"lmm: groups={groups!r} is not usable; give a column name or 'site/participant'")
    return parts


def lmm(
    data: Any,
    formula: str,
    *,
    groups: str | list[str],
    random: str = "~1",
    reml: bool = True,
    covariance: str = "unstructured",
    engine: str = "auto",
    conf_level: float = 0.95,
    missing: str = "drop",
    weights: str | None = None,
) -> LMMResult:
    """Fit a linear mixed model by REML or ML, as ``lme4::lmer`` (+ lmerTest).

    Parameters
    ----------
    data
        Polars (or pandas) frame in long format, one row per visit.
    formula
        Fixed effects, e.g. ``"score ~ years * cum_dose + ns(years, df=3)"``. Category
        levels do not depend on row order (strings sorted as R's ``factor()`` in the C
        locale, Enum / pandas ordered Categorical in declared order, other Categoricals
        sorted as strings); ``C(x, reference="b")`` or ``treatment(x, reference="b")``
        picks the reference. ``offset()`` is refused (gee and cox take one).
    groups
        Grouping column (``"participant"``), or nested grouping outer/inner
        (``"site/participant"``: random intercepts for both levels).
    random
        Random-effects formula per group: ``"~1"`` intercepts, ``"~years"`` intercepts
        and slopes, ``"~0 + years"`` slopes only.
    reml
        REML (default, as lmer) or ML (needed to compare fixed effects; see :func:`compare`).
    covariance
        ``"unstructured"`` (R's ``(years | id)``) or ``"diagonal"`` (``(years || id)``).
    engine
        ``"auto"`` (the fast engine for one grouping factor, the nested engine for
        ``outer/inner``), ``"fast"`` or ``"statsmodels"`` (one grouping factor only).
    conf_level
        Level of the confidence intervals in ``summary``.
    missing
        Rows with a missing value (null, or NaN) in a column the model uses (response,
        fixed and random terms, grouping columns): ``"drop"`` (default, as lmer's
        ``na.action = na.omit``) leaves them out and states their number, per column, in
        ``warnings``; ``"raise"`` refuses them with a :class:`~cohort.errors.ModelSpecError`
        naming the columns and rows.
    weights
        Column of prior weights, as lmer's ``weights=``: the residual variance of a row is
        ``sigma^2 / w``. Weights must be > 0: zero, negative or infinite ones are refused
        naming the rows (lmer refuses negative weights; a zero weight in lmer does not drop
        the row, which still counts in ``nobs`` and the REML degrees of freedom). A missing
        weight is a missing value (see ``missing``).

    Returns
    -------
    LMMResult

    Examples
    --------
    >>> from cohort.longitudinal import lmm, example_data
    >>> m = lmm(example_data(), "y ~ time + x", groups="subject", random="~time")
    >>> m.summary["term"].to_list()
    ['(Intercept)', 'time', 'x']
    >>> m.engine, m.converged
    ('fast', True)
    """
    frame = as_polars(data)
    group_cols = _parse_groups(groups)
    if covariance not in ("unstructured", "diagonal"):
        raise ModelSpecError(f"lmm: covariance={covariance!r}; use 'unstructured' or 'diagonal'")
    if engine not in ("auto", "fast", "statsmodels"):
        raise ModelSpecError(f"lmm: engine={engine!r}; use 'auto', 'fast' or 'statsmodels'")
    if not 0 < conf_level < 1:
        raise ModelSpecError(f"lmm: conf_level={conf_level} must be between 0 and 1")
    y, X, Z, pdf, info, notes = build_design(frame, formula, random=random, group_cols=group_cols, model="lmm",
                                              missing=missing, weights=weights)
    assert Z is not None
    sw = None
    if info.weights is not None:
        # lmer's prior weights: scale each row by sqrt(w), a model with residual variance sigma^2
        sw = np.sqrt(info.weights)
        y, X, Z = y * sw, X * sw[:, None], Z * sw[:, None]
    result = _fit(y, X, Z, pdf, info, notes, frame, formula, group_cols, random, reml, covariance,
                  engine, conf_level, sw)
    if sw is None:
        return result
    # the likelihood of the original rows: the Jacobian of the scaling, + sum(log w) / 2 (as lme4)
    return replace(result, weights=weights, loglik=result.loglik + float(np.sum(np.log(info.weights))) / 2)


def _fit(y, X, Z, pdf, info, notes, frame, formula, group_cols, random, reml, covariance, engine, conf_level,
         sw) -> LMMResult:
    if len(group_cols) > 1:
        if engine != "auto":
            raise ModelSpecError(
                f"lmm: engine={engine!r} covers one grouping factor; use engine='auto' for nested groups"
            )
        return _fit_nested(y, X, info, notes, frame, formula, group_cols, random, reml, covariance, conf_level,
                           sw)
    if engine == "statsmodels":
        return _fit_statsmodels(y, X, Z, pdf, info, notes, frame, formula, group_cols, random, reml,
                                covariance, conf_level)
    return _fit_fast(y, X, Z, pdf, info, notes, frame, formula, group_cols[0], random, reml, covariance,
                     conf_level)


def _summary(names, est, se, dfs, conf_level) -> pl.DataFrame:
    stat = est / se
    dfs = np.asarray(dfs, dtype=float)
    finite = np.isfinite(dfs)
    p = np.where(finite, 2 * stats.t.sf(np.abs(stat), np.where(finite, dfs, 1.0)), 2 * stats.norm.sf(np.abs(stat)))
    crit = np.where(finite, stats.t.ppf(0.5 + conf_level / 2, np.where(finite, dfs, 1.0)),
                    stats.norm.ppf(0.5 + conf_level / 2))
    return pl.DataFrame(
        {
            "term": list(names),
            "estimate": est,
            "std_error": se,
            "statistic": stat,
            "df": dfs,
            "p_value": p,
            "conf_low": est - crit * se,
            "conf_high": est + crit * se,
        }
    )


def _varcorr(group: str, names: tuple[str, ...], cov: np.ndarray, sigma2: float, diagonal: bool) -> pl.DataFrame:
    rows: list[tuple] = []
    q = len(names)
    sd = np.sqrt(np.diag(cov))
    for j in range(q):
        # (x || g) is lme4's (1 | g) + (0 + x | g): separate terms, named by make.unique as
        # as.data.frame(VarCorr()) shows them ("g", "g.1", ...)
        name = f"{group}.{j}" if diagonal and j > 0 else group
        rows.append((name, names[j], None, float(cov[j, j]), float(sd[j])))
    if not diagonal:
        for j in range(q):
            for i in range(j + 1, q):
                denom = sd[i] * sd[j]
                corr = float(cov[i, j] / denom) if denom > 0 else float("nan")
                rows.append((group, names[j], names[i], float(cov[i, j]), corr))
    rows.append(("Residual", None, None, float(sigma2), float(np.sqrt(sigma2))))
    return pl.DataFrame(
        rows, schema={"group": pl.String, "var1": pl.String, "var2": pl.String, "vcov": pl.Float64, "sdcor": pl.Float64},
        orient="row",
    )


def _theta_names(group: str, names: tuple[str, ...], pos: list[tuple[int, int]]) -> tuple[str, ...]:
    """lme4's names of theta: ``group.term`` on the diagonal, ``group.row_term.col_term`` below."""
    return tuple(f"{group}.{names[i]}" if i == j else f"{group}.{names[i]}.{names[j]}" for i, j in pos)


def _lower_cholesky(a: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a positive semi-definite matrix (a zero pivot gives a zero column)."""
    q = a.shape[0]
    lam = np.zeros_like(a, dtype=float)
    for j in range(q):
        d = a[j, j] - lam[j, :j] @ lam[j, :j]
        if d <= 0:
            continue
        lam[j, j] = np.sqrt(d)
        lam[j + 1:, j] = (a[j + 1:, j] - lam[j + 1:, :j] @ lam[j, :j]) / lam[j, j]
    return lam


def _nested_ranef(model: NestedLMM, fit, outer: str, inner: str, outer_levels: list[str],
                  inner_keys: np.ndarray, info: DesignInfo) -> tuple[pl.DataFrame, dict]:
    """Conditional modes of both levels, as lme4's ``as.data.frame(ranef(fit, condVar=TRUE))``:
    the ``inner:outer`` term first (levels named ``inner:outer``, sorted), then ``outer``."""
    u_out, v_out, u_in, v_in = model.conditional_modes(fit.theta, fit.beta)
    s2 = fit.sigma**2
    labels = [f"{str(inner_keys[c]).removeprefix(outer_levels[o] + ':')}:{outer_levels[o]}"
              for o, c in model.cells]
    order = np.argsort(labels, kind="stable")
    inner_labels = [labels[i] for i in order]
    ranef = pl.DataFrame({
        "group": [f"{inner}:{outer}"] * len(order) + [outer] * len(outer_levels),
        "term": [INTERCEPT] * (len(order) + len(outer_levels)),
        "level": inner_labels + list(outer_levels),
        "estimate": np.r_[u_in[order], u_out],
        "cond_sd": np.sqrt(np.maximum(np.r_[v_in[order], v_out] * s2, 0.0)),
    })
    blups = {(inner, outer): (inner_labels, info.random, u_in[order][:, None]),
             outer: (list(outer_levels), info.random, u_out[:, None])}
    return ranef, blups


def _fit_fast(y, X, Z, pdf, info, notes, frame, formula, gcol, random, reml, covariance, conf_level) -> LMMResult:
    levels, codes = info.group_codes[gcol]
    G = len(levels)
    n, p = X.shape
    q = Z.shape[1]
    if G < 2:
        raise ModelSpecError(f"lmm: grouping column {gcol!r} has {G} level(s); a mixed model needs several groups")
    if q * G >= n and q > 1:
        notes.append(f"{q} random effects per group with {n} rows in {G} groups: the model may not be identifiable")
    diagonal = covariance == "diagonal" or q == 1
    model = FastLMM(y, X, Z, codes, G, reml=reml, diagonal=diagonal)
    fit = model.fit()
    theta = fit["theta"]
    check = model.check(theta)
    ev = model.evaluate(theta, keep=True)
    dof = model.dof()
    sigma2 = ev.r2 / dof
    sigma = float(np.sqrt(sigma2))
    beta = ev.beta + model.beta0
    vcov = sigma2 * ev.A_inv
    se = np.sqrt(np.diag(vcov))
    dfs, _, sat_notes = model.satterthwaite(theta, sigma)
    lam = model.user_lambda(theta)
    cov_re = sigma2 * lam @ lam.T
    theta_user = lam[model.rows, model.cols]
    diag_theta = theta_user[model.rows == model.cols]
    singular = bool(np.any(diag_theta < SINGULAR_TOL))
    warn: list[str] = list(notes)
    converged = True
    if singular:
        warn.append(
            "boundary (singular) fit: a random-effect variance is (near) zero or the random-effect "
            "correlations are +-1 (theta on its boundary, as lme4's isSingular); simplify the random part"
        )
    if not check["hessian_pd"] and not singular:
        converged = False
        warn.append("the Hessian of the deviance is not positive definite at the optimum: model not converged")
    if check["scaled_grad"] > 1e-6:
        converged = False
        warn.append(f"the optimiser stopped with a scaled gradient of {check['scaled_grad']:.2g} (> 1e-6): not converged")
    warn += sat_notes
    _warn_convergence(warn, ("boundary", "the Hessian", "the optimiser"))
    # random effects: b_g = E_g Z_g'(y_g - X_g beta); conditional variance sigma^2 E_g
    E = ev.E
    resid_z = model.Zy - np.einsum("apg,p->ag", model.ZX, ev.beta)
    b = np.einsum("abg,bg->ga", E, resid_z) / model.zscale
    cond_sd = np.sqrt(np.maximum(sigma2 * np.einsum("aag->ga", E), 0.0)) / model.zscale
    names = info.random_names
    level_str = [str(v) for v in levels]
    ranef = pl.DataFrame(
        {
            "group": [gcol] * (G * q),
            "term": [t for t in names for _ in range(G)],
            "level": level_str * q,
            "estimate": b.T.ravel(),
            "cond_sd": cond_sd.T.ravel(),
        }
    )
    k = p + model.ntheta + 1
    ll = -0.5 * ev.dev
    result = LMMResult(
        formula=formula,
        groups=gcol,
        random=random,
        reml=reml,
        engine="fast",
        summary=_summary(info.fixed_names, beta, se, dfs, conf_level),
        variance_components=_varcorr(gcol, names, cov_re, sigma2, diagonal),
        random_effects=ranef,
        loglik=float(ll),
        nobs=n,
        ngroups=G,
        n_params=k,
        converged=converged,
        singular=singular,
        warnings=tuple(warn),
        theta=tuple(float(t) for t in theta_user),
        sigma=sigma,
        df_method="Satterthwaite",
        vcov=vcov,
        theta_names=_theta_names(gcol, names, model.pos),
        fit_info={**fit, "theta": theta_user.tolist(), "theta_internal": theta.tolist(), "scaled_grad": check["scaled_grad"],
                  "hessian_pd": check["hessian_pd"]},
        _design=info,
        _blups={gcol: (level_str, info.random, b)},
        _group_cols=(gcol,),
        _data=frame,
        _options={"covariance": covariance, "conf_level": conf_level, "groups": gcol},
    )
    return result


def _fit_statsmodels(y, X, Z, pdf, info, notes, frame, formula, group_cols, random, reml, covariance,
                     conf_level) -> LMMResult:
    from statsmodels.regression.mixed_linear_model import MixedLM

    n, p = X.shape
    warn = list(notes)
    (outer,) = group_cols
    lev, cod = info.group_codes[outer]
    keys = np.asarray(lev, dtype=object)[cod]
    levels = np.unique(keys)
    q = Z.shape[1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = MixedLM(y, X, groups=keys, exog_re=Z, use_sqrt=True)
        if covariance == "diagonal" and q > 1:
            from statsmodels.regression.mixed_linear_model import MixedLMParams

            free = MixedLMParams.from_components(np.ones(p), np.eye(q))
            res = model.fit(reml=reml, free=free, method=["lbfgs", "bfgs"], gtol=1e-10, maxiter=2000)
        else:
            res = model.fit(reml=reml, method=["lbfgs", "bfgs"], gtol=1e-10, maxiter=2000)
    sm_warn = [str(w.message) for w in caught]
    converged = bool(getattr(res, "converged", True))
    beta = np.asarray(res.fe_params)
    vcov = np.asarray(res.cov_params())[:p, :p]
    se = np.sqrt(np.diag(vcov))
    sigma2 = float(res.scale)
    cov_re = np.asarray(res.cov_re)
    if covariance == "diagonal":
        cov_re = np.diag(np.diag(cov_re))
    vc_rows = _varcorr(outer, info.random_names, cov_re, sigma2, covariance == "diagonal" or q == 1)
    # lme4's theta: the lower triangle of the relative Cholesky factor, column by column
    pos = [(j, j) for j in range(q)] if covariance == "diagonal" else [(i, j) for j in range(q) for i in range(j, q)]
    lam = _lower_cholesky(cov_re / sigma2)
    theta = [float(lam[i, j]) for i, j in pos]
    singular = bool(np.any(np.sqrt(np.maximum(np.diag(cov_re), 0) / sigma2) < SINGULAR_TOL))
    if singular:
        warn.append("boundary (singular) fit: a random-effect variance is (near) zero; simplify the random part")
    if not converged:
        warn.append("statsmodels MixedLM did not converge")
    warn += [f"statsmodels: {m}" for m in sm_warn]
    _warn_convergence(warn, ("boundary", "statsmodels MixedLM"))
    # random effects (conditional means and SDs)
    re = res.random_effects
    recov = res.random_effects_cov
    level_str = [str(v) for v in levels]
    b = np.array([np.asarray(re[lev])[:q] for lev in levels])
    csd = np.array([np.sqrt(np.diag(np.asarray(recov[lev]))[:q]) for lev in levels])
    ranef = pl.DataFrame(
        {
            "group": [outer] * (len(levels) * q),
            "term": [t for t in info.random_names for _ in levels],
            "level": level_str * q,
            "estimate": b.T.ravel(),
            "cond_sd": csd.T.ravel(),
        }
    )
    return LMMResult(
        formula=formula,
        groups=outer,
        random=random,
        reml=reml,
        engine="statsmodels",
        summary=_summary(info.fixed_names, beta, se, np.full(p, np.inf), conf_level),
        variance_components=vc_rows,
        random_effects=ranef,
        loglik=float(res.llf),  # statsmodels' llf has lme4's constants
        nobs=n,
        ngroups=len(levels),
        n_params=p + len(pos) + 1,
        converged=converged,
        singular=singular,
        warnings=tuple(warn),
        theta=tuple(theta),
        sigma=float(np.sqrt(sigma2)),
        df_method="normal (statsmodels engine: Satterthwaite not available)",
        vcov=vcov,
        theta_names=_theta_names(outer, info.random_names, pos),
        fit_info={"statsmodels_method": str(getattr(res, "method", ""))},
        _design=info,
        _blups={outer: (level_str, info.random, b)},
        _group_cols=(outer,),
        _data=frame,
        _options={"covariance": covariance, "conf_level": conf_level, "groups": outer},
    )


def _warn_convergence(notes: list[str], prefixes: tuple[str, ...]) -> None:
    for w in notes:
        if w.startswith(prefixes):
            warnings.warn(f"lmm: {w}", ConvergenceWarning, stacklevel=5)  # the caller of lmm()


def _fit_nested(y, X, info, notes, frame, formula, group_cols, random, reml, covariance, conf_level,
                sw) -> LMMResult:
    """Two nested random intercepts by the exact profiled (RE)ML of :mod:`._nested` (lme4 + lmerTest)."""
    if len(group_cols) > 2:
        raise ModelSpecError("lmm: nested grouping supports two levels ('site/participant')")
    if info.random_names != (INTERCEPT,):
        raise ModelSpecError(
            "lmm: with nested groups only random intercepts are supported (random='~1'); "
            "fit random slopes with one grouping column"
        )
    n, p = X.shape
    outer, inner = group_cols
    keys = {}
    for g in group_cols:
        lev, cod = info.group_codes[g]
        keys[g] = np.asarray(lev, dtype=object)[cod]
    levels, outer_codes = np.unique(keys[outer], return_inverse=True)
    inner_keys, inner_codes = np.unique(keys[outer] + ":" + keys[inner], return_inverse=True)
    model = NestedLMM(y, X, outer_codes, inner_codes, reml=reml, z=sw)
    fit = model.fit()
    sigma2 = fit.sigma**2
    inner_term = f"{inner}:{outer}"
    var_in, var_out = (float((t * fit.sigma) ** 2) for t in fit.theta)
    vc_rows = _varcorr(outer, (INTERCEPT,), np.array([[var_out]]), sigma2, True)
    vc_rows = pl.concat([pl.DataFrame({"group": [inner_term], "var1": [INTERCEPT], "var2": [None],
                                       "vcov": [var_in], "sdcor": [np.sqrt(var_in)]}, schema=vc_rows.schema),
                         vc_rows])
    warn = list(notes)
    singular = bool(np.any(fit.theta < SINGULAR_TOL))
    if singular:
        warn.append("boundary (singular) fit: a random-effect variance is (near) zero; simplify the random part")
    _warn_convergence(warn, ("boundary",))
    level_str = [str(v) for v in levels]
    ranef, blups = _nested_ranef(model, fit, outer, inner, level_str, inner_keys, info)
    return LMMResult(
        formula=formula,
        groups="/".join(group_cols),
        random=random,
        reml=reml,
        engine="nested",
        summary=_summary(info.fixed_names, fit.beta, np.sqrt(np.diag(fit.vcov)), fit.df, conf_level),
        variance_components=vc_rows,
        random_effects=ranef,
        loglik=fit.loglik,
        nobs=n,
        ngroups={inner_term: len(blups[(inner, outer)][0]), outer: len(levels)},  # as lme4's ngrps
        n_params=p + 3,
        converged=True,
        singular=singular,
        warnings=tuple(warn),
        theta=tuple(float(t) for t in fit.theta),  # lme4's order: inner term first
        sigma=fit.sigma,
        df_method="Satterthwaite",
        vcov=fit.vcov,
        theta_names=(f"{inner_term}.{INTERCEPT}", f"{outer}.{INTERCEPT}"),
        fit_info={"theta": fit.theta.tolist(), "deviance": fit.deviance},
        _design=info,
        _blups=blups,
        _group_cols=tuple(group_cols),
        _data=frame,
        _options={"covariance": covariance, "conf_level": conf_level, "groups": "/".join(group_cols)},
    )
