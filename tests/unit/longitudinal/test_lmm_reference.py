"""lmm against lme4 + lmerTest (tests/reference/longitudinal/make_reference.R)."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest

from cohort import longitudinal as lg
from cohort.errors import ConvergenceWarning, ModelSpecError

CASES = {
    # key in reference.json: (dataset, formula, groups, random, reml, covariance)
    "sleep_reml": ("sleepstudy", "Reaction ~ Days", "Subject", "~Days", True, "unstructured"),
    "sleep_ml": ("sleepstudy", "Reaction ~ Days", "Subject", "~Days", False, "unstructured"),
    "sleep_diag": ("sleepstudy", "Reaction ~ Days", "Subject", "~Days", True, "diagonal"),
    "sleep_int": ("sleepstudy", "Reaction ~ Days", "Subject", "~1", True, "unstructured"),
    "sleep_missing": ("sleepstudy_missing", "Reaction ~ Days", "Subject", "~Days", True, "unstructured"),
    "sleep_ns": ("sleepstudy", "Reaction ~ ns(Days, df=3)", "Subject", "~Days", True, "unstructured"),
    "orth_reml": ("orthodont", "distance ~ age * Sex", "Subject", "~age", True, "unstructured"),
    "orth_ml": ("orthodont", "distance ~ age + Sex", "Subject", "~age", False, "unstructured"),
}


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


@pytest.fixture(scope="module")
def fits(dataset):
    out = {}
    for key, (data, formula, groups, random, reml, cov) in CASES.items():
        out[key] = lg.lmm(dataset(data), formula, groups=groups, random=random, reml=reml, covariance=cov)
    return out


@pytest.mark.parametrize("key", list(CASES))
def test_fixed_effects_match_lme4(fits, ref, key):
    m, r = fits[key], ref[key]
    assert m.engine == "fast" and m.converged and not m.singular
    s = m.summary
    assert s["term"][0] == "(Intercept)"
    assert rel(s["estimate"], r["fixef"]["estimate"]) < 1e-6
    assert rel(s["std_error"], r["fixef"]["std_error"]) < 1e-5
    assert rel(s["statistic"], r["fixef"]["statistic"]) < 1e-5
    rv = np.array(r["vcov"])
    assert np.max(np.abs(m.vcov - rv)) < 1e-5 * np.max(np.abs(rv))


@pytest.mark.parametrize("key", list(CASES))
def test_satterthwaite_df_match_lmertest(fits, ref, key):
    m, r = fits[key], ref[key]
    # lmerTest differentiates numerically (numDeriv): agreement to about 1e-5
    assert rel(m.summary["df"], r["fixef"]["df"]) < 1e-4
    assert rel(m.summary["p_value"], r["fixef"]["p_value"]) < 1e-4
    assert rel(m.summary["conf_low"], r["fixef"]["conf_low"]) < 1e-5
    assert rel(m.summary["conf_high"], r["fixef"]["conf_high"]) < 1e-5


@pytest.mark.parametrize("key", list(CASES))
def test_variance_components_match_varcorr(fits, ref, key):
    m, r = fits[key], ref[key]
    vc = m.variance_components
    rv = r["varcorr"]
    assert vc.columns == ["group", "var1", "var2", "vcov", "sdcor"]
    assert vc["var1"].to_list() == rv["var1"]
    assert vc["var2"].to_list() == rv["var2"]
    assert vc["group"][-1] == "Residual"
    assert rel(vc["vcov"], rv["vcov"]) < 1e-4
    assert rel(vc["sdcor"], rv["sdcor"]) < 1e-4
    assert rel(m.theta, r["theta"]) < 1e-4
    assert rel([m.sigma], [r["sigma"]]) < 1e-6


@pytest.mark.parametrize("key", list(CASES))
def test_loglik_aic_bic_match(fits, ref, key):
    m, r = fits[key], ref[key]
    assert abs(m.loglik - r["loglik"]) < 1e-6
    assert abs(m.aic - r["aic"]) < 1e-6
    assert abs(m.bic - r["bic"]) < 1e-6
    assert m.nobs == r["nobs"] and m.n_params == r["loglik_df"]


@pytest.mark.parametrize("key", list(CASES))
def test_random_effects_and_predictions_match(fits, ref, key):
    m, r = fits[key], ref[key]
    re = m.random_effects.sort(["term", "level"], maintain_order=True)
    rr = pl.DataFrame({k: r["ranef"][k] for k in ("term", "level", "condval", "condsd")})
    joined = re.join(rr, on=["term", "level"], how="inner")
    assert joined.height == re.height == rr.height
    scale = float(np.max(np.abs(rr["condval"].to_numpy())))
    diff = (joined["estimate"] - joined["condval"]).abs().max()
    assert diff < 1e-4 * scale
    assert rel(joined["cond_sd"], joined["condsd"]) < 1e-4
    assert rel(m.predict(), r["fitted"]) < 1e-6
    assert rel(m.predict(include_random=False), r["fitted_fixed"]) < 1e-6


def test_singular_fit_is_flagged_as_lme4(ref, dataset):
    r = ref["dye2"]
    with pytest.warns(ConvergenceWarning, match="singular"):
        m = lg.lmm(dataset("dyestuff2"), "Yield ~ 1", groups="Batch")
    assert m.singular and r["singular"]
    assert m.theta[0] == 0.0
    assert any("singular" in w for w in m.warnings)
    assert abs(m.loglik - r["loglik"]) < 1e-6
    assert rel(m.variance_components["vcov"][-1:], r["varcorr"]["vcov"][-1:]) < 1e-6
    assert rel(m.summary["estimate"], r["fixef"]["estimate"]) < 1e-9


def test_nested_groups_use_nested_engine(ref, dataset):
    r = ref["pastes"]
    m = lg.lmm(dataset("pastes"), "strength ~ 1", groups="batch/cask")
    assert m.engine == "nested"
    assert not m.warnings  # no statsmodels fit behind it, so none of its warnings
    vc = m.variance_components
    assert vc["group"].to_list() == r["varcorr"]["group"]
    assert rel(vc["vcov"], r["varcorr"]["vcov"]) < 1e-6
    assert rel(m.summary["estimate"], r["fixef"]["estimate"]) < 1e-6
    assert abs(m.loglik - r["loglik"]) < 1e-5
    assert m.ngroups == {"batch": 10, "cask:batch": 30}
    for engine in ("fast", "statsmodels"):
        with pytest.raises(ModelSpecError, match=f"engine='{engine}' covers one grouping factor; use engine='auto'"):
            lg.lmm(dataset("pastes"), "strength ~ 1", groups="batch/cask", engine=engine)


def test_fast_and_general_engines_agree(dataset):
    d = dataset("sleepstudy")
    fast = lg.lmm(d, "Reaction ~ Days", groups="Subject", random="~Days", reml=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        slow = lg.lmm(d, "Reaction ~ Days", groups="Subject", random="~Days", reml=False, engine="statsmodels")
    assert fast.engine == "fast" and slow.engine == "statsmodels"
    assert rel(fast.summary["estimate"], slow.summary["estimate"]) < 1e-7
    assert rel(fast.variance_components["vcov"], slow.variance_components["vcov"]) < 1e-4
    assert abs(fast.loglik - slow.loglik) < 1e-6
    # our optimum is at least as good as statsmodels'
    assert fast.loglik >= slow.loglik - 1e-9
