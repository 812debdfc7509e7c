"""lmm(weights=) as lmer's prior weights, against lme4
(tests/reference/longitudinal/make_reference_weights.R): sleepstudy (REML, ML) and nested
Pastes with w = 1 + (row %% 3) / 2 (row numbered from 1); a missing weight leaves its row out
as na.omit; zero, negative and infinite weights are refused naming the column, count and rows
(lmer refuses negative ones and keeps zero-weight rows in nobs and the REML df).
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
W = json.loads((REF_DIR / "weights_reference.json").read_text())


def _weighted(name: str) -> pl.DataFrame:
    d = pl.read_csv(REF_DIR / f"{name}.csv")
    return d.with_columns(w=1 + (pl.int_range(1, d.height + 1) % 3) / 2)


def _sleep(**kw):
    return lg.lmm(kw.pop("data", None) if "data" in kw else _weighted("sleepstudy"), "Reaction ~ Days",
                  groups="Subject", random="~Days", weights="w", **kw)


CASES = {
    "sleep_reml": lambda: _sleep(),
    "sleep_ml": lambda: _sleep(reml=False),
    "pastes_reml": lambda: lg.lmm(_weighted("pastes"), "strength ~ 1", groups="batch/cask", weights="w"),
    # a missing weight is a missing value: its row is left out, as lmer's na.omit
    "sleep_na_weight": lambda: _sleep(data=_weighted("sleepstudy").with_columns(
        w=pl.when(pl.int_range(pl.len()) == 4).then(None).otherwise("w"))),
}


@pytest.mark.parametrize("key", list(CASES))
def test_weighted_fit_matches_lmer(key):
    r = W[key]
    m = CASES[key]()
    assert m.nobs == r["nobs"] and m.weights == "w"
    np.testing.assert_allclose(m.summary["estimate"].to_numpy(), r["estimate"], rtol=1e-9)
    np.testing.assert_allclose(m.summary["std_error"].to_numpy(), r["std_error"], rtol=1e-6)
    np.testing.assert_allclose(m.theta, r["theta"], rtol=1e-5, atol=1e-7)
    assert m.sigma == pytest.approx(r["sigma"], rel=1e-7)
    assert m.loglik == pytest.approx(r["loglik"], abs=1e-6)  # includes lme4's sum(log w) / 2
    np.testing.assert_allclose(m.random_effects["estimate"].to_numpy(), r["condval"], atol=1e-5)
    np.testing.assert_allclose(m.random_effects["cond_sd"].to_numpy(), r["condsd"], rtol=1e-6)
    np.testing.assert_allclose(m.predict(m._data.drop_nulls()).to_numpy(), r["fitted"], atol=1e-5)
    assert m.to_dict()["weights"] == "w"
    if key == "sleep_na_weight":
        assert any(w.startswith("1 row(s) with missing values") and "'w' at row 4 (1 row)" in w for w in m.warnings)


@pytest.mark.parametrize(("bad", "what"), [(0.0, "zero"), (-1.0, "negative"), (float("inf"), "infinite")])
def test_zero_negative_or_infinite_weights_are_refused_naming_column_count_and_rows(bad, what):
    # lmer: a negative weight is an error, a zero weight keeps the row (nobs 180, not 179)
    assert W["negative_weight_error"] == "all(weights >= 0) is not TRUE" and W["zero_weight_nobs"] == 180
    d = _weighted("sleepstudy").with_columns(
        w=pl.when(pl.int_range(pl.len()).is_in([4, 17])).then(bad).otherwise("w"))
    for fit in (lambda: _sleep(data=d), lambda: lg.lmm(d, "Reaction ~ Days", groups="Subject", weights="w",
                                                       engine="statsmodels")):
        with pytest.raises(ModelSpecError) as exc:
            fit()
        msg = str(exc.value)
        assert "\n" not in msg
        assert "weights column 'w' has 2 row(s) with a zero, negative or infinite weight (at rows 4, 17 (2 rows))" in msg
        assert "weights must be > 0" in msg


def test_missing_weight_with_missing_raise_and_wrong_weight_columns_are_refused():
    d = _weighted("sleepstudy").with_columns(w=pl.when(pl.int_range(pl.len()) == 4).then(None).otherwise("w"))
    with pytest.raises(ModelSpecError, match="1 row\\(s\\) have missing values .* 'w' at row 4"):
        _sleep(data=d, missing="raise")
    with pytest.raises(ModelSpecError, match="weights column 'wt' is not in the data"):
        lg.lmm(d, "Reaction ~ Days", groups="Subject", weights="wt")
    with pytest.raises(ModelSpecError, match="weights column 'label' is String; give numbers > 0"):
        lg.lmm(d.with_columns(label=pl.lit("a")), "Reaction ~ Days", groups="Subject", weights="label")


def test_compare_refits_weighted_models_with_their_weights():
    d = _weighted("sleepstudy")
    m0 = lg.lmm(d, "Reaction ~ 1", groups="Subject", random="~Days", weights="w")
    m1 = lg.lmm(d, "Reaction ~ Days", groups="Subject", random="~Days", weights="w")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = lg.compare(m0, m1)
    ml0 = lg.lmm(d, "Reaction ~ 1", groups="Subject", random="~Days", weights="w", reml=False)
    ml1 = lg.lmm(d, "Reaction ~ Days", groups="Subject", random="~Days", weights="w", reml=False)
    assert ml1.loglik == pytest.approx(W["sleep_ml"]["loglik"], abs=1e-6)
    assert c.refitted_ml and c.chisq == pytest.approx(2 * (ml1.loglik - ml0.loglik), rel=1e-9)
