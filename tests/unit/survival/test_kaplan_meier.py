"""Kaplan-Meier and log-rank against R's survfit/survdiff (tests/reference/survival)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from survival_ref import arr, col, load_data, load_ref

from cohort import survival as sv
from cohort.errors import ModelSpecError

KM = load_ref("km")
CASES = {
    "rossi_fin": ("rossi", "week", "arrest", "fin", None),
    "rossi_all": ("rossi", "week", "arrest", None, None),
    "veteran_trt": ("veteran", "time", "status", "trt", None),
    "lung_sex": ("lung", "time", "status", "sex", None),
    "heart_lt": ("heart", "stop", "event", None, "start"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_km_matches_r(case: str) -> None:
    data, t, e, by, entry = CASES[case]
    km = sv.kaplan_meier(load_data(data), time=t, event=e, by=by, entry=entry)
    ref = KM[case]
    tab = ref["table"]
    assert km.summary.height == len(tab)
    assert km.summary["group"].to_list() == [r["group"] for r in tab]
    for c in ["time", "n_risk", "n_event", "n_censor", "survival", "std_error", "conf_low", "conf_high"]:
        np.testing.assert_allclose(km.summary[c].to_numpy(), col(tab, c), rtol=1e-8, atol=1e-12, err_msg=c)
    at = km.at(ref["times"])
    for c in ["time", "survival", "std_error", "conf_low", "conf_high"]:
        np.testing.assert_allclose(at[c].to_numpy(), col(ref["at"], c), rtol=1e-8, atol=1e-12, err_msg=c)
    med = km.median()
    for c in ["median", "conf_low", "conf_high"]:
        np.testing.assert_allclose(
            arr(med[c].to_list()), col(ref["median"], c), rtol=1e-12, err_msg=c
        )


def test_km_accepts_pandas_and_validates() -> None:
    rossi = load_data("rossi")
    a = sv.kaplan_meier(rossi.to_pandas(), time="week", event="arrest", by="fin")
    b = sv.kaplan_meier(rossi, time="week", event="arrest", by="fin")
    assert a.summary.equals(b.summary)
    bad = pd.DataFrame({"t": [1.0, 2.0, np.nan], "e": [1, 0, 1]})
    with pytest.raises(ModelSpecError, match=r"'t' at row 2 "):
        sv.kaplan_meier(bad, time="t", event="e", missing="raise")
    with pytest.raises(ModelSpecError, match="row 1"):
        sv.kaplan_meier(pd.DataFrame({"t": [1.0, -2.0], "e": [1, 0]}), time="t", event="e")
    with pytest.raises(ModelSpecError, match="start >= stop"):
        sv.kaplan_meier(pd.DataFrame({"s": [0, 3], "t": [1.0, 2.0], "e": [1, 0]}), time="t", event="e", entry="s")
    with pytest.raises(ModelSpecError, match="0/1"):
        sv.kaplan_meier(pd.DataFrame({"t": [1.0, 2.0], "e": [1, 2]}), time="t", event="e")
    d = b.to_dict()
    assert d["groups"] == ["0", "1"] and len(d["summary"]) == b.summary.height


LR = load_ref("logrank")


def test_logrank_matches_r() -> None:
    rossi = load_data("rossi")
    r = sv.logrank(rossi, time="week", event="arrest", by="fin")
    ref = LR["rossi_fin"]
    assert r.statistic == pytest.approx(ref["statistic"], rel=1e-10)
    assert r.p_value == pytest.approx(ref["p_value"], rel=1e-8)
    np.testing.assert_allclose(r.summary["expected"].to_numpy(), ref["expected"], rtol=1e-10)
    vet = load_data("veteran")
    r = sv.logrank(vet, time="time", event="status", by="celltype")
    assert (r.statistic, r.df) == (pytest.approx(LR["veteran_celltype"]["statistic"], rel=1e-10), 3)
    lung = load_data("lung")
    r = sv.logrank(lung, time="time", event="status", by="sex", strata="ph.ecog")
    assert r.statistic == pytest.approx(LR["lung_sex_strat_ecog"]["statistic"], rel=1e-10)
    r = sv.logrank(lung, time="time", event="status", by="ph.ecog", trend=True)
    assert r.statistic == pytest.approx(LR["lung_ecog_trend"]["statistic"], rel=1e-10)
    assert r.trend_statistic == pytest.approx(LR["lung_ecog_trend"]["trend_statistic"], rel=1e-10)
    assert r.trend_p_value == pytest.approx(LR["lung_ecog_trend"]["trend_p_value"], rel=1e-8)
    assert r.to_dict()["df"] == 3
