"""Nearly equal times merged as R's aeqSurv (timefix) in KM, log-rank and Cox
(tests/reference/survival/timefix.json: times such as 3 and 3 - 6e-12 from float noise)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from survival_ref import load_data, load_ref

from cohort import survival as sv
from cohort.errors import ModelSpecError
from cohort.survival._common import timefix

REF = load_ref("timefix")
DATA = load_data("timefix")


def test_timefix_merges_float_noise() -> None:
    t = DATA["t"].to_numpy()
    fixed, _ = timefix(t)
    assert np.unique(t).size == REF["n_unique_raw"]
    assert np.unique(fixed).size == REF["n_unique_fixed"]
    a, _ = timefix(np.array([1.0, 1.0 + 1e-12, 2.0, 1.0 - 1e-13, 5.0]))
    assert a.tolist() == [1.0 - 1e-13] * 2 + [2.0, 1.0 - 1e-13, 5.0]
    same = np.array([1.0, 2.0, 3.0])
    assert timefix(same)[0] is same  # nothing to merge: untouched
    with pytest.raises(ModelSpecError, match="length 0 at row 0"):
        timefix(np.array([1.0 + 1e-12, 3.0]), np.array([1.0, 0.0]))


@pytest.mark.parametrize("case,kw", [("km", {}), ("km_nofix", {"timefix": False}), ("km_lt", {"entry": "s"})])
def test_km_timefix(case: str, kw: dict) -> None:
    km = sv.kaplan_meier(DATA, time="t", event="e", **kw)
    ref = REF[case]
    s = km.summary
    np.testing.assert_allclose(s["time"].to_numpy(), ref["time"], rtol=1e-15)
    for c in ("n_risk", "n_event", "survival", "std_error"):
        np.testing.assert_allclose(s[c].to_numpy(), ref[c], rtol=1e-10, err_msg=c)


def test_logrank_timefix() -> None:
    assert sv.logrank(DATA, time="t", event="e", by="g").statistic == pytest.approx(REF["logrank"], rel=1e-10)
    nofix = sv.logrank(DATA, time="t", event="e", by="g", timefix=False)
    assert nofix.statistic == pytest.approx(REF["logrank_nofix"], rel=1e-10)


@pytest.mark.parametrize(
    "case,kw",
    [("cox", {}), ("cox_nofix", {"timefix": False}), ("cox_breslow", {"ties": "breslow"}),
     ("cox_counting", {"start": "s"})],
)
def test_cox_timefix(case: str, kw: dict) -> None:
    fit = sv.cox(DATA, "x + g", time="t", event="e", **kw)
    ref = REF[case]
    np.testing.assert_allclose(fit.coef, ref["estimate"], rtol=1e-8)
    np.testing.assert_allclose(fit.summary["std_error"].to_numpy(), ref["std_error"], rtol=1e-8)
    assert fit.loglik == pytest.approx(ref["loglik"], rel=1e-10)
    assert fit.concordance == pytest.approx(ref["concordance"], rel=1e-10)


def test_timefix_one_and_one_plus_epsilon() -> None:
    # two events at "1.0" (one computed with float noise) are one tied time, as in R
    df = pl.DataFrame({"t": [1.0, 1.0 + 1e-12, 2.0, 3.0], "e": [1, 1, 1, 0]})
    km = sv.kaplan_meier(df, time="t", event="e")
    assert km.summary["time"].to_list() == [1.0, 2.0, 3.0]
    assert km.summary["n_event"].to_list()[0] == 2
    assert sv.kaplan_meier(df, time="t", event="e", timefix=False).summary.height == 4
