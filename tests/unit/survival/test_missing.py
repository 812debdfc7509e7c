"""Rows with missing values in the survival models behave as R's na.omit (and as lmm/gee).

R's numbers: tests/reference/survival/make_reference_missing.R -> missing.json, on survival::lung
as shipped (lung_na.csv, with its NAs; ``time_na`` is ``time`` with every 20th row set to NA).
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest
from survival_ref import arr, load_data, load_ref

from cohort import survival as sv
from cohort._missing import MISSING
from cohort.errors import ModelSpecError
from cohort.longitudinal._design import build_design

REF = load_ref("missing")
LUNG = load_data("lung_na")


def _note_rows(note: str, column: str) -> list[int]:
    """The row numbers the note gives for ``column``."""
    part = re.search(rf"'{re.escape(column)}' at rows? ([0-9, .]+?) \(", note).group(1)
    return [int(x) for x in part.split(", ") if x != "..."]


def test_na_per_column_as_in_r():
    for c, k in REF["na_per_column"].items():
        assert LUNG[c].null_count() == k, c


def test_cox_drops_incomplete_rows_as_r_and_states_them():
    r = REF["cox_age_ecog_wtloss"]
    fit = sv.cox(LUNG, "age + `ph.ecog` + `wt.loss`", time="time", event="status")
    assert fit.n == r["n"] == LUNG.height - r["n_deleted"] and fit.n_events == r["nevent"]
    np.testing.assert_allclose(fit.summary["estimate"].to_numpy(), arr(r["estimate"]), rtol=1e-9)
    np.testing.assert_allclose(fit.summary["std_error"].to_numpy(), arr(r["std_error"]), rtol=1e-7)
    note = next(w for w in fit.warnings if "na.omit" in w)
    assert note.startswith(f"{r['n_deleted']} row(s) with missing values left out")
    assert _note_rows(note, "ph.ecog") == np.flatnonzero(LUNG["ph.ecog"].is_null().to_numpy()).tolist()
    assert _note_rows(note, "wt.loss")[:10] == np.flatnonzero(LUNG["wt.loss"].is_null().to_numpy())[:10].tolist()


def test_cox_missing_time_dropped_as_r():
    r = REF["cox_time_na"]
    fit = sv.cox(LUNG, "age + `ph.ecog`", time="time_na", event="status")
    assert fit.n == r["n"]
    np.testing.assert_allclose(fit.summary["estimate"].to_numpy(), arr(r["estimate"]), rtol=1e-9)
    note = next(w for w in fit.warnings if "na.omit" in w)
    assert note.startswith(f"{r['n_deleted']} row(s)")
    assert _note_rows(note, "time_na") == [i for i in r["deleted_rows0"] if i % 20 == 19][:10]
    assert _note_rows(note, "ph.ecog") == [i for i in r["deleted_rows0"] if i % 20 != 19]


def test_km_missing_time_dropped_as_survfit():
    for key, by in (("km_time_na", None), ("km_time_na_by_ecog", "ph.ecog")):
        r = REF[key]
        km = sv.kaplan_meier(LUNG, time="time_na", event="status", by=by)
        s = km.summary
        np.testing.assert_allclose(s["survival"].to_numpy(), arr(r["survival"]), rtol=1e-12)
        np.testing.assert_array_equal(s["n_risk"].to_numpy(), arr(r["n_risk"]))
        assert sum(np.atleast_1d(r["n"])) == LUNG.height - r["n_deleted"]
        assert any(w.startswith(f"{r['n_deleted']} row(s) with missing values") for w in km.warnings)


def test_logrank_missing_time_dropped_as_survdiff():
    r = REF["logrank_time_na_sex"]
    lr = sv.logrank(LUNG, time="time_na", event="status", by="sex")
    assert lr.statistic == pytest.approx(r["statistic"], rel=1e-10)
    assert any(w.startswith(f"{r['n_deleted']} row(s)") for w in lr.warnings)


def test_other_models_drop_and_state():
    d = LUNG.with_columns(cause=pl.when(pl.col("status") == 1).then(1 + pl.col("sex") - 1).otherwise(0))
    ci = sv.cumulative_incidence(d, time="time_na", event="cause", cause=1)
    assert ci.warnings[0].startswith("11 row(s)")
    fg = sv.fine_gray(d, "age", time="time_na", event="cause", cause=1)
    assert fg.warnings[0].startswith("11 row(s)")
    rates = sv.incidence_rate(LUNG, events="status", person_time="time_na", by="sex")
    assert rates.summary["person_time"].sum() == LUNG["time_na"].sum()
    assert rates.warnings[0].startswith("11 row(s)")


@pytest.mark.parametrize("call", [
    lambda d: sv.cox(d, "age + `ph.ecog`", time="time_na", event="status", missing="raise"),
    lambda d: sv.kaplan_meier(d, time="time_na", event="status", missing="raise"),
    lambda d: sv.logrank(d, time="time_na", event="status", by="sex", missing="raise"),
    lambda d: sv.cumulative_incidence(d, time="time_na", event="status", missing="raise"),
    lambda d: sv.fine_gray(d, "age", time="time_na", event="status", missing="raise"),
    lambda d: sv.incidence_rate(d, events="status", person_time="time_na", missing="raise"),
])
def test_raise_refuses_in_one_line(call):
    with pytest.raises(ModelSpecError) as exc:
        call(LUNG)
    msg = str(exc.value)
    assert "\n" not in msg and "'time_na' at rows 19, 39" in msg and "(11 rows)" in msg
    assert "missing='drop'" in msg


def test_accepted_values_are_those_of_lmm_gee():
    assert MISSING == ("drop", "raise")
    for bad in ("error", "omit"):
        with pytest.raises(ModelSpecError, match="use one of 'drop', 'raise'"):
            sv.cox(LUNG, "age", time="time", event="status", missing=bad)
        with pytest.raises(ModelSpecError, match="use one of 'drop', 'raise'"):
            sv.kaplan_meier(LUNG, time="time", event="status", missing=bad)
        with pytest.raises(ModelSpecError, match="use one of 'drop', 'raise'"):
            build_design(LUNG, "time ~ age", random=None, group_cols=["inst"], model="gee", missing=bad)


def test_row_numbers_of_later_errors_are_the_input_rows():
    d = LUNG.with_columns(time_na=pl.when(pl.int_range(pl.len()) == 30).then(-1).otherwise(pl.col("time_na")))
    with pytest.raises(ModelSpecError, match="negative values at row 30 "):
        sv.kaplan_meier(d, time="time_na", event="status")
    with pytest.raises(ModelSpecError, match="negative values at row 30 "):
        sv.cox(d, "age", time="time_na", event="status")
