"""counting_process: (start, stop] intervals with time-varying covariates, as R's tmerge builds them."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import polars as pl
import pytest

from cohort.tables import TABLES

REF = Path(__file__).parents[1] / "reference" / "derive"
ORIGIN = dt.date(2020, 1, 10)


def day(n: int) -> str:
    """The date ``n`` days after the origin (first session) of the spec cases."""
    return (ORIGIN + dt.timedelta(days=n)).isoformat()


def people(*ids):
    return [(p, "female", 1980, "2020-01-01", "TRD") for p in ids]


def iv(pid, n, dose_mg=35.0, weight_kg=70.0):
    return (pid, day(n), "racemic_ketamine", "iv", dose_mg, weight_kg)


COLS = ("tstart", "tstop", "event", "prior_events", "current_dose_mg_per_kg", "cumulative_dose_mg",
        "recent_sessions", "latest_madrs")


def intervals(df, pid, cols=COLS):
    return df.filter(pl.col("participant_id") == pid).select(cols).rows()


def test_covariates_change_at_their_dates_and_the_event_ends_follow_up(make_study):
    study = make_study(
        participants=people("a"),
        sessions=[iv("a", 0), iv("a", 20, 42.0), iv("a", 20, 7.0),  # two sessions on one day
                  iv("a", 50, 70.0)],
        assessments=[("a", day(-5), "MADRS", 34), ("a", day(20), "MADRS", 12),  # MADRS and sessions
                     ("a", day(60), "MADRS", 25)],                            # on day 20: one cut
        events=[("a", day(70), "relapse"), ("a", day(90), "relapse")],
    )
    out = study.derive("counting_process", admin_end="2021-01-01", window_days=30)
    assert intervals(out, "a") == [
        # start, stop, event, prior, dose/kg, cumulative, sessions in the last 30 days, MADRS
        (0, 20, 0, 0, 0.5, 35.0, 1, 34.0),       # the MADRS before the origin is the history
        (20, 30, 0, 0, 0.7, 84.0, 3, 12.0),      # the day's total dose per kg
        (30, 50, 0, 0, 0.7, 84.0, 2, 12.0),      # day 0 leaves the 30-day window
        (50, 60, 0, 0, 1.0, 154.0, 1, 12.0),     # both day-20 sessions leave it as day 50 enters
        (60, 70, 1, 0, 1.0, 154.0, 1, 25.0),     # first relapse: follow-up ends
    ]
    assert out["start_years"].to_list() == pytest.approx([t / 365.25 for t in (0, 20, 30, 50, 60)])
    assert out["start_date"][0] == ORIGIN and out["stop_date"][-1] == ORIGIN + dt.timedelta(days=70)


def test_edge_cases_of_follow_up(make_study):
    study = make_study(
        participants=people("origin_day", "same_day_exit", "no_follow_up", "died_first",
                            "after_withdrawal", "no_sessions"),
        sessions=[iv(p, 0) for p in ("origin_day", "same_day_exit", "no_follow_up", "died_first",
                                     "after_withdrawal")],
        events=[("origin_day", day(0), "relapse"), ("origin_day", day(40), "relapse"),
                ("same_day_exit", day(30), "relapse"), ("died_first", day(80), "relapse"),
                ("after_withdrawal", day(60), "relapse")],
        exits=[("same_day_exit", day(30), "withdrew"), ("no_follow_up", day(0), "withdrew"),
               ("died_first", day(50), "died"), ("after_withdrawal", day(45), "withdrew"),
               ("origin_day", day(100), "completed")],
    )
    out = study.derive("counting_process", admin_end="2021-01-01")
    cols = ("tstart", "tstop", "event", "prior_events")
    # an event on the origin day would need a zero-length interval: not counted
    assert intervals(out, "origin_day", cols) == [(0, 40, 1, 0)]
    assert intervals(out, "same_day_exit", cols) == [(0, 30, 1, 0)]
    assert intervals(out, "died_first", cols) == [(0, 50, 0, 0)]
    assert intervals(out, "after_withdrawal", cols) == [(0, 45, 0, 0)]
    # no follow-up after the origin, no origin: left out (see the diagnostics)
    assert set(out["participant_id"]) == {"origin_day", "same_day_exit", "died_first",
                                          "after_withdrawal"}


def test_recurrent_events_split_exactly_at_each_event(make_study):
    study = make_study(
        participants=people("a"),
        sessions=[iv("a", 0), iv("a", 30, 70.0)],          # a session on the event day
        events=[("a", day(30), "relapse"), ("a", day(30), "relapse"),  # recorded twice
                ("a", day(45), "relapse"), ("a", day(45), "hospitalisation")],
        exits=[("a", day(60), "completed")],
    )
    cols = ("tstart", "tstop", "event", "prior_events", "cumulative_dose_mg", "recent_sessions")
    single = study.derive("counting_process", admin_end="2021-01-01")
    assert intervals(single, "a", cols) == [(0, 30, 1, 0, 35.0, 1)]
    out = study.derive("counting_process", admin_end="2021-01-01", recurrent=True)
    assert intervals(out, "a", cols) == [
        (0, 30, 1, 0, 35.0, 1),     # the session on the event day holds after the event
        (30, 45, 1, 1, 105.0, 2),   # an event recorded twice on one day counts once
        (45, 60, 0, 2, 105.0, 2),
    ]


def test_enrolment_origin_keeps_participants_without_sessions(make_study):
    study = make_study(
        participants=people("a", "b"),
        sessions=[("a", "2020-01-11", "esketamine", "intranasal", 56.0, None)],  # no weight
        assessments=[("b", "2020-01-21", "MADRS", 20)],
        exits=[("a", "2020-02-01", "completed"), ("b", "2020-02-01", "completed")],
    )
    out = study.derive("counting_process", origin="enrolment", admin_end="2021-01-01")
    assert intervals(out, "a") == [(0, 10, 0, 0, None, 0.0, 0, None),
                                   (10, 31, 0, 0, None, 56.0, 1, None)]
    assert intervals(out, "b") == [(0, 20, 0, 0, None, 0.0, 0, None),
                                   (20, 31, 0, 0, None, 0.0, 0, 20.0)]
    assert out["concomitant_antidepressant"].null_count() == out.height  # baseline, unknown here


def test_death_as_the_event(make_study):
    study = make_study(participants=people("a"), sessions=[iv("a", 0), iv("a", 10)],
                       events=[("a", day(5), "relapse")], exits=[("a", day(20), "died")])
    out = study.derive("counting_process", event_type="death", admin_end="2021-01-01")
    assert intervals(out, "a", ("tstart", "tstop", "event")) == [(0, 10, 0), (10, 20, 1)]


# --- against R survival::tmerge (tests/reference/derive/make_reference.R) ---------------------

def load_reference_inputs(study) -> None:
    from spec_helpers import load_frames

    frames = {}
    for table, columns in TABLES.items():
        frames[table] = pl.read_csv(REF / "input" / f"{table}.csv",
                                    schema_overrides={c.name: c.dtype for c in columns})
    load_frames(study, frames)


@pytest.mark.parametrize(("recurrent", "file"), [(False, "counting_process.csv"),
                                                 (True, "counting_process_recurrent.csv")])
def test_matches_r_tmerge(study, recurrent, file):
    load_reference_inputs(study)
    meta = json.loads((REF / "tcount.json").read_text())
    ours = study.derive("counting_process", admin_end=meta["admin_end"], recurrent=recurrent,
                        event_type=meta["event_type"], window_days=meta["window_days"])
    ref = pl.read_csv(REF / file, null_values="NA", infer_schema_length=None)
    assert ours.height == ref.height
    assert ours.select(ref.columns).columns == ref.columns
    ours = ours.select(ref.columns).sort("participant_id", "tstart")
    ref = ref.sort("participant_id", "tstart")
    for col in ref.columns:
        a, b = ours[col].to_list(), ref[col].to_list()
        if col in ("current_dose_mg_per_kg", "cumulative_dose_mg", "latest_madrs"):
            assert all((x is None and y is None) or math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-9)
                       for x, y in zip(a, b, strict=True)), col
        else:
            assert a == b, col


# --- diagnostics ---------------------------------------------------------------------------------

def diagnostics(study, **params):
    out = study.derive("counting_process_diagnostics", **params)
    return {(s, c): (n, k, ex) for s, c, n, k, ex in out.rows()}


def test_diagnostics_report_drops_ties_and_changes_at_the_event(make_study):
    study = make_study(
        participants=people("a", "no_follow_up", "no_sessions"),
        sessions=[iv("a", 0), iv("a", 20), iv("a", 20), iv("a", 30), iv("a", 45),
                  iv("no_follow_up", 0)],
        assessments=[("a", day(-3), "MADRS", 30), ("a", day(30), "MADRS", 25)],
        events=[("a", day(0), "relapse"), ("a", day(30), "relapse"), ("a", day(30), "relapse"),
                ("a", day(40), "relapse")],
        exits=[("no_follow_up", day(0), "withdrew"), ("a", day(60), "completed")],
    )
    got = diagnostics(study, admin_end="2021-01-01", window_days=30)
    assert got["participants", "in the participants table"][:2] == (3, 3)
    assert got["participants", "dropped: no origin"] == (1, 1, ["no_sessions"])
    assert got["participants", "dropped: no follow-up after the origin"] == (1, 1, ["no_follow_up"])
    assert got["participants", "kept"] == (1, 1, ["a"])
    assert got["intervals", "intervals"][0] == 2          # (0, 20], (20, 30]
    for check in ("start >= stop", "overlapping the previous interval",
                  "gap after the previous interval"):
        assert got["intervals", check][0] == 0
    assert got["intervals", "events flagged"][0] == 1
    assert got["event", "on the origin day"][0] == 1      # ignored: no zero-length interval
    assert got["event", "at the end of follow-up"][0] == 2  # recorded twice, counted once
    assert got["event", "tied: same day as another record"][0] == 2
    assert got["event", "after the end of follow-up"][0] == 1
    assert got["session", "tied: same day as another record"][0] == 2
    assert got["session", "on an event day"][0] == 1      # holds after the event
    assert got["session", "after the first event"][0] == 1
    assert got["session", "participant left out"] == (1, 1, ["no_follow_up"])
    assert got["MADRS", "before the origin"][0] == 1      # history: the first value
    assert got["MADRS", "on an event day"][0] == 1
    # day 0 leaves the 30-day window on day 30, the end; the others after it
    assert got["session leaves window", "at the end of follow-up"][0] == 1
    assert got["session leaves window", "after the end of follow-up"][0] == 4


def test_diagnostics_agree_with_r_tmerge_counts(study):
    load_reference_inputs(study)
    meta = json.loads((REF / "tcount.json").read_text())
    for mode, recurrent, file in (("single", False, "counting_process.csv"),
                                  ("recurrent", True, "counting_process_recurrent.csv")):
        got = diagnostics(study, admin_end=meta["admin_end"], recurrent=recurrent)
        ref = pl.read_csv(REF / file, null_values="NA", infer_schema_length=None)
        assert got["intervals", "intervals"][0] == ref.height
        assert got["intervals", "events flagged"][0] == ref["event"].sum()
        # R was given the counted events and every MADRS; tmerge's tcount places them
        madrs, event = meta[mode]["latest_madrs"], meta[mode]["event"]
        assert got["MADRS", "before the origin"][0] == madrs["early"]
        assert got["MADRS", "on the origin day"][0] == madrs["leading"]
        assert got["MADRS", "during follow-up"][0] == madrs["within"] + madrs["boundary"]
        assert got["MADRS", "at the end of follow-up"][0] == madrs["trailing"]
        assert got["MADRS", "after the end of follow-up"][0] == madrs["late"]
        assert got["MADRS", "tied: same day as another record"][0] == madrs["tied"]
        assert (got["event", "during follow-up"][0] + got["event", "at the end of follow-up"][0]
                == event["within"] + event["boundary"] + event["trailing"])


def test_diagnostics_build_on_the_intervals_of_counting_process():
    from cohort.derive import derivations

    d = derivations()
    diagnostics = d["counting_process_diagnostics"]
    # one construction of the intervals: the diagnostics read counting_process itself and
    # the same period at risk, not a copy of them
    assert "counting_process" in diagnostics.uses
    assert set(d["counting_process"].needs(d)) < set(diagnostics.needs(d))
    assert d["counting_process"].parameters == diagnostics.parameters
