"""Corner cases checked against R (tests/reference/survival/make_reference_corners.R -> corners.json).

Fits that could hang run in a subprocess with a timeout, so that a hang fails the test
instead of blocking CI.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import polars as pl
import pytest
from survival_ref import REF, arr, load_data, load_ref

from cohort import survival as sv
from cohort.errors import ConvergenceWarning, ModelSpecError

CORNERS = load_ref("corners")


def _run_bounded(code: str, *, timeout: float = 120.0) -> dict:
    """Run ``code`` (which prints one JSON line last) in a fresh interpreter; a hang fails the test."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the fit did not return within {timeout:.0f} s (a loop without a bound?)")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


FINE_GRAY_TIME0 = """
    import json, warnings
    import polars as pl
    from cohort import survival as sv
    mg = pl.read_csv({path!r})
    # mgus2 with the time of every {k}th id set to 0 (as make_reference_corners.R)
    mg = mg.with_columns(etime=pl.when(pl.col("id") % {k} == 0).then(0.0).otherwise(pl.col("etime")))
    out = {{}}
    for cause in (1, 2):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            fit = sv.fine_gray(mg, "age + male + hgb", time="etime", event="event", cause=cause)
        out[cause] = {{"term": fit.summary["term"].to_list(), "estimate": fit.coef.tolist(),
                      "std_error": fit.summary["std_error"].to_list(), "loglik": fit.loglik,
                      "converged": fit.converged, "n": fit.n, "warnings": [str(x.message) for x in w]}}
    print(json.dumps(out))
"""


