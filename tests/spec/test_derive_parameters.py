"""Derivation parameters are checked before a derivation runs, and an empty result warns.

A value of a vocabulary parameter the study does not know (an event type, a term, an
origin, a cause, an instrument) or a value not of its declared type is one line naming
the parameter, the value, the closest allowed value and every allowed one, exit 3 on the
command line; no rows or no events is an EmptyResultWarning, printed by `cohort derive`.
"""

from __future__ import annotations

import datetime as dt
import warnings

import pytest
from typer.testing import CliRunner

from cohort.cli import app
from cohort.derive import derivations
from cohort.derive_parameters import EVENTS, INCREASING, MINIMUMS, ORIGINS, VOCABULARIES, typed
from cohort.errors import EmptyResultWarning, ParameterError
from cohort.tables import EVENT_TYPES

IV = ("racemic_ketamine", "iv", 35.0, 70.0)


def people(*ids):
    return [(p, "female", 1980, "2020-01-01", "TRD") for p in ids]


@pytest.fixture
def small(make_study):
    """Two participants with sessions; a relapse, and adverse events with terms."""
    study = make_study(participants=people("a", "b"),
                       sessions=[("a", "2020-01-10", *IV), ("b", "2020-01-10", *IV)],
                       events=[("a", "2020-03-01", "relapse")])
    study.con.execute("insert into store.events (participant_id, event_date, event_type, term, "
                      "batch_id, source_line) values "
                      "('a', '2020-05-01', 'adverse_event', 'Hypertension', 1, 20), "
                      "('b', '2020-06-01', 'adverse_event', 'cystitis', 1, 21), "
                      "('b', '2020-07-01', 'hospitalisation', 'depression', 1, 22)")
    return study


def refused(study, name, **params) -> str:
    with pytest.raises(ParameterError) as info:
        study.derive(name, **params)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_an_unknown_event_type_names_the_closest_and_every_allowed_one(small):
    message = refused(small, "time_to_event", event_type="relapsee")
    assert message == ("derivation 'time_to_event': event_type 'relapsee' is not an event type "
                       f"or death; closest: relapse; allowed: {', '.join(EVENTS)}")
    # the same rule in every derivation with an event_type, and case counts (the SQL's =)
    for name in ("counting_process", "person_time", "landmark", "recurrent_episodes"):
        assert "closest: relapse;" in refused(small, name, event_type="Relapse")


def test_an_unknown_term_lists_the_terms_of_that_event_type_in_the_study(small):
    message = refused(small, "time_to_event", event_type="adverse_event", term="cystitiss")
    assert message == ("derivation 'time_to_event': term 'cystitiss' is not a term of the "
                       "study's events; closest: cystitis; allowed: cystitis, hypertension")
    # terms match whatever their case, as the derivation matches them
    out = small.derive("time_to_event", event_type="adverse_event", term="HYPERTENSION",
                       admin_end="2020-12-31")
    assert out["event"].sum() == 1
    # a term of another event type would count nothing: refused with that type's terms
    assert refused(small, "person_time", event_type="hospitalisation", term="cystitis"
                   ).endswith("closest: depression; allowed: depression")
    assert refused(small, "time_to_event", event_type="relapse", term="cystitis").endswith(
        "allowed: none (the study has no such values)")


def test_an_invalid_origin_is_refused(small):
    message = refused(small, "follow_up", origin="enrollment")
    assert message == ("derivation 'follow_up': origin 'enrollment' is not an origin of "
                       "follow-up; closest: enrolment; allowed: first_session, enrolment")
    assert "origin 'first session'" in refused(small, "competing_risks", origin="first session")


def test_every_allowed_origin_and_event_gives_what_it_says(simulated_study):
    # the registry's values are the ones the SQL knows: each origin dates every participant
    # it keeps, each event (and death) is found in a simulated cohort
    for origin in ORIGINS:
        follow_up = simulated_study.derive("follow_up", origin=origin)
        assert follow_up.height > 0 and follow_up["origin_date"].null_count() == 0, origin
    for event in EVENTS:
        with warnings.catch_warnings():
            warnings.simplefilter("error", EmptyResultWarning)
            assert simulated_study.derive("time_to_event", event_type=event)["event"].sum() > 0


def test_unknown_instruments_and_causes_are_refused_element_by_element(small):
    assert refused(small, "trajectories", instruments=["MADRS", "MOCA"]).startswith(
        "derivation 'trajectories': instruments 'MOCA' is not an instrument; closest: MoCA;")
    assert "causes 'withdrawl'" in refused(small, "competing_risks", causes=["death", "withdrawl"])
    assert "causes None" in refused(small, "competing_risks", causes=["death", None])


def test_null_is_allowed_only_where_it_is_the_default(small):
    assert "event_type None is not an event type" in refused(small, "time_to_event",
                                                             event_type=None)
    small.derive("time_to_event", term=None, admin_end=None)  # their defaults


