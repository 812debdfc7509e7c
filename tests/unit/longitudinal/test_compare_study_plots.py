"""compare() vs lme4's anova(); study helpers; plots; simulation recovery."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from cohort import longitudinal as lg
from cohort.errors import ModelSpecError


def _check_anova(res, r):
    assert res.df == r["df"]
    assert abs(res.chisq - r["chisq"]) < 1e-6
    assert abs(res.p_value - r["p_value"]) < 1e-6 * max(r["p_value"], 1e-12) + 1e-12
    assert np.allclose(res.summary["loglik"].to_numpy(), r["loglik"], rtol=0, atol=1e-6)
    assert np.allclose(res.summary["aic"].to_numpy(), r["aic"], rtol=0, atol=1e-6)
    assert res.summary["npar"].to_list() == r["npar"]


def test_compare_refits_with_ml_as_lme4(ref, dataset):
    d = dataset("sleepstudy")
    m0 = lg.lmm(d, "Reaction ~ Days", groups="Subject", random="~1")
    m1 = lg.lmm(d, "Reaction ~ Days", groups="Subject", random="~Days")
    res = lg.compare(m0, m1)
    assert res.refitted_ml and any("ML" in w for w in res.warnings)
    _check_anova(res, ref["anova_sleep"])
    json.dumps(res.to_dict())


def test_compare_fixed_effects_ml(ref, dataset):
    d = dataset("sleepstudy")
    m0 = lg.lmm(d, "Reaction ~ 1", groups="Subject", random="~Days", reml=False)
    m1 = lg.lmm(d, "Reaction ~ Days", groups="Subject", random="~Days", reml=False)
    res = lg.compare(m1, m0)  # order does not matter
    assert not res.refitted_ml
    _check_anova(res, ref["anova_sleep_fixed"])


def test_simulated_truth_is_recovered():
    truth = lg.EXAMPLE_TRUTH
    d = lg.example_data(300, 6, seed=11)
    m = lg.lmm(d, "y ~ time + x", groups="subject", random="~time")
    for term in ("(Intercept)", "time", "x"):
        row = m.summary.filter(pl.col("term") == term)
        assert row["conf_low"][0] <= truth[term] <= row["conf_high"][0]
    vc = m.variance_components
    assert abs(vc["sdcor"][0] / truth["sd_intercept"] - 1) < 0.15
    assert abs(vc["sdcor"][-1] / truth["sigma"] - 1) < 0.05


@pytest.mark.slow
def test_confidence_intervals_cover_at_nominal_rate():
    truth = lg.EXAMPLE_TRUTH
    hits = {"time": 0, "x": 0}
    reps = 200
    for seed in range(reps):
        m = lg.lmm(lg.example_data(40, 5, seed=1000 + seed), "y ~ time + x", groups="subject", random="~time")
        for term in hits:
            row = m.summary.filter(pl.col("term") == term)
            hits[term] += int(row["conf_low"][0] <= truth[term] <= row["conf_high"][0])
    for term, h in hits.items():
        assert 0.91 <= h / reps <= 0.985, (term, h / reps)


def test_missing_values_are_reported_not_silently_dropped():
    d = lg.example_data(30, 5).with_columns(
        pl.when(pl.int_range(pl.len()) % 7 == 3).then(None).otherwise(pl.col("y")).alias("y")
    )
    m = lg.lmm(d, "y ~ time", groups="subject", random="~time")
    assert m.nobs == d.height - d["y"].null_count()
    assert any("missing" in w for w in m.warnings)


def test_errors_say_what_and_how():
    d = lg.example_data(10, 4)
    with pytest.raises(ModelSpecError, match="not in the data"):
        lg.lmm(d, "y ~ time", groups="nope")
    with pytest.raises(ModelSpecError, match="rank deficient"):
        lg.lmm(d.with_columns((pl.col("time") * 2).alias("t2")), "y ~ time + t2", groups="subject")
    with pytest.raises(ModelSpecError, match="unstructured"):
        lg.lmm(d, "y ~ time", groups="subject", covariance="toeplitz")


def test_predict_new_levels_fall_back_to_population(dataset):
    d = dataset("sleepstudy")
    m = lg.lmm(d, "Reaction ~ Days", groups="Subject", random="~Days")
    new = pl.DataFrame({"Days": [0.0, 5.0], "Subject": [999, 308]})
    pred = m.predict(new).to_numpy()
    pop = m.predict(new, include_random=False).to_numpy()
    assert pred[0] == pop[0] and pred[1] != pop[1]
    json.dumps(m.to_dict())


def test_reliable_change_matches_formula():
    d = pl.DataFrame({"b": [26.0, 27.0, 25.0, None], "f": [21.0, 27.5, 30.0, 20.0]})
    out = lg.reliable_change(d, baseline="b", follow_up="f", reliability=0.75, sd_baseline=2.0,
                             sd_follow_up=2.5, practice_effect=1.0)
    s_diff = np.sqrt((2.0**2 + 2.5**2) * 0.25)
    np.testing.assert_allclose(out["rci"].to_numpy()[:3], (np.array([21, 27.5, 30]) - [26, 27, 25] - 1) / s_diff)
    assert out["change"].to_list() == ["decline", "no reliable change", "improvement", None]
    jt = lg.reliable_change(d, baseline="b", follow_up="f", reliability=0.75, sd_baseline=2.0,
                            method="jacobson-truax")
    np.testing.assert_allclose(jt["rci"][0], -5 / np.sqrt(2 * 4 * 0.25))


def test_dose_escalation_time_to_first_25pct_rise():
    import datetime as dt

    day = dt.date(2024, 1, 1)
    s = pl.DataFrame({
        "participant_id": ["a", "a", "a", "a", "b", "b", "c"],
        "session_date": [day + dt.timedelta(days=k) for k in (0, 14, 28, 42, 0, 30, 0)],
        "dose_mg_per_kg": [0.5, 0.6, 0.625, 0.8, 0.5, 0.6, 0.7],
    })
    out = lg.dose_escalation(s).sort("participant_id")
    assert out["event"].to_list() == [True, False, False]
    assert out["time"].to_list() == [28.0, 30.0, 0.0]
    assert out["escalation_dose"].to_list()[:2] == [0.625, None]
    with pytest.raises(ModelSpecError, match="non-positive"):
        lg.dose_escalation(s.with_columns(pl.lit(0.0).alias("dose_mg_per_kg")))


def test_plots_return_figures(dataset):
    import matplotlib.figure

    m = lg.lmm(dataset("sleepstudy"), "Reaction ~ ns(Days, df=3)", groups="Subject", random="~Days")
    assert isinstance(lg.spaghetti(m, time="Days", n_sample=5), matplotlib.figure.Figure)
    assert isinstance(lg.caterpillar(m, term="Days"), matplotlib.figure.Figure)
    assert isinstance(m.plot(), matplotlib.figure.Figure)
    g = lg.gee(dataset("ohio"), "resp ~ age + smoke", groups="id", family="binomial")
    assert isinstance(g.plot(), matplotlib.figure.Figure)
