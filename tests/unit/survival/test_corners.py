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
import pytest
from survival_ref import REF, load_data, load_ref

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
