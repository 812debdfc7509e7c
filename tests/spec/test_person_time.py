"""person_time: follow-up split by calendar year, age band and exposure band; events per stratum."""

from __future__ import annotations

import polars as pl
import pytest


def session(pid, date, dose_mg):
    return (pid, date, "racemic_ketamine", "iv", dose_mg, 70.0)


def test_splits_at_year_age_band_and_dose_band(make_study):
    study = make_study(
        participants=[("a", "female", 1970, "2019-12-01", "TRD"),
                      ("jan1", "female", 1970, "2020-11-01", "TRD"),
                      ("big", "male", 1990, "2020-05-01", "MDD"),
                      ("no_sessions", "male", 1990, "2020-05-01", "MDD"),
                      ("no_follow_up", "male", 1990, "2020-05-01", "MDD")],
        sessions=[session("a", "2019-12-20", 600.0), session("a", "2020-01-10", 500.0),
                  session("jan1", "2020-12-01", 35.0),
                  session("big", "2020-06-01", 2500.0), session("big", "2020-06-11", 3000.0),
                  session("no_follow_up", "2020-06-01", 35.0)],
        events=[("a", "2020-03-01", "relapse"), ("a", "2020-05-01", "relapse"),
                ("jan1", "2021-01-01", "relapse")],
        exits=[("big", "2020-06-21", "completed"), ("no_follow_up", "2020-06-01", "withdrew"),
               ("jan1", "2021-06-01", "completed")],
    )
    out = study.derive("person_time", admin_end="2022-01-01")
    assert out.select("age_band", "sex", "exposure_band", "calendar_year", "person_days", "events",
                      "participants").rows() == [
        # two bands crossed on the origin day; >= 5 g from the day after the second session
        ("30-39", "male", "2-<5 g", 2020, 10, 0, 1),
        ("30-39", "male", ">=5 g", 2020, 10, 0, 1),
        # a: 49 in 2019, 50 from 1 January 2020; the 1.1 g reached on 10 January counts from the 11th
        ("40-49", "female", "<1 g", 2019, 11, 0, 1),
        ("50-59", "female", "<1 g", 2020, 10 + 30, 0, 2),    # a's 10 days and jan1's December
        ("50-59", "female", "<1 g", 2021, 1, 1, 1),          # an event on 1 January is in its year
        ("50-59", "female", "1-<2 g", 2020, 51, 1, 1),       # follow-up ends at the first event
    ]
    assert out["person_years"].to_list() == pytest.approx([d / 365.25 for d in out["person_days"]])
    assert out["exposure_level"].to_list() == [2, 3, 0, 0, 0, 1]


def test_other_bands_and_agreement_with_time_to_event(simulated_study):
    tte = simulated_study.derive("time_to_event")
    out = simulated_study.derive("person_time", age_band_years=5, dose_bands_g=[0.5, 3])
    assert out["person_days"].sum() == tte["time_days"].sum()
    assert out["events"].sum() == tte["event"].sum()
    assert set(out["exposure_band"]) <= {"<0.5 g", "0.5-<3 g", ">=3 g"}
    assert all(int(b.split("-")[1]) - int(b.split("-")[0]) == 4 for b in out["age_band"])
    assert out.select(pl.col("person_days").min()).item() > 0
    # one stratum for everyone when there are no dose bands
    flat = simulated_study.derive("person_time", dose_bands_g=[])
    assert set(flat["exposure_band"]) == {"all"}
    assert flat["person_days"].sum() == tte["time_days"].sum()
