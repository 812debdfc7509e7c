"""Collinear or constant columns: NaN coefficients with a warning, the other terms as R's coxph
(singular.ok = TRUE, NA coefficients) in tests/reference/survival/singular.json."""

from __future__ import annotations

import json
import warnings

import numpy as np
import polars as pl
import pytest
from survival_ref import arr, load_data, load_ref

from cohort import survival as sv
from cohort.errors import ConvergenceWarning, ModelSpecError

REF = load_ref("singular")
ROSSI = load_data("rossi").with_columns(age2=pl.col("age"), lc=pl.col("fin") + 2 * pl.col("prio"), one=pl.lit(1))
ND = pl.DataFrame({"fin": [0, 1], "age": [20, 35], "age2": [20, 35], "prio": [1, 4], "lc": [2, 9], "one": [1, 1],
                   "wexp": [0, 1]})
CASES = {
    "duplicate": ("fin + age + age2 + prio", {}),
    "lincomb": ("fin + age + prio + lc", {}),
    "constant": ("fin + one + age + prio", {}),
    "strata_const": ("fin + age + wexp", {"strata": "wexp"}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_aliased_coefficients_match_r(case: str) -> None:
    formula, kw = CASES[case]
    with pytest.warns(ConvergenceWarning, match="not estimable"):
        fit = sv.cox(ROSSI, formula, time="week", event="arrest", **kw)
    ref = REF[case]
    est = arr(ref["estimate"])
    na = np.isnan(est)
    assert list(fit.names) == ref["term"]
    assert fit.aliased == tuple(np.array(ref["term"])[na])
    assert fit.converged and len(fit.warnings) == 1 and "singular" in fit.warnings[0]
    s = fit.summary
    assert np.isnan(s["estimate"].to_numpy()[na]).all() and np.isnan(s["std_error"].to_numpy()[na]).all()
    assert np.isnan(s["hazard_ratio"].to_numpy()[na]).all() and np.isnan(s["p_value"].to_numpy()[na]).all()
    np.testing.assert_allclose(fit.coef[~na], est[~na], rtol=1e-7)
    np.testing.assert_allclose(s["std_error"].to_numpy()[~na], np.array(ref["std_error"])[~na], rtol=1e-7)
    assert fit.loglik == pytest.approx(ref["loglik"][1], rel=1e-10)
    assert fit.loglik_null == pytest.approx(ref["loglik"][0], rel=1e-10)
    tests = dict(zip(fit.tests["test"], fit.tests["statistic"], strict=True))
    assert tests["score"] == pytest.approx(ref["score_test"], rel=1e-8)
    assert tests["wald"] == pytest.approx(ref["wald_test"], rel=1e-6)
    assert fit.tests["df"][0] == int((~na).sum())
    assert fit.concordance == pytest.approx(ref["concordance"], rel=1e-12)
    z = fit.check_proportional_hazards()
    assert z["term"].to_list() == ref["zph"]["term"]
    np.testing.assert_allclose(z["chisq"].to_numpy(), ref["zph"]["chisq"], rtol=1e-6)
    np.testing.assert_allclose(z["df"].to_numpy(), ref["zph"]["df"])
    # predictions use the aliased coefficients as 0, as R
    lp = fit.predict(ND, type="lp", reference="sample" if "strata" not in kw else "strata", se_fit=True)
    np.testing.assert_allclose(lp["prediction"].to_numpy(), ref["lp"], rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(lp["std_error"].to_numpy(), ref["lp_se"], rtol=1e-7)
    if "strata" not in kw:
        curves = fit.predict_survival(ND)
        for i in range(ND.height):
            sub = curves.filter(pl.col("row") == i)
            np.testing.assert_allclose(sub["survival"].to_numpy(), ref["surv"][i], rtol=1e-7)
            np.testing.assert_allclose(sub["std_error_cumhaz"].to_numpy(), ref["std_err"][i], rtol=1e-6)
    d = fit.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["aliased"] == list(fit.aliased)
    assert fit.score_residuals().shape == (ROSSI.height, len(ref["term"]))
    assert fit.baseline_hazard().height > 0
    import matplotlib

    matplotlib.use("Agg")
    fit.plot()


def test_nothing_estimable_is_an_error() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ModelSpecError, match="nothing to estimate"):
            sv.cox(ROSSI, "one", time="week", event="arrest")
