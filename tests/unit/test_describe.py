"""cohort.describe against base-R computations (tests/reference/describe/make_reference.R)."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cohort.describe import (
    REDACTED,
    attrition,
    follow_up_summary,
    standardised_mean_difference,
    table1,
)
from cohort.errors import ModelSpecError
from cohort.report import redact_count

REF = Path(__file__).parents[1] / "reference" / "describe"
CONT = ("age", "weight", "prior")
CATS = ("sex", "diagnosis")


@pytest.fixture(scope="module")
def data() -> pl.DataFrame:
    return pl.read_csv(REF / "table1_input.csv", null_values=[""])


@pytest.fixture(scope="module")
def ref() -> dict:
    return json.loads((REF / "table1_reference.json").read_text())


def _subset(data: pl.DataFrame, groups: list[str]) -> pl.DataFrame:
    return data.filter(pl.col("group").is_in(groups))


def _cell(t, variable, group, kind, level=None):
    c = t.cells.filter((pl.col("variable") == variable) & (pl.col("group") == group)
                       & (pl.col("kind") == kind))
    if level is not None:
        c = c.filter(pl.col("level") == level)
    assert c.height == 1, (variable, group, kind, level)
    return c.row(0, named=True)


@pytest.mark.parametrize("case", ["two_groups", "three_groups"])
def test_cells_match_r(data, ref, case):
    r = ref[case]
    t = table1(_subset(data, r["groups"]), by="group", variables=[*CONT, *CATS], test=True)
    assert t.groups == tuple(r["groups"])
    for g, cell in r["cells"].items():
        assert _cell(t, "n", g, "n")["count"] == cell["n"]
        for v in CONT:
            c = _cell(t, v, g, "continuous")
            assert c["count"] == cell[v]["n"]
            for key in ("mean", "sd", "median", "q1", "q3"):
                assert c[key] == pytest.approx(cell[v][key], rel=1e-12, abs=1e-12), (g, v, key)
        for v in CATS:
            for level, n, pct in zip(cell[v]["levels"], cell[v]["counts"], cell[v]["percent"],
                                     strict=True):
                c = _cell(t, v, g, "categorical", level)
                assert c["count"] == n
                assert c["percent"] == pytest.approx(pct, rel=1e-12)
    # missing lines: only variables with missing values overall, percent of all rows
    assert set(t.cells.filter(pl.col("kind") == "missing")["variable"].unique()) == {"weight",
                                                                                     "diagnosis"}
    for g, cell in r["cells"].items():
        assert _cell(t, "diagnosis", g, "missing")["count"] == cell["diagnosis"]["missing"]
        assert _cell(t, "diagnosis", g, "missing")["percent"] == pytest.approx(
            cell["diagnosis"]["missing_percent"], rel=1e-12)
        assert _cell(t, "weight", g, "missing")["count"] == cell["weight"]["missing"]


@pytest.mark.parametrize("case", ["two_groups", "three_groups"])
def test_smd_and_tests_match_r(data, ref, case):
    r = ref[case]
    sub = _subset(data, r["groups"])
    t = table1(sub, by="group", variables=[*CONT, *CATS], test=True)
    t_nn = table1(sub, by="group", variables=list(CONT), nonnormal=list(CONT), test=True)
    tests = {row["variable"]: row for row in t.tests.iter_rows(named=True)}
    tests_nn = {row["variable"]: row for row in t_nn.tests.iter_rows(named=True)}
    for v in CONT:
        expect = r["tests"][v]
        assert tests[v]["smd"] == pytest.approx(expect["smd"], rel=1e-10)
        assert tests[v]["statistic"] == pytest.approx(expect["anova_statistic"], rel=1e-9)
        assert tests[v]["p_value"] == pytest.approx(expect["anova_p"], rel=1e-8)
        assert tests_nn[v]["test"] == "kruskal"
        assert tests_nn[v]["statistic"] == pytest.approx(expect["kruskal_statistic"], rel=1e-9)
        assert tests_nn[v]["p_value"] == pytest.approx(expect["kruskal_p"], rel=1e-8)
    for v in CATS:
        expect = r["tests"][v]
        assert tests[v]["smd"] == pytest.approx(expect["smd"], rel=1e-10)
        assert tests[v]["statistic"] == pytest.approx(expect["chisq_statistic"], rel=1e-9)
        assert tests[v]["df"] == expect["chisq_df"]
        assert tests[v]["p_value"] == pytest.approx(expect["chisq_p"], rel=1e-8)


def test_follow_up_summary_matches_r_reverse_km(data, ref):
    s = follow_up_summary(data, time="time", event="event", by="group")
    overall = follow_up_summary(data, time="time", event="event")
    rows = {r["group"]: r for r in s.summary.iter_rows(named=True)}
    rows["all"] = overall.summary.row(0, named=True)
    for g, expect in ref["follow_up"].items():
        row = rows[g]
        assert row["participants"] == expect["participants"]
        assert row["events"] == expect["events"]
        assert row["person_years"] == pytest.approx(expect["person_time"], rel=1e-12)
        for ours, theirs in (("median_follow_up", "median"), ("conf_low", "conf_low"),
                             ("conf_high", "conf_high"), ("q1_follow_up", "q1"),
                             ("q3_follow_up", "q3")):
            if expect[theirs] == "NA":  # not reached, as R
                assert row[ours] is None
            else:
                assert row[ours] == pytest.approx(expect[theirs], rel=1e-10), (g, ours)
    reasons = overall.censoring
    assert reasons["n"].sum() == data.height
    assert reasons.filter(pl.col("reason") == "event")["n"].item() == data["event"].sum()


def test_summary_text_and_layout(data):
    t = table1(data, by="group", variables=["age", "sex", "prior"], nonnormal=["prior"])
    assert t.summary.columns == ["variable", "level", "statistic", "overall", "intranasal", "iv",
                                 "oral", "smd"]
    age = t.summary.filter(pl.col("variable") == "age").row(0, named=True)
    x = data["age"].to_numpy()
    assert age["overall"] == f"{x.mean():.2f} ({x.std(ddof=1):.2f})"
    prior = t.summary.filter(pl.col("variable") == "prior").row(0, named=True)
    q = np.quantile(data["prior"].to_numpy(), [0.5, 0.25, 0.75])
    assert prior["overall"] == f"{q[0]:.2f} [{q[1]:.2f}, {q[2]:.2f}]"
    assert prior["statistic"] == "median [IQR]"
    # smd shown once per variable
    assert t.summary.filter(pl.col("variable") == "sex")["smd"].null_count() == 1
    html = t.to_html()
    assert html.startswith("<table") and "median [IQR]" in html
    json.dumps(t.to_dict())


def test_no_by_and_pandas_input(data):
    t = table1(data.select("age", "sex").to_pandas())
    assert t.groups == ()
    assert t.summary.columns == ["variable", "level", "statistic", "overall", "smd"]
    assert t.tests["smd"].null_count() == t.tests.height


def test_boolean_and_numeric_categorical():
    df = pl.DataFrame({"g": ["a", "a", "b", "b"], "flag": [True, False, True, True],
                       "stage": [1, 2, 2, 3]})
    t = table1(df, by="g", categorical=["stage"])
    assert t.cells.filter(pl.col("variable") == "flag")["level"].unique().sort().to_list() == [
        "false", "true"]
    assert t.tests.filter(pl.col("variable") == "stage")["type"].item() == "categorical"


def test_standardised_mean_difference_binary_formula():
    a = ["y"] * 30 + ["n"] * 70
    b = ["y"] * 50 + ["n"] * 50
    p1, p2 = 0.3, 0.5
    expected = abs(p1 - p2) / math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / 2)
    assert standardised_mean_difference(a, b, categorical=True) == pytest.approx(expected, rel=1e-12)
    assert math.isnan(standardised_mean_difference([1.0], [2.0, 3.0]))


def test_redaction_rounds_and_suppresses():
    df = pl.DataFrame({"g": ["a"] * 23 + ["b"] * 41,
                       "x": ["rare"] * 3 + ["common"] * 20 + ["rare"] * 12 + ["common"] * 29,
                       "v": [1.0] * 23 + [2.0] * 41})
    t = table1(df, by="g", variables=["x", "v"])
    r = t.redacted()
    assert r.redaction == {"threshold": 7, "rounding": 5}
    joined = t.cells.join(r.cells, on=["variable", "level", "group", "kind"], suffix="_r",
                          nulls_equal=True)
    for row in joined.iter_rows(named=True):
        assert row["count_r"] == redact_count(row["count"])
        if row["kind"] == "categorical":
            if row["count_r"] is None:
                assert row["percent_r"] is None
            else:
                assert row["percent_r"] == pytest.approx(
                    100 * row["count_r"] / redact_count(row["denominator"]))
    rare_a = r.summary.filter((pl.col("variable") == "x") & (pl.col("level") == "rare"))["a"].item()
    assert rare_a == REDACTED
    assert r.summary.filter(pl.col("variable") == "n")["a"].item() == "25"
    with pytest.raises(ModelSpecError, match="already redacted"):
        r.redacted()


def test_redaction_suppresses_small_continuous_groups():
    df = pl.DataFrame({"g": ["a"] * 5 + ["b"] * 20, "v": list(range(25))}).with_columns(
        pl.col("v").cast(pl.Float64))
    r = table1(df, by="g").redacted()
    row = r.summary.filter(pl.col("variable") == "v").row(0, named=True)
    assert row["a"] == REDACTED and row["b"] != REDACTED


def test_errors_name_columns():
    df = pl.DataFrame({"route": ["iv", "oral"], "age": [30.0, 40.0],
                       "enrolled": [date(2020, 1, 1), date(2021, 1, 1)]})
    with pytest.raises(ModelSpecError, match="'agee'.*did you mean 'age'"):
        table1(df, variables=["agee"])
    with pytest.raises(ModelSpecError, match=r"enrolled \(Date\)"):
        table1(df, by="route")
    with pytest.raises(ModelSpecError, match="grouping column"):
        table1(df, by="route", variables=["route", "age"])
    with pytest.raises(ModelSpecError, match="clash"):
        table1(pl.DataFrame({"g": ["overall", "x"], "a": [1, 2]}), by="g")


def test_missing_by_is_warned():
    df = pl.DataFrame({"g": ["a", "b", None, "a"], "x": [1.0, 2.0, 3.0, 4.0]})
    t = table1(df, by="g")
    assert t.summary.filter(pl.col("variable") == "n").select("overall", "a", "b").row(0) == (
        "4", "2", "1")
    assert any("missing 'g'" in w for w in t.warnings)


def test_attrition_flow_and_redaction():
    enrolled = pl.DataFrame({"participant_id": list(range(100))})
    sessions = pl.DataFrame({"participant_id": [i for i in range(90) for _ in range(3)] + [500]})
    followed = list(range(3, 90))
    a = attrition([("enrolled", enrolled), ("with a session", sessions),
                   ("followed up", followed)], reasons={"followed up": "no follow-up after origin"})
    assert a.summary.select("n", "excluded").rows() == [(100, None), (90, 10), (87, 3)]
    assert a.summary["percent_of_start"].to_list() == pytest.approx([100.0, 90.0, 87.0])
    assert a.excluded_ids["followed up"] == (0, 1, 2)
    assert any("not in the first step" in w for w in a.warnings)
    r = a.redacted()
    assert r.summary.select("n", "excluded").rows() == [(100, None), (90, 10), (85, None)]
    assert r.excluded_ids == {}
    json.dumps(r.to_dict())
    r.plot()


def test_attrition_errors():
    with pytest.raises(ModelSpecError, match="no column 'participant_id'"):
        attrition({"all": pl.DataFrame({"pid": [1]})})
    with pytest.raises(ModelSpecError, match="no steps"):
        attrition({})


def test_follow_up_summary_errors_and_days():
    df = pl.DataFrame({"time_days": [365.25, -1.0], "event": [1, 0]})
    with pytest.raises(ModelSpecError, match=r"rows \[1\]"):
        follow_up_summary(df, time="time_days", unit="days", censor_reason=None)
    ok = follow_up_summary(df.head(1), time="time_days", unit="days", censor_reason=None)
    assert ok.summary["person_years"].item() == pytest.approx(1.0)
    red = follow_up_summary(pl.DataFrame({"time_years": [1.0] * 12, "event": [1] * 3 + [0] * 9,
                                          "censor_reason": [None] * 3 + ["exit: completed"] * 9})
                            ).redacted()
    assert red.summary.select("participants", "events").row(0) == (10, None)
    json.dumps(red.to_dict())


def test_plot_returns_figure(data):
    fig = table1(data, by="group", variables=["age", "sex"]).plot()
    assert fig.axes and len(fig.axes[0].collections) == 1
