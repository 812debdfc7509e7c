"""Every shipped rule has a failing-row test: the exact rule id, severity and source line.

One staged batch per table holds one clean row and one defect per rule; each
rule must flag exactly the lines seeded for it (nothing more, nothing less).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest
from validate_helpers import TODAY

from cohort.tables import INSTRUMENT_RANGES
from cohort.validate import ValidationConfig, load_suites, validate_relation

D = dt.date
FUTURE = D(2026, 12, 1)
EARLY = D(1985, 1, 1)

# (rules the row must trigger, row values). Participants P010-P059 are loaded, clean,
# enrolled 2021-01-10, so defects on different participants do not interact.
Case = tuple[tuple[str, ...], dict[str, Any]]


def _assessment_cases() -> list[Case]:
    cases: list[Case] = [
        (("assessments.participant_id.required",), {"participant_id": None}),
        (("assessments.assessed_on.required",), {"assessed_on": None}),
        (("assessments.instrument.required",), {"instrument": None}),
        (("assessments.score.required",), {"score": None}),
        (("assessments.instrument.allowed",), {"instrument": "HAMD"}),
        (("assessments.participant_id.format", "assessments.participant.orphan"),
         {"participant_id": "P 010"}),
        (("assessments.assessed_on.future",), {"assessed_on": FUTURE}),
        (("assessments.assessed_on.too_early", "assessments.assessed_on.before_enrolment"),
         {"assessed_on": EARLY}),
        (("assessments.participant.orphan",), {"participant_id": "P999"}),
        (("assessments.assessed_on.before_enrolment",), {"assessed_on": D(2020, 12, 1)}),
        (("assessments.assessed_on.after_death",), {"participant_id": "P003",
                                                    "assessed_on": D(2023, 7, 1)}),
        (("assessments.assessed_on.after_exit",), {"participant_id": "P002",
                                                   "assessed_on": D(2025, 6, 1)}),
        (("assessments.already_loaded",), {"participant_id": "P002", "instrument": "MADRS",
                                           "assessed_on": D(2020, 5, 1)}),
        (("assessments.unique_per_day",), {"participant_id": "P020", "instrument": "PHQ-9",
                                           "assessed_on": D(2021, 4, 1), "score": 5.0}),
        (("assessments.unique_per_day",), {"participant_id": "P020", "instrument": "PHQ-9",
                                           "assessed_on": D(2021, 4, 1), "score": 6.0}),
        ((), {"participant_id": "P022", "instrument": "QIDS-SR16",
              "assessed_on": D(2021, 4, 2), "score": 7.0}),
        (("assessments.duplicate_record",), {"participant_id": "P022", "instrument": "QIDS-SR16",
                                             "assessed_on": D(2021, 4, 2), "score": 7.0}),
        ((), {"participant_id": "P021", "instrument": "MoCA", "assessed_on": D(2021, 2, 1),
              "score": 28.0}),
        (("assessments.moca.drop",), {"participant_id": "P021", "instrument": "MoCA",
                                      "assessed_on": D(2021, 4, 15), "score": 16.0}),
        # the drop is against a MoCA already loaded (P001: 27 on 2021-01-10)
        (("assessments.moca.drop",), {"participant_id": "P001", "instrument": "MoCA",
                                      "assessed_on": D(2021, 2, 20), "score": 12.0}),
    ]
    for i, (inst, (_, hi)) in enumerate(INSTRUMENT_RANGES.items()):
        cases.append(((f"assessments.score.range.{inst}",),
                      {"participant_id": f"P03{i}", "instrument": inst, "score": hi + 1}))
    return cases


def _participant_cases() -> list[Case]:
    return [
        (("participants.participant_id.required",), {"participant_id": None}),
        (("participants.site_id.required",), {"site_id": None}),
        (("participants.sex.required",), {"sex": None}),
        (("participants.birth_year.required",), {"birth_year": None}),
        (("participants.enrolled_on.required",), {"enrolled_on": None}),
        (("participants.diagnosis.required",), {"diagnosis": None}),
        (("participants.sex.allowed",), {"sex": "F"}),
        (("participants.diagnosis.allowed",), {"diagnosis": "GAD"}),
        (("participants.participant_id.format",), {"participant_id": "P 102"}),
        (("participants.enrolled_on.future",), {"enrolled_on": FUTURE}),
        (("participants.enrolled_on.too_early",), {"enrolled_on": EARLY, "birth_year": 1950}),
        (("participants.birth_year.range",), {"birth_year": 1890}),
        (("participants.baseline_weight_kg.valid", "participants.baseline_weight_kg.plausible"),
         {"baseline_weight_kg": 500.0}),
        (("participants.baseline_weight_kg.plausible",), {"baseline_weight_kg": 20.0}),
        (("participants.prior_episodes.valid",), {"prior_episodes": -1}),
        (("participants.participant_id.unique",), {"participant_id": "P150"}),
        (("participants.participant_id.unique",), {"participant_id": "P150"}),
        (("participants.adult_at_enrolment",), {"birth_year": 2005}),
        (("participants.participant_id.already_loaded",), {"participant_id": "P002"}),
    ]


def _session_cases() -> list[Case]:
    esk = {"drug": "esketamine", "route": "intranasal", "dose_mg": 56.0}
    return [
        (("treatment_sessions.participant_id.required",), {"participant_id": None}),
        (("treatment_sessions.session_date.required",), {"session_date": None}),
        (("treatment_sessions.drug.required",), {"drug": None}),
        (("treatment_sessions.route.required",), {"route": None}),
        (("treatment_sessions.dose_mg.required",), {"dose_mg": None}),
        (("treatment_sessions.drug.allowed",), {"drug": "ketamine"}),
        (("treatment_sessions.route.allowed",), {"route": "nasal"}),
        (("treatment_sessions.setting.allowed",), {"setting": "icu"}),
        (("treatment_sessions.participant_id.format", "treatment_sessions.participant.orphan"),
         {"participant_id": "P 1"}),
        (("treatment_sessions.session_date.future",), {"session_date": FUTURE}),
        (("treatment_sessions.session_date.too_early",
          "treatment_sessions.session_date.before_enrolment"), {"session_date": EARLY}),
        (("treatment_sessions.dose_mg.positive",), {"dose_mg": 0.0}),
        (("treatment_sessions.weight_kg.valid", "treatment_sessions.weight_kg.plausible"),
         {**esk, "weight_kg": 500.0}),
        (("treatment_sessions.weight_kg.plausible",), {**esk, "weight_kg": 20.0}),
        (("treatment_sessions.dose_mg.intranasal_esketamine",), {**esk, "dose_mg": 50.0}),
        (("treatment_sessions.dose_per_kg.iv_racemic",), {"dose_mg": 140.0}),
        (("treatment_sessions.weight_kg.missing_for_iv",), {"participant_id": "P059",
                                                           "weight_kg": None}),
        (("treatment_sessions.participant.orphan",), {"participant_id": "P999"}),
        (("treatment_sessions.session_date.before_enrolment",), {"session_date": D(2020, 12, 1)}),
        (("treatment_sessions.session_date.after_death",), {"participant_id": "P003",
                                                           "session_date": D(2023, 7, 1)}),
        (("treatment_sessions.session_date.after_exit",), {**esk, "participant_id": "P002",
                                                          "session_date": D(2025, 6, 1)}),
        ((), {"participant_id": "P058", "session_date": D(2021, 2, 1), "dose_mg": 14.0}),
        (("treatment_sessions.dose_per_kg.doubling",), {"participant_id": "P058",
                                                       "session_date": D(2021, 2, 8),
                                                       "dose_mg": 35.0}),
    ]


def _event_cases() -> list[Case]:
    return [
        (("events.participant_id.required",), {"participant_id": None}),
        (("events.event_date.required",), {"event_date": None}),
        (("events.event_type.required",), {"event_type": None}),
        (("events.event_type.allowed",), {"event_type": "death"}),
        (("events.severity.allowed",), {"severity": "grave"}),
        (("events.participant_id.format", "events.participant.orphan"), {"participant_id": "P 1"}),
        (("events.event_date.future",), {"event_date": FUTURE}),
        (("events.event_date.too_early", "events.event_date.before_enrolment"),
         {"event_date": EARLY}),
        (("events.term.required_for_adverse_event",), {"term": None}),
        (("events.participant.orphan",), {"participant_id": "P999"}),
        (("events.event_date.before_enrolment",), {"event_date": D(2020, 12, 1)}),
        (("events.event_date.after_death",), {"participant_id": "P003",
                                              "event_date": D(2023, 7, 1)}),
        (("events.event_date.after_exit",), {"participant_id": "P002",
                                             "event_date": D(2025, 6, 1)}),
    ]


def _exit_cases() -> list[Case]:
    return [
        (("exits.participant_id.required",), {"participant_id": None}),
        (("exits.exit_date.required",), {"exit_date": None}),
        (("exits.reason.required",), {"reason": None}),
        (("exits.reason.allowed",), {"reason": "moved"}),
        (("exits.participant_id.format", "exits.participant.orphan"), {"participant_id": "P 1"}),
        (("exits.exit_date.future",), {"exit_date": FUTURE}),
        (("exits.exit_date.too_early", "exits.exit_date.before_enrolment"),
         {"exit_date": EARLY}),
        (("exits.participant_id.unique",), {"participant_id": "P050"}),
        (("exits.participant_id.unique",), {"participant_id": "P050"}),
        (("exits.participant.orphan",), {"participant_id": "P999"}),
        (("exits.exit_date.before_enrolment",), {"exit_date": D(2020, 12, 1)}),
        (("exits.already_loaded",), {"participant_id": "P003", "exit_date": D(2023, 6, 1),
                                     "reason": "died"}),
        (("exits.records_after_exit",), {"participant_id": "P001", "exit_date": D(2021, 1, 15)}),
    ]


CASES = {
    "assessments": _assessment_cases,
    "participants": _participant_cases,
    "treatment_sessions": _session_cases,
    "events": _event_cases,
    "exits": _exit_cases,
}
CLEAN = {
    "assessments": [{"participant_id": "P011", "assessed_on": D(2021, 3, 1)},
                    {"participant_id": "P003", "instrument": "PHQ-9", "score": 10.0,
                     "assessed_on": D(2022, 4, 1)}],
    "participants": [{"participant_id": "P200"}],
    "treatment_sessions": [{"participant_id": "P011"}],
    "events": [{"participant_id": "P011", "event_type": "relapse", "term": None,
                "severity": None}],
    "exits": [{"participant_id": "P011", "exit_date": D(2024, 1, 10)}],
}


def _load_more_participants(study) -> None:
    rows = [{"participant_id": f"P0{i:02d}"} for i in range(10, 60)]
    rows[-1]["baseline_weight_kg"] = None  # P059: no baseline weight
    study.load("participants", rows)


def _defaults(table: str, i: int, values: dict[str, Any]) -> dict[str, Any]:
    """Give each defect its own participant and day unless the case says otherwise."""
    out = dict(values)
    if table != "participants":
        out.setdefault("participant_id", f"P0{12 + i % 44:02d}")
        date_col = {"assessments": "assessed_on", "treatment_sessions": "session_date",
                    "events": "event_date", "exits": "exit_date"}[table]
        out.setdefault(date_col, D(2021, 5, 1) + dt.timedelta(days=i))
    else:
        out.setdefault("participant_id", f"P3{i:02d}")
    return out


@pytest.mark.parametrize("table", list(CASES))
def test_every_rule_flags_exactly_its_seeded_rows(vstudy, table):
    _load_more_participants(vstudy)
    cases = CASES[table]()
    rows = list(CLEAN[table])
    expected: dict[str, set[int]] = {}
    first_defect_line = len(rows) + 2
    for i, (rules, values) in enumerate(cases):
        rows.append(_defaults(table, i, values))
        for rule in rules:
            expected.setdefault(rule, set()).add(first_defect_line + i)
    relation, _ = vstudy.stage(table, rows)
    report = validate_relation(vstudy.con, relation, table, config=ValidationConfig(today=TODAY))

    suite = load_suites(table)
    got = {
        rule: set(lines)
        for rule, lines in report.findings.filter(pl.col("source_line").is_not_null())
        .group_by("rule").agg(pl.col("source_line")).iter_rows()
    }
    assert got == expected
    severities = dict(report.findings.select("rule", "severity").unique().iter_rows())
    by_rule = suite.by_rule()
    for rule in expected:
        assert severities[rule] == by_rule[rule].severity
    # every row rule of the shipped suite is exercised (batch.not_empty: test_batch_level)
    row_rules = {r for r in by_rule if not r.endswith(".batch.not_empty")}
    assert row_rules == set(expected), row_rules ^ set(expected)
    assert not report.warnings


@pytest.mark.parametrize("table", list(CASES))
def test_clean_data_has_no_findings(vstudy, table):
    _load_more_participants(vstudy)
    relation, _ = vstudy.stage(table, CLEAN[table])
    report = validate_relation(vstudy.con, relation, table, config=ValidationConfig(today=TODAY))
    assert report.findings.height == 0, report.findings
    assert report.status == "pass"
    assert report.rows_to_quarantine == []
    assert report.summary.get_column("n_failing").sum() == 0
