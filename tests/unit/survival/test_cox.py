"""Cox regression against R's coxph / cox.zph / concordance (tests/reference/survival/cox.json)
and against lifelines (the general path) on the same data."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest
from survival_ref import load_data, load_ref

from cohort import survival as sv
from cohort.errors import ConvergenceWarning, ModelSpecError

REF = load_ref("cox")
LUNG = "age + sex + `ph.ecog`"
CASES = {
    "rossi_efron": ("rossi", "fin + age + race + wexp + mar + paro + prio", dict(time="week", event="arrest")),
    "rossi_breslow": ("rossi", "fin + age + race + wexp + mar + paro + prio",
                      dict(time="week", event="arrest", ties="breslow")),
    "rossi_strata_wexp": ("rossi", "fin + age + prio", dict(time="week", event="arrest", strata="wexp")),
    "rossi_interaction": ("rossi", "fin * age + prio", dict(time="week", event="arrest")),
    "rossi_weights_robust": ("rossi_w", "fin + age + prio", dict(time="week", event="arrest", weights="w", robust=True)),
    "veteran_celltype": ("veteran", "trt + karno + diagtime + age + prior + C(celltype, contr.treatment(base='squamous'))",
                         dict(time="time", event="status")),
    "lung": ("lung", LUNG, dict(time="time", event="status")),
    "lung_cluster_inst": ("lung_inst", LUNG, dict(time="time", event="status", cluster="inst")),
    "heart_efron": ("heart", "age + year + surgery + transplant",
                    dict(start="start", time="stop", event="event", cluster="id")),
    "heart_breslow": ("heart", "age + year + surgery + transplant",
                      dict(start="start", time="stop", event="event", cluster="id", ties="breslow")),
    "cgd_ag": ("cgd", "treat + sex + age + inherit + steroids",
               dict(start="tstart", time="tstop", event="status", cluster="id", strata="hos_cat")),
    "cgd_pwp": ("cgd", "treat + age", dict(start="tstart", time="tstop", event="status", cluster="id", strata="enum")),
}


def _data(name: str) -> pl.DataFrame:
    if name == "rossi_w":
        return load_data("rossi").with_columns(w=1 + (pl.col("prio") % 3) / 2)
    if name == "lung_inst":
        return load_data("lung").filter(pl.col("inst").is_not_null())
    return load_data(name)


FITS: dict[str, sv.CoxFit] = {}


def _fit(case: str) -> sv.CoxFit:
    if case not in FITS:
        data, formula, kw = CASES[case]
        FITS[case] = sv.cox(_data(data), formula, **kw)
    return FITS[case]


@pytest.mark.parametrize("case", sorted(CASES))
def test_cox_matches_r(case: str) -> None:
    fit = _fit(case)
    ref = REF[case]
    s = fit.summary
    assert fit.engine == "numpy" and fit.converged and fit.warnings == ()
    assert fit.n == ref["n"]
    np.testing.assert_allclose(s["estimate"].to_numpy(), ref["estimate"], rtol=1e-6)
    np.testing.assert_allclose(s["std_error"].to_numpy(), ref["std_error"], rtol=1e-6)
    if "robust_std_error" in ref:
        np.testing.assert_allclose(s["robust_std_error"].to_numpy(), ref["robust_std_error"], rtol=1e-6)
        np.testing.assert_allclose(
            s["statistic"].to_numpy(), np.array(ref["estimate"]) / ref["robust_std_error"], rtol=1e-6
        )
    else:
        assert "robust_std_error" not in s.columns
    assert fit.loglik == pytest.approx(ref["loglik"], rel=1e-10)
    assert fit.loglik_null == pytest.approx(ref["loglik_null"], rel=1e-10)
    assert fit.concordance == pytest.approx(ref["concordance"], rel=1e-10)  # weighted pairs with weights
    cc = fit.concordance_detail
    for k in ("concordant", "discordant", "tied_x", "tied_y", "tied_xy"):
        assert cc[k] == pytest.approx(ref["concordance_counts"][k.replace("_", ".")], rel=1e-12)
    tests = dict(zip(fit.tests["test"], fit.tests["statistic"], strict=True))
    assert tests["score"] == pytest.approx(ref["score_test"], rel=1e-8)
    wald = tests["robust_wald"] if "robust_std_error" in ref else tests["wald"]
    assert wald == pytest.approx(ref["wald_test"], rel=1e-6)


@pytest.mark.parametrize("case", sorted(c for c in CASES if "zph" in REF[c]))
def test_proportional_hazards_matches_cox_zph(case: str) -> None:
    z = _fit(case).check_proportional_hazards()
    ref = REF[case]["zph"]
    assert z["term"].to_list()[-1] == "GLOBAL" and z.height == len(ref["term"])
    np.testing.assert_allclose(z["chisq"].to_numpy(), ref["chisq"], rtol=1e-6)
    np.testing.assert_allclose(z["df"].to_numpy(), ref["df"])
    np.testing.assert_allclose(z["p_value"].to_numpy(), ref["p"], rtol=1e-6)


def test_fast_engine_agrees_with_lifelines() -> None:
    rossi = load_data("rossi")
    kw = dict(time="week", event="arrest")
    a = sv.cox(rossi, "fin + age + prio + C(race)", **kw)
    b = sv.cox(rossi, "fin + age + prio + C(race)", engine="lifelines", **kw)
    assert (a.engine, b.engine) == ("numpy", "lifelines")
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-6)
    np.testing.assert_allclose(a.summary["std_error"].to_numpy(), b.summary["std_error"].to_numpy(), rtol=1e-6)
    assert a.loglik == pytest.approx(b.loglik, rel=1e-9)
    # (start, stop] without tied event times: lifelines' CoxTimeVaryingFitter
    rng = np.random.default_rng(3)
    n = 300
    x = rng.normal(size=(n, 2))
    t = rng.exponential(1 / np.exp(x @ np.array([0.5, -0.3])))
    entry = rng.uniform(0, 0.3, n)
    keep = t > entry
    df = pl.DataFrame({"s": entry[keep], "t": t[keep], "e": rng.random(keep.sum()) < 0.8,
                       "x1": x[keep, 0], "x2": x[keep, 1]}).with_columns(pl.col("e").cast(pl.Int8))
    a = sv.cox(df, "x1 + x2", start="s", time="t", event="e")
    b = sv.cox(df, "x1 + x2", start="s", time="t", event="e", engine="lifelines")
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-6)
    np.testing.assert_allclose(a.summary["std_error"].to_numpy(), b.summary["std_error"].to_numpy(), rtol=1e-5)


def test_errors_name_rows() -> None:
    df = pl.DataFrame({"s": [0.0, 2.0, 1.0, 0.0], "t": [1.0, 2.0, 3.0, 4.0], "e": [1, 0, 1, 1],
                       "x": [1.0, 2.0, None, 0.5]})
    with pytest.raises(ModelSpecError, match=r"start >= stop.*row 1"):
        sv.cox(df, "x", start="s", time="t", event="e")
    with pytest.raises(ModelSpecError, match=r"'x' at row 2"):
        sv.cox(df, "x", time="t", event="e", missing="raise")
    fit = sv.cox(df.vstack(df), "x", time="t", event="e")
    assert fit.n == 6 and fit.warnings[0].startswith("2 row(s) with missing values left out")
    with pytest.raises(ModelSpecError, match="'x' at row 2 .1 row.; 't' at row 0 "):
        sv.cox(df.with_columns(t=pl.Series([np.nan, 1.0, 2.0, 3.0])), "x", time="t", event="e", missing="raise")
    with pytest.raises(ModelSpecError, match="infinite values at row 3 "):
        sv.cox(df.with_columns(t=pl.Series([np.nan, 1.0, 2.0, np.inf])), "x", time="t", event="e")
    with pytest.raises(ModelSpecError, match="negative"):
        sv.cox(df.with_columns(t=pl.Series([-1.0, 1.0, 2.0, 3.0])), "x", time="t", event="e")
    with pytest.warns(ConvergenceWarning, match="coefficient.s. of y are not estimable"):
        fit = sv.cox(df.with_columns(y=pl.col("x") * 2).drop_nulls(), "x + y", time="t", event="e")
    assert fit.aliased == ("y",) and np.isnan(fit.coef[1]) and "singular" in fit.warnings[0]
    with pytest.raises(ModelSpecError, match="collinear"):  # lifelines cannot fit around it
        sv.cox(df.with_columns(y=pl.col("x") * 2).drop_nulls(), "x + y", time="t", event="e", engine="lifelines")
    with pytest.raises(ModelSpecError, match="nope"):
        sv.cox(df, "nope", time="t", event="e")


def test_monotone_likelihood_warns_and_flags() -> None:
    # every event in group 1: the hazard ratio of g is infinite
    rng = np.random.default_rng(0)
    n = 60
    g = np.repeat([0, 1], n // 2)
    t = rng.exponential(1, n)
    e = g.copy()
    df = pl.DataFrame({"t": t, "e": e, "g": g, "x": rng.normal(size=n)})
    with pytest.warns(ConvergenceWarning, match="monotone likelihood: the estimate.s. of g tend"):
        fit = sv.cox(df, "g + x", time="t", event="e")
    assert fit.converged is False
    assert any("monotone" in w for w in fit.warnings)


def test_result_contract() -> None:
    fit = _fit("heart_efron")
    d = fit.to_dict()
    import json

    json.dumps(d)
    assert set(fit.summary.columns) >= {"term", "estimate", "std_error", "robust_std_error", "hazard_ratio",
                                        "conf_low", "conf_high", "statistic", "p_value"}
    assert fit.n_clusters == 103
    hr = fit.summary["hazard_ratio"].to_numpy()
    assert np.all(fit.summary["conf_low"].to_numpy() < hr) and np.all(hr < fit.summary["conf_high"].to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sv.cox(load_data("rossi").to_pandas(), "fin", time="week", event="arrest")


BH = load_ref("basehaz")


@pytest.mark.parametrize(
    "case,data,formula,kw",
    [
        ("rossi_efron", "rossi", "fin + age + prio", dict(time="week", event="arrest")),
        ("rossi_breslow", "rossi", "fin + age + prio", dict(time="week", event="arrest", ties="breslow")),
        ("heart_strata", "heart", "age + year", dict(start="start", time="stop", event="event", strata="surgery")),
    ],
)
def test_baseline_hazard_matches_basehaz(case, data, formula, kw) -> None:
    bh = sv.cox(load_data(data), formula, **kw).baseline_hazard()
    ref = BH[case]
    rt = np.array(ref["time"])
    rs = ref["strata"] or ["all"] * rt.size
    for label in sorted(set(rs)):
        sel = np.array([s == label for s in rs])
        ours = bh.filter(pl.col("strata") == label.split("=")[-1] if "=" in label else pl.col("strata") == label)
        t, h = ours["time"].to_numpy(), ours["cumulative_hazard"].to_numpy()
        idx = np.searchsorted(t, rt[sel], side="right") - 1
        got = np.where(idx >= 0, h[np.maximum(idx, 0)], 0.0)
        np.testing.assert_allclose(got, np.array(ref["hazard"])[sel], rtol=1e-8, atol=1e-14)
