"""Predictions from a Cox fit against R's survfit(coxph, newdata) and predict.coxph
(tests/reference/survival/predict.json, written by make_reference.R)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from survival_ref import load_data, load_ref

from cohort import survival as sv
from cohort.errors import ModelSpecError

P = load_ref("predict")
RTOL, ATOL = 1e-9, 1e-12

ND_ROSSI = pl.DataFrame({"fin": [0, 1, 1], "age": [20, 30, 40], "prio": [0, 2, 5], "week": [10, 30, 52],
                         "arrest": [1, 0, 1]})
ND_HEART = pl.DataFrame({"age": [-10.0, 5.0], "year": [1.0, 4.0], "surgery": [0, 1], "start": [0.0, 10.0],
                         "stop": [50.0, 200.0], "event": [1, 0]})
ND_VET = pl.DataFrame({"trt": [1, 2, 1], "karno": [60, 40, 80], "celltype": ["large", "squamous", "smallcell"]})
RW = load_data("rossi").with_columns(w=1 + (pl.col("prio") % 3) / 2)
FITS = {
    "rossi_efron": lambda: sv.cox(load_data("rossi"), "fin + age + prio", time="week", event="arrest"),
    "rossi_breslow": lambda: sv.cox(load_data("rossi"), "fin + age + prio", time="week", event="arrest",
                                    ties="breslow"),
    "rossi_weights": lambda: sv.cox(RW, "fin + age + prio", time="week", event="arrest", weights="w"),
    "heart_strata": lambda: sv.cox(load_data("heart"), "age + year", start="start", time="stop", event="event",
                                   strata="surgery"),
    "heart_counting": lambda: sv.cox(load_data("heart"), "age + year + surgery", start="start", time="stop",
                                     event="event"),
    "veteran": lambda: sv.cox(load_data("veteran"), "trt + karno + treatment(celltype, reference='squamous')",
                              time="time", event="status"),
}
NEWDATA = {"rossi_efron": ND_ROSSI, "rossi_breslow": ND_ROSSI, "rossi_weights": ND_ROSSI, "heart_strata": ND_HEART,
           "heart_counting": ND_HEART, "veteran": ND_VET}
_cache: dict[str, sv.CoxFit] = {}


def fit_of(case: str) -> sv.CoxFit:
    if case not in _cache:
        _cache[case] = FITS[case]()
    return _cache[case]


def _curves(ref: dict, prefix: str = "") -> list[tuple[str, np.ndarray]]:
    """R's curves as (strata label, positions) pairs: one matrix column per newdata row."""
    strata = np.array(ref[f"{prefix}strata"])
    return [(s, np.flatnonzero(strata == s)) for s in dict.fromkeys(strata.tolist())]


def _check_curve(ours: pl.DataFrame, ref: dict, col: int, sel: np.ndarray, at: bool) -> None:
    pre = "at_" if at else ""
    names = [("survival", "surv"), ("std_error_cumhaz", "std_err"), ("cumulative_hazard", "cumhaz"),
             ("conf_low", "lower"), ("conf_high", "upper")]
    if at:
        names[1] = ("std_error", "std_err")  # summary() gives the SE of the survival
    np.testing.assert_allclose(ours["time"].to_numpy(), np.array(ref[f"{pre}time"])[sel], rtol=RTOL)
    for a, b in names:
        np.testing.assert_allclose(ours[a].to_numpy(), np.array(ref[f"{pre}{b}"][col], dtype=float)[sel],
                                   rtol=RTOL, atol=ATOL, err_msg=a)
    if not at:
        for c in ("n_risk", "n_event", "n_censor"):
            np.testing.assert_allclose(ours[c].to_numpy(), np.array(ref[c])[sel], rtol=RTOL, err_msg=c)


@pytest.mark.parametrize("case", ["rossi_efron", "rossi_breslow", "rossi_weights", "heart_counting", "veteran"])
def test_predict_survival_matches_survfit(case: str) -> None:
    fit, ref, nd = fit_of(case), P[case]["survfit"], NEWDATA[case]
    full = fit.predict_survival(nd)
    at = fit.predict_survival(nd, times=ref["at_times"])
    for i in range(nd.height):
        _check_curve(full.filter(pl.col("row") == i), ref, i, np.arange(len(ref["time"])), at=False)
        _check_curve(at.filter(pl.col("row") == i), ref, i, np.arange(len(ref["at_time"])), at=True)


