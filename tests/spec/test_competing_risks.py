"""competing_risks: the first of several causes, cause-coded in the order given."""

from __future__ import annotations

import datetime as dt

import pytest

from cohort.errors import UserError

ORIGIN = dt.date(2020, 1, 10)


def day(n: int) -> str:
    return (ORIGIN + dt.timedelta(days=n)).isoformat()


def people(*ids):
    return [(p, "female", 1980, "2020-01-01", "TRD") for p in ids]


def rows(df, *cols):
    return {r[0]: r[1:] for r in df.select("participant_id", *cols).rows()}


def test_first_cause_wins_and_others_censor(make_study):
    ids = ("kud", "died", "withdrew", "lost", "same_day", "origin_day", "relapse_only",
           "no_sessions", "after_exit")
    study = make_study(
        participants=people(*ids),
        sessions=[(p, day(0), "racemic_ketamine", "iv", 35.0, 70.0) for p in ids
                  if p != "no_sessions"],
        events=[("kud", day(100), "ketamine_use_disorder"), ("died", day(300), "ketamine_use_disorder"),
                ("same_day", day(80), "ketamine_use_disorder"),
                ("origin_day", day(0), "ketamine_use_disorder"), ("relapse_only", day(20), "relapse"),
                ("after_exit", day(90), "ketamine_use_disorder")],
        exits=[("kud", day(200), "died"), ("died", day(150), "died"),
               ("withdrew", day(60), "withdrew"), ("lost", day(70), "lost_to_follow_up"),
               ("same_day", day(80), "died"), ("after_exit", day(50), "completed"),
               ("origin_day", day(300), "completed")],
    )
    out = study.derive("competing_risks", admin_end="2021-01-01")
    got = rows(out, "time_days", "cause", "cause_name", "n_causes_same_day", "censor_reason",
               "event_source_table")
    assert got == {
        "kud": (100, 1, "ketamine_use_disorder", 1, None, "events"),
        "died": (150, 2, "death", 1, None, "exits"),          # death before the use disorder
        "withdrew": (60, 3, "withdrawal", 1, None, "exits"),
        "lost": (70, 0, "censored", 0, "exit: lost_to_follow_up", None),
        "same_day": (80, 1, "ketamine_use_disorder", 2, None, "events"),  # first in the list
        "origin_day": (300, 0, "censored", 0, "exit: completed", None),   # not on the origin day
        "relapse_only": (20, 0, "censored", 0, "last contact", None),     # not a cause
        "after_exit": (50, 0, "censored", 0, "exit: completed", None),
    }
    # the order of the list is the code; a cause not listed censors
    other = study.derive("competing_risks", causes=["death", "ketamine_use_disorder"],
                         admin_end="2021-01-01", include_origin_day=True)
    got = rows(other, "time_days", "cause", "censor_reason")
    assert {k: got[k] for k in ("kud", "died", "withdrew", "same_day", "origin_day")} == {
        "kud": (100, 2, None), "died": (150, 1, None), "withdrew": (60, 0, "exit: withdrew"),
        "same_day": (80, 1, None), "origin_day": (0, 2, None)}


def test_one_cause_is_time_to_event(simulated_study):
    for cause in ("relapse", "death"):
        cr = simulated_study.derive("competing_risks", causes=[cause])
        tte = simulated_study.derive("time_to_event", event_type=cause)
        assert cr.select("participant_id", "end_date", "time_days", "censor_reason",
                         "event_source_line").equals(
            tte.select("participant_id", "end_date", "time_days", "censor_reason",
                       "event_source_line"))
        assert (cr["cause"] == tte["event"]).all()


def test_unknown_cause_is_a_clear_error(make_study):
    study = make_study(participants=people("a"))
    with pytest.raises(UserError, match="causes 'deth' is not an event type, death or withdrawal; "
                       "closest: death; allowed: relapse, .*, death, withdrawal$"):
        study.derive("competing_risks", causes=["death", "deth"])
