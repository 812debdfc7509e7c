"""The disclosure rules of cohort.report.disclosure, on small data whose counts are known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cohort import survival as sv
from cohort.report import NOT_FOR_RELEASE, Disclosure, HtmlReport, analysis_arguments


def _is_released(n: int | None, *, threshold: int = 7, rounding: int = 5) -> bool:
    return n is None or n == 0 or (n > threshold and n % rounding == 0)


def _cohort(n: int = 400, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    t = rng.exponential(3.0, n)
    c = rng.uniform(0.5, 5.0, n)
    return pl.DataFrame({"t": np.minimum(t, c), "e": (t <= c).astype(int),
                         "g": rng.choice(["a", "b"], n)})


@pytest.mark.parametrize(("threshold", "rounding"), [(7, 5), (10, 10), (5, 3)])
def test_count_rule_takes_its_parameters(threshold: int, rounding: int) -> None:
    d = Disclosure(threshold=threshold, rounding=rounding)
    for n in range(0, 200):
        released = d.count(n)
        assert _is_released(released, threshold=threshold, rounding=rounding) or \
            released == rounding * round(n / rounding)
        if 1 <= n <= threshold:
            assert released is None
        elif n:
            assert released % rounding == 0 and abs(released - n) <= rounding / 2


def test_rounding_is_half_up_not_bankers() -> None:
    assert [Disclosure().count(n) for n in (12, 13, 17, 22.5)] == [10, 15, 15, 25]


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="rounding"):
        Disclosure(rounding=0)


def test_released_km_steps_are_released_counts() -> None:
    d = Disclosure()
    df = _cohort()
    km = d.kaplan_meier(df, time="t", event="e", by="g", grid=0.25)
    s = km.summary
    assert s.height > 5
    for col in ("n_risk", "n_event", "n_censor"):
        assert all(_is_released(v) for v in s[col].to_list()), col
    assert (s["n_risk"].drop_nulls() > 7).all()
    # every step ratio times the released risk set gives a released event count
    for g in km.groups:
        part = s.filter(pl.col("group") == g)
        prev = np.concatenate([[1.0], part["survival"].to_numpy()[:-1]])
        d_back = (1 - part["survival"].to_numpy() / prev) * part["n_risk"].to_numpy()
        assert np.allclose(d_back, part["n_event"].to_numpy())
        # the curve is exactly the product of the released counts
        expected = np.cumprod(1 - part["n_event"].to_numpy() / part["n_risk"].to_numpy())
        assert np.allclose(part["survival"].to_numpy(), expected)
    # times lie on the grid
    assert np.allclose(s["time"].to_numpy() / 0.25, np.round(s["time"].to_numpy() / 0.25))


def test_released_km_stays_close_to_the_data() -> None:
    df = _cohort(2000)
    raw = sv.kaplan_meier(df, time="t", event="e").at([1.0, 2.0, 3.0])["survival"].to_numpy()
    rel = Disclosure().kaplan_meier(df, time="t", event="e", grid=1 / 12)
    assert np.abs(rel.at([1.0, 2.0, 3.0])["survival"].to_numpy() - raw).max() < 0.03


def test_one_event_in_129_is_not_recoverable() -> None:
    df = pl.DataFrame({"t": [0.5] + [3.0] * 128, "e": [1] + [0] * 128})
    km = Disclosure().kaplan_meier(df, time="t", event="e", grid=0.25)
    assert km.summary["survival"].min() == 1.0
    assert int(km.summary["n_event"].sum()) == 0


def test_small_steps_are_merged_into_the_next() -> None:
    # 4 events a month for 6 months: each month alone would be suppressed
    df = pl.DataFrame({"t": [m / 12 for m in range(1, 7) for _ in range(4)] + [5.0] * 100,
                       "e": [1] * 24 + [0] * 100})
    s = Disclosure().kaplan_meier(df, time="t", event="e", grid=1 / 12).summary
    steps = s.filter(pl.col("n_event") > 0)["n_event"].to_list()
    assert steps and all(n >= 10 and n % 5 == 0 for n in steps)
    assert sum(steps) in (20, 25)


def test_a_group_too_small_to_show_has_no_curve() -> None:
    df = pl.DataFrame({"t": [1.0] * 100 + [2.0] * 5, "e": [1] * 20 + [0] * 80 + [1] * 5,
                       "g": ["big"] * 100 + ["small"] * 5})
    km = Disclosure().kaplan_meier(df, time="t", event="e", by="g", grid=1.0)
    assert km.groups == ("big",)


def test_cumulative_incidence_of_one_in_131_is_not_released() -> None:
    df = pl.DataFrame({"t": [i / 10 for i in range(1, 132)],
                       "cause": [1] + [2] * 30 + [0] * 100})
    ci = Disclosure().cumulative_incidence(df, time="t", event="cause", cause=1, grid=1.0)
    assert 1 / 131 not in ci.summary["estimate"].to_list()
    assert float(ci.summary["estimate"].max()) == 0.0


def test_cumulative_incidence_from_released_counts() -> None:
    rng = np.random.default_rng(3)
    n = 600
    df = pl.DataFrame({"t": rng.uniform(0.1, 5, n), "cause": rng.choice([0, 1, 2], n, p=[.5, .3, .2]),
                       "g": rng.choice(["a", "b"], n)})
    ci = Disclosure().cumulative_incidence(df, time="t", event="cause", cause=1, by="g",
                                           grid=0.25)
    s = ci.summary
    for col in ("n_risk", "n_event", "n_competing"):
        assert all(_is_released(v) for v in s[col].to_list()), col
    raw = sv.cumulative_incidence(df, time="t", event="cause", cause=1, by="g")
    assert ci.tests.equals(raw.tests)       # Gray's test of the data, statistic and p only
    assert np.abs(ci.at([2.0])["estimate"].to_numpy() - raw.at([2.0])["estimate"].to_numpy()
                  ).max() < 0.05


def test_logrank_table_withholds_what_undoes_the_rounding() -> None:
    df = _cohort()
    table = Disclosure().logrank_table(sv.logrank(df, time="t", event="e", by="g"))
    assert table.columns == ["group", "n", "observed", "expected"]
    for col in ("n", "observed", "expected"):
        assert all(_is_released(v) for v in table[col].to_list())


def test_percent_and_rates_use_released_counts() -> None:
    d = Disclosure()
    assert d.percent(3, 131) is None
    assert d.percent(42, 131) == pytest.approx(100 * 40 / 130)
    pt = pl.DataFrame({"band": ["<1 g", "1-2 g"], "events": [3, 42], "py": [100.0, 200.0]})
    rates = d.rates(pt, events="events", person_time="py", by="band", reference="<1 g")
    rows = {r["band"]: r for r in rates.to_dicts()}
    assert rows["<1 g"]["events"] is None and rows["<1 g"]["rate"] is None
    assert rows["1-2 g"]["events"] == 40 and rows["1-2 g"]["rate"] == pytest.approx(200.0)
    assert rows["1-2 g"]["rate_ratio"] is None               # the reference is suppressed


def test_without_disclosure_control_counts_and_curves_are_the_data_s() -> None:
    d = Disclosure(enabled=False)
    df = _cohort()
    assert d.count(3) == 3 and d.percent(3, 131) == pytest.approx(100 * 3 / 131)
    assert d.kaplan_meier(df, time="t", event="e", grid=1.0).summary.equals(
        sv.kaplan_meier(df, time="t", event="e").summary)


def test_outputs_are_stamped_not_for_release(tmp_path: Path) -> None:
    off, on = Disclosure(enabled=False), Disclosure()
    frame = pl.DataFrame({"n": [3]})
    off.write_json({"n": 3, "x": float("nan")}, tmp_path / "off.json")
    on.write_json({"n": 10}, tmp_path / "on.json")
    data = json.loads((tmp_path / "off.json").read_text())
    assert list(data)[0] == "not_for_release" and NOT_FOR_RELEASE in data["not_for_release"]
    assert data["x"] is None and data["disclosure"]["enabled"] is False
    assert "not_for_release" not in json.loads((tmp_path / "on.json").read_text())
    off.write_csv(frame, tmp_path / "off.csv")
    on.write_csv(frame, tmp_path / "on.csv")
    assert (tmp_path / "off.csv").read_text().startswith(f"# {NOT_FOR_RELEASE}")
    assert (tmp_path / "on.csv").read_text().startswith("n\n")
    assert NOT_FOR_RELEASE in HtmlReport("r", not_for_release=True).render()
    assert NOT_FOR_RELEASE not in HtmlReport("r").render()


def test_analysis_arguments_flag() -> None:
    args = analysis_arguments("x", ["--db", "a", "--out", "b", "--threshold", "10",
                                    "--rounding", "10", "--no-disclosure-control"])
    assert args.disclosure == Disclosure(threshold=10, rounding=10, enabled=False)


def test_counts_in_warnings_are_released() -> None:
    from cohort.describe import table1
    from cohort.report.disclosure import redact_text

    df = pl.DataFrame({"g": ["a"] * 20 + ["b"] * 20 + [None] * 3, "x": [1.0] * 43})
    t = table1(df, by="g")
    assert any(w.startswith("3 row(s)") for w in t.warnings)
    assert any(w.startswith("a few row(s)") for w in t.redacted().warnings)
    assert redact_text("in 2026, 12 participants on 0.5 mg/kg") == "in 2026, 10 participants on 0.5 mg/kg"
    assert Disclosure(enabled=False).text("3 rows") == "3 rows"


def test_no_curve_when_every_group_is_too_small() -> None:
    from cohort.errors import ModelSpecError

    df = pl.DataFrame({"t": [1.0, 2.0, 3.0], "e": [1, 0, 1]})
    with pytest.raises(ModelSpecError, match="7 or fewer participants"):
        Disclosure().kaplan_meier(df, time="t", event="e", grid=1.0)


def test_a_model_note_on_left_out_rows_releases_no_small_count() -> None:
    """A fit's note lists the rows it left out (for the analyst); released, neither the
    count nor the list (whose length is the count) gives 1-7 back."""
    import re

    import numpy as np
    import polars as pl

    from cohort import survival as sv
    from cohort.report.disclosure import Disclosure

    rng = np.random.default_rng(3)
    n = 200
    age = rng.normal(60, 8, n)
    age[[5, 17, 90]] = np.nan
    df = pl.DataFrame({"time": rng.exponential(5, n), "event": rng.integers(0, 2, n), "age": age})
    fit = sv.cox(df, "age", time="time", event="event")
    [note] = [w for w in fit.warnings if "age" in w]
    assert "at rows 5, 17, 90" in note  # the analyst sees which rows
    released = Disclosure().text(note)
    assert "at row" not in released and "17" not in released
    assert not any(1 <= int(x) <= 7 for x in re.findall(r"\d+", released)), released
