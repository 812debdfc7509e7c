"""Likelihood-ratio tests between nested mixed models, as lme4's ``anova(m0, m1)``."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import polars as pl
from scipy import stats

from cohort.errors import ModelSpecError
from cohort.longitudinal.lmm import LMMResult, lmm

__all__ = ["compare", "CompareResult"]


@dataclass(frozen=True, eq=False)
class CompareResult:
    """Models side by side (npar, AIC, BIC, logLik, deviance) and the LRT."""

    summary: pl.DataFrame
    chisq: float
    df: int
    p_value: float
    refitted_ml: bool
    warnings: tuple[str, ...]
    converged: bool

    def to_dict(self) -> dict:
        """JSON-serialisable plain data."""
        return {
            "summary": self.summary.to_dicts(),
            "chisq": self.chisq,
            "df": self.df,
            "p_value": self.p_value,
            "refitted_ml": self.refitted_ml,
            "warnings": list(self.warnings),
        }


def _refit_ml(m: LMMResult) -> LMMResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lmm(
            m._data,
            m.formula,
            groups=m._options["groups"],
            random=m.random,
            reml=False,
            covariance=m._options["covariance"],
            engine="statsmodels" if m.engine == "statsmodels" else "auto",
            weights=m.weights,
        )


def compare(m0: LMMResult, m1: LMMResult, *, refit: bool = True) -> CompareResult:
    """Likelihood-ratio test of a smaller model ``m0`` against a larger ``m1``.

    As lme4's ``anova()``, REML fits are refitted by ML first (``refit=True``), since REML
    likelihoods of models with different fixed effects are not comparable; the result says so.
    Testing a variance on its boundary (e.g. dropping a random slope) makes the chi-square
    p-value conservative, as in lme4.

    Examples
    --------
    >>> from cohort.longitudinal import lmm, compare, example_data
    >>> d = example_data()
    >>> m0 = lmm(d, "y ~ time", groups="subject", random="~time", reml=False)
    >>> m1 = lmm(d, "y ~ time + x", groups="subject", random="~time", reml=False)
    >>> compare(m0, m1).df
    1
    """
    if not isinstance(m0, LMMResult) or not isinstance(m1, LMMResult):
        raise ModelSpecError("compare: both models must be results of lmm()")
    if m0.nobs != m1.nobs:
        raise ModelSpecError(
            f"compare: the models use different rows ({m0.nobs} vs {m1.nobs} observations); "
            "fit both on the same complete cases"
        )
    notes: list[str] = []
    refitted = False
    if m0.reml or m1.reml:
        if not refit:
            if m0.formula != m1.formula:
                raise ModelSpecError(
                    "compare: REML fits with different fixed effects are not comparable; use refit=True"
                )
        else:
            m0, m1 = (_refit_ml(m) if m.reml else m for m in (m0, m1))
            refitted = True
            notes.append("refitting model(s) with ML (instead of REML), as lme4's anova()")
    if m0.n_params > m1.n_params:
        m0, m1 = m1, m0
    df = m1.n_params - m0.n_params
    if df <= 0:
        raise ModelSpecError("compare: the models have the same number of parameters; they are not nested")
    chisq = max(0.0, 2.0 * (m1.loglik - m0.loglik))
    if m1.loglik < m0.loglik - 1e-6:
        notes.append("the larger model has a lower likelihood: are the models nested?")
    p = float(stats.chi2.sf(chisq, df))
    summary = pl.DataFrame(
        {
            "model": ["m0", "m1"],
            "formula": [m0.formula, m1.formula],
            "random": [m0.random, m1.random],
            "npar": [m0.n_params, m1.n_params],
            "aic": [m0.aic, m1.aic],
            "bic": [m0.bic, m1.bic],
            "loglik": [m0.loglik, m1.loglik],
            "deviance": [-2 * m0.loglik, -2 * m1.loglik],
            "chisq": [None, chisq],
            "df": [None, df],
            "p_value": [None, p],
        }
    )
    return CompareResult(summary, chisq, df, p, refitted, tuple(notes), m0.converged and m1.converged)


_ = Any