def test_predict_survival_strata() -> None:
    fit, nd = fit_of("heart_strata"), ND_HEART
    # strata given: each row gets its own stratum's curve (R names the curves by row)
    ref = P["heart_strata"]["survfit"]
    full = fit.predict_survival(nd)
    at = fit.predict_survival(nd, times=ref["at_times"])
    for (_, sel), (_, asel), i in zip(_curves(ref), _curves(ref, "at_"), range(nd.height), strict=True):
        mine = full.filter(pl.col("row") == i)
        assert mine["strata"].unique().to_list() == [str(nd["surgery"][i])]
        for a, b in [("survival", "surv"), ("std_error_cumhaz", "std_err"), ("conf_low", "lower"),
                     ("conf_high", "upper")]:
            np.testing.assert_allclose(mine[a].to_numpy(), np.array(ref[b][0])[sel], rtol=RTOL, atol=ATOL)
            np.testing.assert_allclose(at.filter(pl.col("row") == i)[a if a != "std_error_cumhaz" else "std_error"]
                                       .to_numpy(), np.array(ref["at_" + b][0])[asel], rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(mine["time"].to_numpy(), np.array(ref["time"])[sel])
    # strata left out: every row gets every stratum's curve
    ref = P["heart_strata"]["survfit_all"]
    full = fit.predict_survival(nd.select("age", "year"))
    for label, sel in _curves(ref):
        for i in range(nd.height):
            mine = full.filter((pl.col("row") == i) & (pl.col("strata") == label.split("=")[1]))
            np.testing.assert_allclose(mine["survival"].to_numpy(), np.array(ref["surv"][i])[sel], rtol=RTOL)
            np.testing.assert_allclose(mine["std_error_cumhaz"].to_numpy(), np.array(ref["std_err"][i])[sel],
                                       rtol=RTOL, atol=ATOL)
    wide = fit.survival_function(nd.select("age", "year"))
    assert wide.columns == ["time", "0: 0", "0: 1", "1: 0", "1: 1"]
    wide = fit.survival_function(nd)
    assert wide.columns == ["time", "0", "1"] and wide["0"].is_sorted(descending=True)


@pytest.mark.parametrize("case", ["rossi_efron", "rossi_breslow", "rossi_weights", "heart_strata", "veteran"])
def test_predict_matches_predict_coxph(case: str) -> None:
    fit = fit_of(case)
    for key, ref in P[case]["predict"].items():
        kind, reference = key.split("_")
        got = fit.predict(NEWDATA[case], type=kind, reference=reference, se_fit=True)
        np.testing.assert_allclose(got["prediction"].to_numpy(), ref["fit"], rtol=RTOL, atol=ATOL, err_msg=key)
        np.testing.assert_allclose(got["std_error"].to_numpy(), ref["se"], rtol=RTOL, atol=ATOL, err_msg=key)


@pytest.mark.parametrize("case", ["rossi_efron", "heart_strata", "heart_counting"])
def test_predict_on_fitted_rows(case: str) -> None:
    fit = fit_of(case)
    for key, ref in P[case]["predict_train"].items():
        kind, reference = key.split("_")
        got = fit.predict(type=kind, reference=reference, se_fit=True)
        np.testing.assert_allclose(got["prediction"].to_numpy(), ref["fit"], rtol=RTOL, atol=1e-11, err_msg=key)
        np.testing.assert_allclose(got["std_error"].to_numpy(), ref["se"], rtol=RTOL, atol=1e-11, err_msg=key)
    for c in ("heart_strata", "heart_counting"):
        if c == case:
            got = fit.predict(NEWDATA[c], type="expected")["prediction"].to_numpy()
            np.testing.assert_allclose(got, P[c]["predict_expected"]["fit"], rtol=RTOL)


def test_means_and_survival_type() -> None:
    np.testing.assert_allclose(fit_of("rossi_efron").means, P["rossi_efron"]["means"], rtol=1e-12)
    np.testing.assert_allclose(fit_of("rossi_weights").means, P["rossi_weights"]["means"], rtol=1e-12)
    fit = fit_of("rossi_efron")
    e = fit.predict(ND_ROSSI, type="expected", se_fit=True)
    s = fit.predict(ND_ROSSI, type="survival", se_fit=True)
    np.testing.assert_allclose(s["prediction"].to_numpy(), np.exp(-e["prediction"].to_numpy()), rtol=1e-14)
    # the survival at a row's own time is the predicted curve's value there
    curve = fit.predict_survival(ND_ROSSI, times=[10.0, 30.0, 52.0])
    own = curve.filter(pl.col("time") == pl.col("row").replace_strict({0: 10.0, 1: 30.0, 2: 52.0}))
    np.testing.assert_allclose(own["survival"].to_numpy(), s["prediction"].to_numpy(), rtol=1e-12)


def test_prediction_errors() -> None:
    fit = fit_of("veteran")
    with pytest.raises(ModelSpecError, match="karno"):
        fit.predict(ND_VET.drop("karno"))
    with pytest.raises(ModelSpecError, match="not seen"):
        fit.predict(ND_VET.with_columns(celltype=pl.lit("huge")))
    with pytest.raises(ModelSpecError, match="row 1"):
        fit.predict(ND_VET.with_columns(karno=pl.Series([1.0, None, 3.0])))
    with pytest.raises(ModelSpecError, match="type must be"):
        fit.predict(ND_VET, type="hazard")
    strat = fit_of("heart_strata")
    with pytest.raises(ModelSpecError, match="strata not in the fitted data at row 0"):
        strat.predict_survival(ND_HEART.with_columns(surgery=pl.Series([5, 1])))
    with pytest.raises(ModelSpecError, match="strata column"):
        strat.predict(ND_HEART.drop("surgery"))  # reference='strata' needs the stratum
    with pytest.raises(ModelSpecError, match="time column 'stop'"):
        fit_of("heart_counting").predict(ND_HEART.drop("stop"), type="expected")


def test_curve_at_reference_point_is_baseline_hazard() -> None:
    # two strata columns (string and integer) and the curve at fit.means equal R's basehaz
    cgd = load_data("cgd")
    fit = sv.cox(cgd, "treat + age", start="tstart", time="tstop", event="status", strata=["hos_cat", "sex"])
    bh = fit.baseline_hazard()
    keys = fit._strata_keys
    nd = keys.with_columns(treat=pl.lit(fit.means[0]), age=pl.lit(fit.means[1]))
    curves = fit.predict_survival(nd.to_pandas())
    assert curves["strata"].unique().sort().to_list() == sorted(fit.strata_labels)
    for label in fit.strata_labels:
        mine = curves.filter((pl.col("strata") == label) & (pl.col("n_event") > 0))
        ref = bh.filter(pl.col("strata") == label)
        np.testing.assert_allclose(mine["time"].to_numpy(), ref["time"].to_numpy())
        np.testing.assert_allclose(mine["cumulative_hazard"].to_numpy(), ref["cumulative_hazard"].to_numpy(),
                                   rtol=1e-10)