def test_fine_gray_rows_at_time_zero_match_crr() -> None:
    """mgus2 with 55 rows at time 0 (14 censored, 2 cause-1, 39 cause-2 events) vs cmprsk::crr.

    Before: the (0, 0] intervals made the likelihood NaN; the fit returned converged=True with
    standard errors up to 54% off (cause 2), or never returned.
    """
    ref = CORNERS["fine_gray_time0"]
    assert ref["zero_status"] == {"0": 14, "1": 2, "2": 39}
    got = _run_bounded(FINE_GRAY_TIME0.format(path=str(REF / "mgus2.csv"), k=ref["zero_id_modulo"]))
    for cause in (1, 2):
        r, g = ref[f"cause{cause}"], got[str(cause)]
        assert r["converged"]
        assert g["converged"] and g["warnings"] == []
        assert g["term"] == r["term"]
        assert g["n"] == load_data("mgus2").height  # rows at time 0 are used, not dropped
        np.testing.assert_allclose(g["estimate"], r["estimate"], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(g["std_error"], r["std_error"], rtol=1e-6)
        assert g["loglik"] == pytest.approx(r["loglik"], rel=1e-9)


NEWTON_NAN = """
    import json
    import numpy as np
    from cohort.survival._cox_engine import CoxData, newton_raphson
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 1))
    t = rng.exponential(size=40)
    w = np.ones(40)
    w[3] = np.nan  # a likelihood that is NaN everywhere
    res = newton_raphson(CoxData(x, t, np.ones(40, dtype=bool), weights=w), max_iter=20)
    print(json.dumps({"converged": bool(res.converged), "messages": res.messages, "iterations": res.iterations}))
"""


def test_newton_raphson_stops_on_a_nan_likelihood() -> None:
    """Before: the step-halving loop never ended when the log-likelihood was NaN."""
    got = _run_bounded(NEWTON_NAN, timeout=60)
    assert not got["converged"]
    assert len(got["messages"]) == 1
    assert "not finite" in got["messages"][0] and "not usable" in got["messages"][0]


# ---- case weights must be > 0 ------------------------------------------------------------------
def _lung_weights() -> pl.DataFrame:
    lung = load_data("lung")
    return lung.with_columns(w=0.5 + (pl.int_range(1, lung.height + 1) % 4) / 3)  # as the R script


@pytest.mark.parametrize(
    ("bad", "n_bad"),
    [({0: 0.0, 1: 0.0, 2: 0.0}, 3), ({4: -1.0}, 1), ({7: float("nan"), 9: float("inf")}, 2)],
    ids=["zero", "negative", "missing"],
)
@pytest.mark.parametrize("fit", ["kaplan_meier", "cox"])
def test_nonpositive_weights_are_refused(bad: dict[int, float], n_bad: int, fit: str) -> None:
    """R's coxph refuses zero and negative weights ("Invalid weights, must be >0"; survfit refuses
    negative ones): so does every survival function taking weights, naming the column and the
    rows. Before: zero weights were accepted by both, negative ones by kaplan_meier failed later.
    A missing (NaN) weight is a missing value: its row is left out (as R's na.omit), the
    infinite one is refused.
    """
    refused = CORNERS["weights_refused"]
    assert refused["coxph_zero"] == refused["coxph_negative"] == "Invalid weights, must be >0"
    assert refused["survfit_negative"] == "weights must be non-negative"
    w = _lung_weights()["w"].to_numpy().copy()
    for i, v in bad.items():
        w[i] = v
    df = _lung_weights().with_columns(w=pl.Series(w))
    rows = ", ".join(str(i) for i in bad)
    with pytest.raises(ModelSpecError) as err:
        if fit == "cox":
            sv.cox(df, "age + sex", time="time", event="status", weights="w")
        else:
            sv.kaplan_meier(df, time="time", event="status", weights="w")
    msg = str(err.value)
    if n_bad == 2:  # the NaN weight (row 7) is a missing value: left out; the infinite one refused
        bad, n_bad, rows = {9: float("inf")}, 1, "9"
    assert msg.startswith(f"weights column 'w' has {n_bad} row(s) with a zero, negative or infinite weight")
    assert f"{rows} ({n_bad} row" in msg and "must be > 0" in msg


def test_weights_of_rows_dropped_for_missing_values_are_not_checked() -> None:
    """Only the rows used must have weights > 0 (R checks the model frame after na.omit)."""
    df = _lung_weights().with_columns(
        w=pl.when(pl.int_range(pl.len()) == 0).then(0.0).otherwise(pl.col("w")),
        age=pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(pl.col("age")),
    )
    fit = sv.cox(df, "age + sex", time="time", event="status", weights="w")
    assert fit.n == df.height - 1


# ---- Kaplan-Meier with non-integer case weights: survfit's robust (IJ) variance -------------------
def _lung_km_data() -> pl.DataFrame:
    lung = _lung_weights()  # w = 0.5 + (row %% 4) / 3, as the R script
    return lung.with_columns(wi=1 + pl.int_range(1, lung.height + 1) % 3, entry=(pl.col("time") / 4).floor())


def _assert_km_matches(km, ref: dict, *, variance: str) -> None:
    s = km.summary
    assert km.variance == variance
    assert s["group"].to_list() == [str(g) for g in ref["group"]]
    np.testing.assert_array_equal(s["time"].to_numpy(), ref["time"])
    np.testing.assert_allclose(s["n_risk"].to_numpy(), ref["n_risk"], rtol=1e-12)
    np.testing.assert_allclose(s["survival"].to_numpy(), ref["survival"], rtol=1e-12, atol=1e-15)
    for c in ("std_error", "conf_low", "conf_high"):
        np.testing.assert_allclose(s[c].to_numpy(), arr(ref[c]), rtol=1e-8, atol=1e-12, err_msg=c)


@pytest.mark.parametrize(
    ("key", "options", "variance"),
    [
        ("fractional", {"weights": "w"}, "robust"),
        ("fractional_sex", {"weights": "w", "by": "sex"}, "robust"),
        ("fractional_loglog", {"weights": "w", "conf_type": "log-log"}, "robust"),
        ("fractional_greenwood", {"weights": "w", "robust": False}, "greenwood"),
        ("integer", {"weights": "wi", "by": "sex"}, "greenwood"),
        ("fractional_entry", {"weights": "w", "entry": "entry"}, "robust"),
    ],
)
def test_kaplan_meier_weights_variance_as_survfit(key: str, options: dict, variance: str) -> None:
    """lung with non-integer weights: std.err and CI are survfit's default robust (infinitesimal
    jackknife) ones, also with entry (each row its own cluster: survival 3.5.3 does so, though its
    help page says otherwise); integer weights and robust=False keep Greenwood (as R).
    Before: Greenwood for every weight (std.err 0.0031 where R gives 0.0022 at day 5).
    """
    km = sv.kaplan_meier(_lung_km_data(), time="time", event="status", **options)
    _assert_km_matches(km, CORNERS["km_weights"][key], variance=variance)
    # .at() uses the same variance
    ref = CORNERS["km_weights"][key]
    first = km.at([ref["time"][3]])
    if km.groups == ("all",):
        assert first["std_error"][0] == pytest.approx(ref["std_error"][3], rel=1e-8)


def test_kaplan_meier_robust_variance_when_the_curve_reaches_zero() -> None:
    """At S = 0 R's robust std.err is 0 (Greenwood's is NaN) and the band is undefined."""
    ref = CORNERS["km_weights"]
    small = pl.DataFrame(ref["to_zero_data"])
    _assert_km_matches(sv.kaplan_meier(small, time="t", event="e", weights="w"), ref["to_zero"], variance="robust")
    _assert_km_matches(sv.kaplan_meier(small, time="t", event="e"), ref["to_zero_greenwood"], variance="greenwood")


# ---- concordance: tied.y and tied.xy as R ----------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "data", "formula", "options"),
    [
        ("lung_sex_ecog", "lung", "sex + ph.ecog", {}),
        ("veteran_trt", "veteran", "trt", {}),
        ("veteran_trt_weights", "veteran", "trt", {"weights": "w"}),
        ("veteran_celltype_strata", "veteran", "celltype", {"strata": "trt"}),
    ],
)
def test_concordance_counts_match_r(key: str, data: str, formula: str, options: dict) -> None:
    """survival::concordance's count vector exactly, on fits whose tied event times also tie
    on the risk score. Before: tied_y held tied.y + tied.xy (e.g. 39 where R has 18 + 21)."""
    df = load_data(data)
    df = df.with_columns(w=0.5 + (pl.int_range(1, df.height + 1) % 4) / 3)  # as the R script
    fit = sv.cox(df, formula, time="time", event="status", **options)
    ref = CORNERS["concordance"][key]
    got = fit.concordance_detail
    for mine, r in [("concordant", "concordant"), ("discordant", "discordant"), ("tied_x", "tied.x"),
                    ("tied_y", "tied.y"), ("tied_xy", "tied.xy")]:
        if "weights" in options:
            assert got[mine] == pytest.approx(ref[r], rel=1e-12), mine
        else:
            assert got[mine] == ref[r], mine
    assert fit.concordance == pytest.approx(ref["concordance"], rel=1e-12)


def test_fine_gray_not_converged_warns() -> None:
    """A fit stopped by max_iter says so: converged=False, the reason in warnings and a
    ConvergenceWarning (before: only in fit.warnings, nothing raised to the user)."""
    mg = load_data("mgus2")
    with pytest.warns(ConvergenceWarning, match="did not converge in 1 iterations"):
        fit = sv.fine_gray(mg, "age + male + hgb", time="etime", event="event", cause=1, max_iter=1)
    assert not fit.converged
    assert any("did not converge" in w for w in fit.warnings)