def test_typed_parameters_are_checked(small):
    message = refused(small, "counting_process", window_days="abc")
    assert message == ("derivation 'counting_process': parameter window_days: 'abc' is not "
                       "integer (a whole number, e.g. 90)")
    # DuckDB would round 1.5 to 2 days and take True as 1: refused, not guessed
    assert "window_days: '1.5' is not integer" in refused(small, "counting_process",
                                                           window_days="1.5")
    assert "window_days: True is not integer" in refused(small, "counting_process",
                                                          window_days=True)
    assert "admin_end: '2020-13-01' is not date" in refused(small, "time_to_event",
                                                             admin_end="2020-13-01")
    assert "include_origin_day: 'maybe' is not boolean (true or false)" in refused(
        small, "time_to_event", include_origin_day="maybe")
    assert "landmarks: '6,x' is not integer[] (a list of a whole number" in refused(
        small, "landmark", landmarks="6,x")


def test_impossible_numbers_are_refused(small):
    # on main: division by zero, or rows computed from a negative window or unsorted cuts
    assert refused(small, "person_time", age_band_years=0) == (
        "derivation 'person_time': parameter age_band_years: 0 is below its minimum 1")
    assert "window_days: -5 is below its minimum 1" in refused(small, "counting_process",
                                                              window_days="-5")
    assert "landmarks: -6 is below its minimum 0" in refused(small, "landmark", landmarks=[6, -6])
    assert "dose_bands_g: [5.0, 1.0] must be strictly increasing" in refused(
        small, "person_time", dose_bands_g="5,1")


def test_values_given_as_text_are_typed_as_declared():
    assert typed("window_days", "integer", " 90 ") == 90
    assert typed("admin_end", "date", "2020-12-31") == dt.date(2020, 12, 31)
    assert typed("recurrent", "boolean", "False") is False
    assert typed("dose_bands_g", "double[]", "[1, 2.5]") == [1.0, 2.5]
    assert typed("landmarks", "integer[]", "6,12") == [6, 12]
    assert typed("causes", "varchar[]", "['death', 'relapse']") == ["death", "relapse"]
    assert typed("admin_end", "date", "null") is None


def test_the_registry_names_only_declared_parameters_and_known_event_types():
    declared = {p.name for d in derivations().values() for p in d.parameters}
    assert set(VOCABULARIES) | set(MINIMUMS) <= declared and INCREASING <= set(MINIMUMS)
    assert EVENTS == (*EVENT_TYPES, "death")


def test_no_rows_or_no_events_warns(make_study):
    study = make_study(participants=people("a"), sessions=[("a", "2020-01-10", *IV)])
    with pytest.warns(EmptyResultWarning, match="derivation 'time_to_event' found no events in "
                      "its 1 rows with event_type='relapse', origin='first_session', "
                      "include_origin_day=False; check the parameters"):
        assert study.derive("time_to_event").height == 1
    with pytest.warns(EmptyResultWarning, match="'trajectories' found no rows with "
                      r"instruments=\['MoCA'\]"):
        study.derive("trajectories", instruments=["MoCA"])
    with pytest.warns(EmptyResultWarning, match="'competing_risks' found no events"):
        study.derive("competing_risks")
    study.con.execute("insert into store.events (participant_id, event_date, event_type, "
                      "batch_id, source_line) values ('a', '2020-03-01', 'relapse', 1, 9)")
    with warnings.catch_warnings():
        warnings.simplefilter("error", EmptyResultWarning)
        assert study.derive("time_to_event")["event"].sum() == 1
        assert study.derive("person_time")["events"].sum() == 1


def test_the_cli_refuses_a_bad_value_in_one_line_and_prints_the_warning(small):
    db = str(small.path)
    small.close()
    runner = CliRunner()
    bad = runner.invoke(app, ["derive", "time_to_event", "--db", db, "--param",
                              "event_type=relapsee"])
    assert bad.exit_code == 3
    assert bad.output.strip().splitlines() == [
        "error: derivation 'time_to_event': event_type 'relapsee' is not an event type or "
        f"death; closest: relapse; allowed: {', '.join(EVENTS)}"]
    days = runner.invoke(app, ["derive", "counting_process", "--db", db, "--param",
                               "window_days=abc"])
    assert days.exit_code == 3 and len(days.output.strip().splitlines()) == 1
    assert "window_days: 'abc' is not integer (a whole number, e.g. 90)" in days.output
    empty = runner.invoke(app, ["derive", "time_to_event", "--db", db, "--param",
                                "event_type=suicide_attempt"])
    assert empty.exit_code == 0, empty.output
    assert ("warning: derivation 'time_to_event' found no events in its 2 rows with "
            "event_type='suicide_attempt'") in empty.output
