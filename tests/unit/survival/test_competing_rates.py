"""Competing risks vs cmprsk (cuminc, crr) and incidence rates vs R's poisson.test."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from survival_ref import load_data, load_ref

from cohort import survival as sv
from cohort.errors import ModelSpecError

CI = load_ref("cuminc")
FG = load_ref("finegray")


@pytest.mark.parametrize("cause", [1, 2])
def test_cumulative_incidence_matches_cuminc(cause: int) -> None:
    mg = load_data("mgus2")
    ci = sv.cumulative_incidence(mg, time="etime", event="event", cause=cause, by="sex")
    for cur in CI["curves"]:
        g, c = cur["name"].split()
        if int(c) != cause:
            continue
        tt, est, var = (np.array(cur[k], dtype=float) for k in ("time", "est", "var"))
        keep = np.r_[tt[1:] != tt[:-1], True]  # cuminc lists both corners of each step
        a = ci.at(tt[keep]).filter(pl.col("group") == g)
        np.testing.assert_allclose(a["estimate"].to_numpy(), est[keep], rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(a["std_error"].to_numpy() ** 2, var[keep], rtol=1e-8, atol=1e-16)
    # the estimate equals R's Aalen-Johansen (survfit multi-state), no jittering of ties
    at = ci.at(CI["at_times"])
    state = CI["aj_states"].index(str(cause))
    pstate = np.array(CI["aj_pstate"])
    for g in ("F", "M"):
        rows = [i for i, s in enumerate(CI["aj_strata"]) if s.endswith(g)]
        np.testing.assert_allclose(
            at.filter(pl.col("group") == g)["estimate"].to_numpy(), pstate[rows, state], rtol=1e-10
        )
    tests = ci.tests
    assert tests["cause"][0] == cause
    ref = dict(zip(CI["tests"]["cause"], CI["tests"]["stat"], strict=True))
    for row in tests.iter_rows(named=True):
        assert row["statistic"] == pytest.approx(ref[str(int(row["cause"]))], rel=1e-8)
    lo, est, hi = (ci.summary[c].to_numpy() for c in ("conf_low", "estimate", "conf_high"))
    pos = est > 0
    assert np.all(lo[pos] <= est[pos]) and np.all(est[pos] <= hi[pos])
    json.dumps(ci.to_dict())


@pytest.mark.parametrize("cause", [1, 2])
def test_fine_gray_matches_crr(cause: int) -> None:
    mg = load_data("mgus2")
    fit = sv.fine_gray(mg, "age + male + hgb", time="etime", event="event", cause=cause)
    ref = FG[f"cause{cause}"]
    assert fit.summary["term"].to_list() == ref["term"]
    np.testing.assert_allclose(fit.summary["estimate"].to_numpy(), ref["estimate"], rtol=1e-6)
    np.testing.assert_allclose(fit.summary["std_error"].to_numpy(), ref["std_error"], rtol=1e-6)
    assert fit.loglik == pytest.approx(ref["loglik"], rel=1e-9)
    assert fit.converged
    json.dumps(fit.to_dict())


def test_competing_errors() -> None:
    df = pl.DataFrame({"t": [1.0, 2.0, -1.0], "s": [1, 2, 0]})
    with pytest.raises(ModelSpecError, match="row 2"):
        sv.cumulative_incidence(df, time="t", event="s")
    with pytest.raises(ModelSpecError, match="cause 3"):
        sv.cumulative_incidence(df.head(2), time="t", event="s", cause=3)


RATES = load_ref("rates")


def test_incidence_rate_matches_poisson_test() -> None:
    df = pl.DataFrame(RATES["data"])
    r = sv.incidence_rate(df, events="n", person_time="py", by="site", per=1000)
    s = r.summary
    for i, ex in enumerate(RATES["exact"]):
        assert s["rate"][i] == pytest.approx(ex["rate"] * 1000, rel=1e-12)
        assert s["conf_low"][i] == pytest.approx(ex["low"] * 1000, rel=1e-8, abs=1e-12)
        assert s["conf_high"][i] == pytest.approx(ex["high"] * 1000, rel=1e-8)
    c = s.filter(pl.col("group") == "c").row(0, named=True)
    ref = RATES["rr_c_vs_a"]
    assert c["rate_ratio"] == pytest.approx(ref["estimate"], rel=1e-12)
    assert c["rr_conf_low"] == pytest.approx(ref["low"], rel=1e-7)
    assert c["rr_conf_high"] == pytest.approx(ref["high"], rel=1e-7)
    assert c["p_value"] == pytest.approx(ref["p_value"], rel=1e-7)
    # one row per person aggregates to the same
    per_person = pl.DataFrame({"site": ["a"] * 3, "n": [1, 0, 2], "py": [1.0, 2.0, 3.0]})
    one = sv.incidence_rate(per_person, events="n", person_time="py", per=1).summary
    assert one["rate"][0] == pytest.approx(0.5)
    with pytest.raises(ModelSpecError, match="whole counts"):
        sv.incidence_rate(per_person.with_columns(n=pl.lit(0.5)), events="n", person_time="py")
