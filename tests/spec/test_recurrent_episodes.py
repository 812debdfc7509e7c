"""recurrent_episodes: calendar and gap time, episode numbers, AG and PWP risk sets."""

from __future__ import annotations

import datetime as dt

import polars as pl

ORIGIN = dt.date(2020, 1, 10)
COLS = ("episode", "tstart", "tstop", "gap_time", "event", "pwp_stratum", "censor_reason")


def day(n: int) -> str:
    return (ORIGIN + dt.timedelta(days=n)).isoformat()


def people(*ids):
    return [(p, "female", 1980, "2020-01-01", "TRD") for p in ids]


def iv(pid, n):
    return (pid, day(n), "racemic_ketamine", "iv", 35.0, 70.0)


def episodes(df, pid, cols=COLS):
    return df.filter(pl.col("participant_id") == pid).select(cols).rows()


def test_every_event_with_calendar_and_gap_time(make_study):
    study = make_study(
        participants=people("a", "ends_with_event", "none", "origin_day", "after_withdrawal",
                            "died_first", "no_follow_up", "no_sessions"),
        sessions=[iv(p, 0) for p in ("a", "ends_with_event", "none", "origin_day",
                                     "after_withdrawal", "died_first", "no_follow_up")],
        events=[("a", day(30), "relapse"), ("a", day(30), "relapse"), ("a", day(100), "relapse"),
                ("a", day(160), "relapse"), ("a", day(50), "remission"),
                ("ends_with_event", day(40), "relapse"), ("ends_with_event", day(90), "relapse"),
                ("origin_day", day(0), "relapse"), ("origin_day", day(20), "relapse"),
                ("after_withdrawal", day(10), "relapse"), ("after_withdrawal", day(70), "relapse"),
                ("died_first", day(90), "relapse")],
        exits=[("a", day(200), "completed"), ("ends_with_event", day(90), "withdrew"),
               ("none", day(60), "lost_to_follow_up"), ("origin_day", day(50), "completed"),
               ("after_withdrawal", day(40), "withdrew"), ("died_first", day(45), "died"),
               ("no_follow_up", day(0), "withdrew")],
    )
    out = study.derive("recurrent_episodes", admin_end="2021-01-01", pwp_max_stratum=3)
    assert episodes(out, "a") == [
        (1, 0, 30, 30, 1, 1, None),          # recorded twice on one day: one event
        (2, 30, 100, 70, 1, 2, None),
        (3, 100, 160, 60, 1, 3, None),
        (4, 160, 200, 40, 0, 3, "exit: completed"),  # pooled from stratum 3 on
    ]
    # event and exit on the same day: the event counts, no empty censored interval after it
    assert episodes(out, "ends_with_event") == [(1, 0, 40, 40, 1, 1, None),
                                                (2, 40, 90, 50, 1, 2, None)]
    assert episodes(out, "none") == [(1, 0, 60, 60, 0, 1, "exit: lost_to_follow_up")]
    assert episodes(out, "origin_day") == [(1, 0, 20, 20, 1, 1, None),
                                           (2, 20, 50, 30, 0, 2, "exit: completed")]
    assert episodes(out, "after_withdrawal") == [(1, 0, 10, 10, 1, 1, None),
                                                 (2, 10, 40, 30, 0, 2, "exit: withdrew")]
    assert episodes(out, "died_first") == [(1, 0, 45, 45, 0, 1, "exit: died")]
    assert set(out["participant_id"]) == {"a", "ends_with_event", "none", "origin_day",
                                          "after_withdrawal", "died_first"}
    a = out.filter(pl.col("participant_id") == "a")
    assert a["event_source_line"].to_list() == [2, 4, 5, None]  # the first record of the day
    assert a["prior_events"].to_list() == [0, 1, 2, 3]
    assert out["in_ag_risk_set"].all()
    assert out["gap_years"].to_list() == [g / 365.25 for g in out["gap_time"]]


def test_unpooled_strata_and_agreement_with_counting_process(simulated_study):
    out = simulated_study.derive("recurrent_episodes")
    assert (out["pwp_stratum"] == out["episode"]).all()
    # the same events and follow-up as the recurrent counting process
    cp = simulated_study.derive("counting_process", recurrent=True)
    assert out["event"].sum() == cp["event"].sum()
    per = lambda df, col: dict(df.group_by("participant_id").agg(pl.col(col).max()).rows())  # noqa: E731
    assert per(out, "tstop") == per(cp, "tstop")
    # the first episode is time_to_event
    tte = simulated_study.derive("time_to_event").filter(pl.col("time_days") > 0)
    first = out.filter(pl.col("episode") == 1)
    assert dict(first.select("participant_id", "tstop").rows()) == dict(
        tte.select("participant_id", "time_days").rows())
    assert dict(first.select("participant_id", "event").rows()) == dict(
        tte.select("participant_id", "event").rows())
