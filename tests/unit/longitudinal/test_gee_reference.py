"""gee against geepack::geeglm (tests/reference/longitudinal/make_reference_gee.R).

Every case of gee_reference.json (ohio binomial, dietox gaussian, epil poisson; balanced and
with missed visits; independence, exchangeable, AR-1, unstructured; clusters by position or by
``waves``; geepack's default stopping rule and a tight one) is refitted here with the same
specification. Where geepack converges, estimates, robust and naive SEs, correlation parameters
and scale agree to 1e-8 (relative); where geepack stops at its iteration limit (unstructured
on dietox, 12 waves) we must report non-convergence too.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cohort import longitudinal as lg
from cohort.errors import ConvergenceWarning, ModelSpecError

REF_DIR = Path(__file__).resolve().parents[2] / "reference" / "longitudinal"
GEE_REF = json.loads((REF_DIR / "gee_reference.json").read_text())["cases"]
RTOL = 1e-8


def _fit(case: dict, data=None, waves: str | None = None) -> lg.GEEResult:
    frame = pl.read_csv(REF_DIR / f"{case['data']}.csv") if data is None else data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return lg.gee(frame, case["formula"], groups=case["id"], family=case["family"],
                      correlation=case["corstr"], waves=waves or case["waves"], tol=case["tol"],
                      maxiter=case["maxiter"])


def _corr_vector(g: lg.GEEResult) -> np.ndarray:
    cp = g.correlation_params
    if cp is None:
        return np.zeros(0)
    if isinstance(cp, np.ndarray):  # geepack lists the upper triangle row by row
        return cp[np.triu_indices_from(cp, 1)]
    return np.array([cp])


def _assert_matches(g: lg.GEEResult, case: dict) -> None:
    s = g.summary
    assert s.height == len(case["term"]) and s["term"][0] == "(Intercept)"
    for col in ("estimate", "std_error", "naive_std_error"):
        np.testing.assert_allclose(s[col].to_numpy(), np.asarray(case[col], dtype=float), rtol=RTOL, err_msg=col)
    np.testing.assert_allclose(s["statistic"].to_numpy() ** 2, case["wald"], rtol=RTOL)
    np.testing.assert_allclose(s["p_value"].to_numpy(), case["p_value"], rtol=1e-6, atol=1e-14)
    np.testing.assert_allclose(_corr_vector(g), np.ravel(np.asarray(case["alpha"], dtype=float)),
                               rtol=RTOL, atol=1e-12)
    assert g.scale == pytest.approx(case["scale"], rel=RTOL)


@pytest.mark.parametrize("name", sorted(GEE_REF))
def test_gee_matches_geepack(name):
    case = GEE_REF[name]
    g = _fit(case)
    assert g.nobs == case["nobs"]
    assert g.converged == (case["error"] == 0)
    if not g.converged:
        assert g.iterations == case["maxiter"]
        assert any("did not converge" in w for w in g.warnings)
        return  # geepack's last iterate of a diverging iteration is not a reference
    _assert_matches(g, case)
    json.dumps(g.to_dict())


@pytest.mark.parametrize("name", ["ohio_mis_ar1_waves", "ohio_mis_unstructured_waves", "epil_mis_ar1_waves"])
def test_gee_waves_do_not_depend_on_row_order(name):
    case = GEE_REF[name]
    frame = pl.read_csv(REF_DIR / f"{case['data']}.csv")
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=3)
    _assert_matches(_fit(case, shuffled), case)
    # pandas input, waves as strings (sorting as the numbers do)
    visit = (pl.col(case["waves"]) + 10).cast(pl.String).str.zfill(3).alias("visit")
    _assert_matches(_fit(case, shuffled.with_columns(visit).to_pandas(), waves="visit"), case)


def test_gee_default_waves_are_positions():
    case = GEE_REF["epil_ar1"]
    frame = pl.read_csv(REF_DIR / "epil.csv")  # balanced: period is the position
    g = lg.gee(frame, case["formula"], groups="subject", family="poisson", correlation="ar1", waves="period")
    _assert_matches(g, case)
    u = lg.gee(frame, case["formula"], groups="subject", family="poisson", correlation="unstructured")
    assert u.correlation_params.shape == (4, 4) and u.wave_levels == (1, 2, 3, 4)


def test_gee_nonconvergence_warns():
    case = GEE_REF["dietox_unstructured"]
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        g = lg.gee(pl.read_csv(REF_DIR / "dietox.csv"), case["formula"], groups="Pig", correlation="unstructured")
    assert not g.converged and g.iterations == 25


def test_gee_missing_wave_rows_dropped_and_unobserved_pairs_reported():
    frame = pl.read_csv(REF_DIR / "epil.csv")
    # period 4 only in clusters without period 1: pair (1, 4) is never observed
    frame = frame.filter(~((pl.col("period") == 1) & (pl.col("subject") <= 30)))
    frame = frame.filter(~((pl.col("period") == 4) & (pl.col("subject") > 30)))
    frame = frame.with_columns(pl.when(pl.int_range(pl.len()) == 5).then(None).otherwise(pl.col("period"))
                               .alias("period"))
    g = lg.gee(frame, "y ~ lbase + trt", groups="subject", family="poisson", correlation="unstructured",
               waves="period")
    assert g.nobs == frame.height - 1
    assert any("row(s) with missing values left out" in w for w in g.warnings)
    assert any("no cluster has both waves" in w and "1-4" in w for w in g.warnings)
    assert g.correlation_params[0, 3] == 0.0


def test_gee_rejects_bad_input(dataset):
    with pytest.raises(ModelSpecError, match="family"):
        lg.gee(dataset("ohio"), "resp ~ age", groups="id", family="gamma")
    with pytest.raises(ModelSpecError, match="0/1"):
        lg.gee(dataset("dietox"), "Weight ~ Time", groups="Pig", family="binomial")
    with pytest.raises(ModelSpecError, match="waves column"):
        lg.gee(dataset("ohio"), "resp ~ age", groups="id", waves="visit")
    dup = pl.concat([dataset("ohio").head(3), dataset("ohio").head(1)])
    with pytest.raises(ModelSpecError, match=r"same wave .*rows \[0, 3\]"):
        lg.gee(dup, "resp ~ age", groups="id", waves="age", correlation="ar1")
