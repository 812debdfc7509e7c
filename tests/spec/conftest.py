"""Spec tests: small readable tables in, expected rows out, on a real DuckDB study."""

from __future__ import annotations

import pytest
from spec_helpers import load_frames


def _insert(con, table: str, rows: list[tuple], columns: str) -> None:
    if not rows:
        return
    marks = ", ".join("?" for _ in columns.split(","))
    for line, row in enumerate(rows, start=2):
        con.execute(f"insert into store.{table} ({columns}, batch_id, source_line) "
                    f"values ({marks}, 1, ?)", [*row, line])


@pytest.fixture
def make_study(study):
    """Fill a study from rows given per table (one batch in force)."""

    def make(*, participants=(), sessions=(), assessments=(), events=(), exits=()):
        con = study.con
        con.execute("insert into uploads (batch_id, table_name, site_id, file_name, file_path, "
                    "sha256, size_bytes, rows_read, rows_loaded, rows_quarantined, loaded_by, "
                    "status) values (1, 'participants', 'S', 'spec', 'spec', ?, 0, 0, 0, 0, "
                    "'spec', 'loaded')", ["0" * 64])
        _insert(con, "participants", [(pid, "S", sex, by, enrolled, dx) for pid, sex, by, enrolled, dx
                                      in participants],
                "participant_id, site_id, sex, birth_year, enrolled_on, diagnosis")
        _insert(con, "treatment_sessions", list(sessions),
                "participant_id, session_date, drug, route, dose_mg, weight_kg")
        _insert(con, "assessments", list(assessments),
                "participant_id, assessed_on, instrument, score")
        _insert(con, "events", list(events), "participant_id, event_date, event_type")
        _insert(con, "exits", list(exits), "participant_id, exit_date, reason")
        return study

    return make


@pytest.fixture
def simulated_study(study):
    """A study holding a small simulated cohort (300 participants, 5 years)."""
    from cohort.simulate import simulate

    sim = simulate(300, seed=11)
    load_frames(study, sim.tables)
    return study
