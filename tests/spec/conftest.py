"""Spec tests: small readable tables in, expected rows out, on a real DuckDB study."""

from __future__ import annotations

import pytest


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


def load_frames(study, tables) -> None:
    """Insert canonical polars frames (e.g. ``simulate(...).tables``) as batch 1 of a study."""
    import polars as pl

    con = study.con
    con.execute("insert into uploads (batch_id, table_name, site_id, file_name, file_path, sha256, "
                "size_bytes, rows_read, rows_loaded, rows_quarantined, loaded_by, status) "
                "values (1, 'participants', 'S', 'sim', 'sim', ?, 0, 0, 0, 0, 'spec', 'loaded')",
                ["0" * 64])
    for table, frame in tables.items():
        frame = frame.with_columns(batch_id=pl.lit(1, pl.Int64),
                                   source_line=pl.int_range(2, frame.height + 2, dtype=pl.Int64))
        con.register("_frame", frame)
        con.execute(f"insert into store.{table} ({', '.join(frame.columns)}) "
                    f"select {', '.join(frame.columns)} from _frame")
        con.unregister("_frame")


@pytest.fixture
def simulated_study(study):
    """A study holding a small simulated cohort (300 participants, 5 years)."""
    from cohort.simulate import simulate

    sim = simulate(300, seed=11)
    load_frames(study, sim.tables)
    return study
