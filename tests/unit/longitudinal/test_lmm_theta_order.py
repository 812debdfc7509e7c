"""``theta`` in lme4's order and with its names (getME(fit, "theta")), against lme4
(tests/reference/longitudinal/make_reference_theta.R): nested random intercepts on lme4's
Pastes (cask variance > batch variance) and on nested_sites.csv, simulated by that script
(site variance > subject variance, subject labels repeated across sites, NA in y and x);
random intercepts and slopes on sleepstudy, unstructured and diagonal, on both engines.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cohort import longitudinal as lg
from cohort.errors import ModelSpecError

REF_DIR = Path(__file__).resolve().parents[2] / "reference" / "longitudinal"

THETA = json.loads((REF_DIR / "theta_reference.json").read_text())
NESTED = {
    "pastes_reml": ("pastes", "strength ~ 1", "batch/cask", True),
    "pastes_ml": ("pastes", "strength ~ 1", "batch/cask", False),
    "sites_reml": ("nested_sites", "y ~ x", "site/subject", True),
    "sites_ml": ("nested_sites", "y ~ x", "site/subject", False),
}


def _fit(data, formula, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lg.lmm(pl.read_csv(REF_DIR / f"{data}.csv"), formula, **kw)


@pytest.mark.parametrize("key", list(NESTED))
def test_nested_theta_variance_components_and_ngroups_follow_lme4(key):
    data, formula, groups, reml = NESTED[key]
    r = THETA[key]
    m = _fit(data, formula, groups=groups, reml=reml)
    assert m.theta_names == tuple(r["theta"]["names"])  # inner term first: "cask:batch.(Intercept)"
    np.testing.assert_allclose(m.theta, r["theta"]["values"], rtol=1e-6)
    assert list(m.ngroups) == r["ngrps"]["names"]
    assert list(m.ngroups.values()) == r["ngrps"]["values"]
    vc = m.variance_components
    assert vc["group"].to_list() == r["varcorr"]["group"]
    assert vc["var1"].to_list() == r["varcorr"]["var1"]
    np.testing.assert_allclose(vc["vcov"].to_numpy(), r["varcorr"]["vcov"], rtol=1e-6)
    np.testing.assert_allclose(vc["sdcor"].to_numpy(), r["varcorr"]["sdcor"], rtol=1e-6)
    np.testing.assert_allclose(m.summary["estimate"].to_numpy(), r["fixef"]["values"], rtol=1e-7)
    assert m.sigma == pytest.approx(r["sigma"], rel=1e-6)
    assert m.loglik == pytest.approx(r["loglik"], abs=1e-7)
    assert m.nobs == r["nobs"]
    d = m.to_dict()
    assert d["theta_names"] == r["theta"]["names"]
    np.testing.assert_allclose(d["theta"], r["theta"]["values"], rtol=1e-6)


@pytest.mark.parametrize(("key", "covariance", "engine", "rtol"), [
    ("sleep_unstructured", "unstructured", "fast", 1e-6),
    ("sleep_diagonal", "diagonal", "fast", 1e-6),
    # statsmodels' optimiser stops earlier than lme4's tightened one
    ("sleep_unstructured", "unstructured", "statsmodels", 1e-4),
    ("sleep_diagonal", "diagonal", "statsmodels", 1e-4),
])
def test_theta_is_lme4s_relative_cholesky_factor_with_its_names(key, covariance, engine, rtol):
    r = THETA[key]
    m = _fit("sleepstudy", "Reaction ~ Days", groups="Subject", random="~Days", covariance=covariance,
             engine=engine)
    assert m.theta_names == tuple(r["theta"]["names"])  # "Subject.Days.(Intercept)" below the diagonal
    np.testing.assert_allclose(m.theta, r["theta"]["values"], rtol=rtol, atol=rtol * 1e-2)
    assert m.variance_components["group"].to_list() == r["varcorr"]["group"]


@pytest.mark.parametrize("key", list(NESTED))
def test_nested_random_effects_of_both_levels_and_predictions_follow_lme4(key):
    data, formula, groups, reml = NESTED[key]
    r = THETA[key]
    m = _fit(data, formula, groups=groups, reml=reml)
    re = m.random_effects
    # both levels, the inner:outer term first, levels named inner:outer, as ranef()
    assert re["group"].to_list() == r["ranef"]["group"]
    assert re["level"].to_list() == r["ranef"]["level"]
    assert re["term"].to_list() == r["ranef"]["term"]
    np.testing.assert_allclose(re["estimate"].to_numpy(), r["ranef"]["condval"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(re["cond_sd"].to_numpy(), r["ranef"]["condsd"], rtol=1e-6)
    # fitted values include both levels (lme4's fitted), on the complete rows
    d = pl.read_csv(REF_DIR / f"{data}.csv").drop_nulls()
    np.testing.assert_allclose(m.predict(d).to_numpy(), r["fitted"], rtol=1e-7)
    # a new inner level within a known outer level gets the outer effect only (allow.new.levels)
    outer, inner = groups.split("/")
    new = d.head(1).with_columns(pl.lit(-99).cast(d.schema[inner]).alias(inner)
                                 if d.schema[inner].is_numeric() else pl.lit("new").alias(inner))
    u_outer = re.filter((pl.col("group") == outer) & (pl.col("level") == str(d[outer][0])))["estimate"][0]
    assert m.predict(new)[0] == pytest.approx(m.predict(new, include_random=False)[0] + u_outer, rel=1e-12)


def test_caterpillar_of_nested_model_draws_one_grouping_term():
    m = _fit("pastes", "strength ~ 1", groups="batch/cask")
    fig = m.plot()
    assert len(fig.axes[0].get_yticklabels()) == 30  # cask:batch only, not the 40 of both levels
    assert "cask:batch" in fig.axes[0].get_title()
    fig = m.plot(group="batch")
    assert len(fig.axes[0].get_yticklabels()) == 10
    with pytest.raises(ModelSpecError, match="choose one of"):
        m.plot(group="cask")
