"""time_to_event: origin, first event, censoring, and the edge cases of follow-up."""

from __future__ import annotations

import datetime as dt

D = dt.date.fromisoformat
IV = ("racemic_ketamine", "iv", 35.0, 70.0)


def people(*ids):
    return [(p, "female", 1980, "2020-01-01", "TRD") for p in ids]


def rows(df, *cols):
    return {r[0]: r[1:] for r in df.select("participant_id", *cols).rows()}


def test_edge_cases_of_follow_up(make_study):
    study = make_study(
        participants=people("origin_day", "same_day_exit", "no_follow_up", "died_first",
                            "after_withdrawal", "no_sessions", "admin"),
        sessions=[(p, "2020-01-10", *IV) for p in
                  ("origin_day", "same_day_exit", "no_follow_up", "died_first",
                   "after_withdrawal", "admin")],
        events=[("origin_day", "2020-01-10", "relapse"), ("origin_day", "2020-03-01", "relapse"),
                ("same_day_exit", "2020-06-01", "relapse"),
                ("died_first", "2020-09-01", "relapse"),
                ("after_withdrawal", "2020-09-01", "relapse"),
                ("admin", "2025-01-01", "relapse")],
        exits=[("same_day_exit", "2020-06-01", "withdrew"), ("no_follow_up", "2020-01-10", "withdrew"),
               ("died_first", "2020-05-01", "died"), ("after_withdrawal", "2020-04-01", "withdrew")],
    )
    out = study.derive("time_to_event", event_type="relapse", admin_end="2021-01-10")
    got = rows(out, "end_date", "time_days", "event", "censor_reason", "event_source_line")
    assert got == {
        # an event on the origin day predates the exposure: the next one counts
        "origin_day": (D("2020-03-01"), 51, 1, None, 3),
        # event and exit on the same day: the event counts
        "same_day_exit": (D("2020-06-01"), 143, 1, None, 4),
        "no_follow_up": (D("2020-01-10"), 0, 0, "exit: withdrew", None),
        "died_first": (D("2020-05-01"), 112, 0, "exit: died", None),
        # a relapse after withdrawal is not follow-up
        "after_withdrawal": (D("2020-04-01"), 82, 0, "exit: withdrew", None),
        # no exit: censored at the administrative end, the later event ignored
        "admin": (D("2021-01-10"), 366, 0, "administrative end", None),
    }
    # no session, no origin under the default origin
    assert "no_sessions" not in got
    assert set(out["event_source_table"].drop_nulls()) == {"events"}


def test_origin_day_event_counts_when_asked(make_study):
    study = make_study(participants=people("a"), sessions=[("a", "2020-01-10", *IV)],
                       events=[("a", "2020-01-10", "relapse")])
    out = study.derive("time_to_event", include_origin_day=True, admin_end="2020-12-31")
    assert rows(out, "time_days", "event") == {"a": (0, 1)}


def test_enrolment_origin_keeps_participants_without_sessions(make_study):
    study = make_study(participants=people("a", "b"), sessions=[("a", "2020-01-10", *IV)],
                       assessments=[("b", "2020-02-01", "MADRS", 20)])
    out = study.derive("time_to_event", origin="enrolment", admin_end="2020-12-31")
    # b's last contact is its assessment; a's its session
    assert rows(out, "origin_date", "end_date", "censor_reason") == {
        "a": (D("2020-01-01"), D("2020-01-10"), "last contact"),
        "b": (D("2020-01-01"), D("2020-02-01"), "last contact"),
    }


def test_death_as_the_event_traces_back_to_exits(make_study):
    study = make_study(participants=people("a", "b"), sessions=[("a", "2020-01-10", *IV),
                                                                ("b", "2020-01-10", *IV)],
                       exits=[("a", "2020-07-01", "died"), ("b", "2020-08-01", "lost_to_follow_up")])
    out = study.derive("time_to_event", event_type="death", admin_end="2020-12-31")
    assert rows(out, "event", "event_source_table", "event_source_line", "censor_reason") == {
        "a": (1, "exits", 2, None), "b": (0, None, None, "exit: lost_to_follow_up")}


def test_covariates_come_from_participants_and_first_session(make_study):
    study = make_study(participants=people("a"),
                       sessions=[("a", "2020-02-01", "esketamine", "intranasal", 56.0, 70.0),
                                 ("a", "2020-01-10", *IV)])
    row = study.derive("time_to_event", admin_end="2020-12-31").row(0, named=True)
    assert (row["route"], row["drug"], row["age_at_origin"], row["origin_date"]) == (
        "iv", "racemic_ketamine", 40, D("2020-01-10"))


def test_unknown_parameter_is_a_clear_error(make_study):
    import pytest

    from cohort.errors import UserError

    study = make_study(participants=people("a"))
    with pytest.raises(UserError, match="has no parameter.*evnt_type.*it takes: event_type"):
        study.derive("time_to_event", evnt_type="relapse")
    with pytest.raises(UserError, match="no derivation 'time_to_evnt' .closest: time_to_event"):
        study.derive("time_to_evnt")


def test_same_day_records_trace_back_to_one_record(make_study):
    # two relapse records on the first event day: the source is the first loaded one, whole
    study = make_study(participants=people("a"), sessions=[("a", "2020-01-10", *IV)],
                       events=[("a", "2020-03-01", "relapse"), ("a", "2020-02-01", "relapse"),
                               ("a", "2020-02-01", "relapse")])
    out = study.derive("time_to_event", admin_end="2020-12-31")
    assert rows(out, "end_date", "event_source_table", "event_source_batch", "event_source_line") == {
        "a": (D("2020-02-01"), "events", 1, 3)}


def test_an_adverse_event_term_can_be_the_event(make_study):
    study = make_study(participants=people("a", "b"),
                       sessions=[("a", "2020-01-10", *IV), ("b", "2020-01-10", *IV)])
    study.con.execute("insert into store.events (participant_id, event_date, event_type, term, "
                      "batch_id, source_line) values ('a', '2020-05-01', 'adverse_event', "
                      "'hypertension', 1, 20), ('a', '2020-06-01', 'adverse_event', 'Cystitis', 1, 21)")
    out = study.derive("time_to_event", event_type="adverse_event", term="cystitis",
                       admin_end="2020-12-31")
    assert rows(out, "end_date", "event") == {"a": (D("2020-06-01"), 1), "b": (D("2020-01-10"), 0)}
    assert study.derive("person_time", event_type="adverse_event", term="cystitis",
                        admin_end="2020-12-31")["events"].sum() == 1
