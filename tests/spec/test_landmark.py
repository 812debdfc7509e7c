"""landmark: who is still at risk at each landmark, covariate history, time from the landmark."""

from __future__ import annotations

import datetime as dt

import polars as pl

ORIGIN = dt.date(2020, 1, 10)
D = dt.date.fromisoformat


def day(n: int) -> str:
    return (ORIGIN + dt.timedelta(days=n)).isoformat()


def people(*ids):
    return [(p, "female", 1980, "2020-01-01", "TRD") for p in ids]


def iv(pid, n, dose_mg=35.0):
    return (pid, day(n), "racemic_ketamine", "iv", dose_mg, 70.0)


def test_risk_set_and_history_at_each_landmark(make_study):
    # landmarks of 1 and 3 months: 2020-02-10 (day 31) and 2020-04-10 (day 91)
    study = make_study(
        participants=people("a", "event_before", "event_on_landmark", "exit_on_landmark",
                            "no_sessions"),
        sessions=[iv("a", 0), iv("a", 31, 70.0), iv("a", 31, 7.0), iv("a", 60)]
                 + [iv(p, 0) for p in ("event_before", "event_on_landmark", "exit_on_landmark")],
        assessments=[("a", day(0), "MADRS", 30), ("a", day(31), "MADRS", 12),
                     ("a", day(0), "MoCA", 27), ("a", day(95), "MoCA", 25)],
        events=[("a", day(120), "relapse"), ("event_before", day(20), "relapse"),
                ("event_on_landmark", day(31), "relapse")],
        exits=[("a", day(200), "completed"), ("exit_on_landmark", day(31), "withdrew"),
               ("event_before", day(200), "completed"), ("event_on_landmark", day(200), "completed")],
    )
    out = study.derive("landmark", landmarks=[1, 3], admin_end="2021-01-01")
    got = out.select("landmark_months", "participant_id", "landmark_date", "time_days", "event",
                     "cumulative_dose_mg", "sessions_so_far", "current_dose_mg_per_kg",
                     "days_since_last_session", "latest_madrs", "latest_moca").rows()
    assert got == [
        # records on the landmark day are history (two sessions that day: their total per kg)
        (1, "a", D("2020-02-10"), 89, 1, 112.0, 3, 1.1, 0, 12.0, 27.0),
        (3, "a", D("2020-04-10"), 29, 1, 147.0, 4, 0.5, 31, 12.0, 27.0),  # MoCA of day 95: later
    ]
    # an event or exit on or before the landmark: not at risk there; no session: no origin
    assert set(out["participant_id"]) == {"a"}


def test_horizon_censors_and_agreement_with_time_to_event(simulated_study):
    tte = simulated_study.derive("time_to_event")
    out = simulated_study.derive("landmark", landmarks=[0, 6])
    # at landmark 0 every participant with follow-up is at risk, with the time_to_event times
    zero = out.filter(pl.col("landmark_months") == 0)
    at_risk = tte.filter(pl.col("time_days") > 0)
    assert zero.select("participant_id", "time_days", "event", "censor_reason").equals(
        at_risk.select("participant_id", "time_days", "event", "censor_reason"))
    six = out.filter(pl.col("landmark_months") == 6)
    assert (six["landmark_date"] > six["origin_date"]).all()
    assert six.join(tte, on="participant_id").select(
        (pl.col("end_date") == pl.col("end_date_right")).all()).item()
    horizon = simulated_study.derive("landmark", landmarks=[6], horizon_months=12)
    assert horizon.height == six.height
    assert (horizon["time_days"] <= 366).all()
    cut = horizon.filter(pl.col("censor_reason") == "horizon")
    assert cut.height > 0 and (cut["event"] == 0).all()
    assert horizon["event"].sum() <= six["event"].sum()
