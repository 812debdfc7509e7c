"""A real study database in a temp folder, with helpers to load and stage rows (validate tests)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb

from cohort.resources import resource_dir
from cohort.tables import TABLES

TODAY = dt.date(2026, 11, 1)

DEFAULTS: dict[str, dict[str, Any]] = {
    "participants": {"participant_id": "P001", "site_id": "S1", "sex": "female",
                     "birth_year": 1975, "enrolled_on": dt.date(2021, 1, 10),
                     "diagnosis": "TRD", "baseline_weight_kg": 70.0, "prior_episodes": 2,
                     "concomitant_antidepressant": True},
    "treatment_sessions": {"participant_id": "P001", "session_date": dt.date(2021, 2, 1),
                           "drug": "racemic_ketamine", "route": "iv", "dose_mg": 35.0,
                           "weight_kg": 70.0, "setting": "clinic"},
    "assessments": {"participant_id": "P001", "assessed_on": dt.date(2021, 2, 1),
                    "instrument": "MADRS", "score": 30.0},
    "events": {"participant_id": "P001", "event_date": dt.date(2021, 6, 1),
               "event_type": "adverse_event", "term": "dissociation", "severity": "mild"},
    "exits": {"participant_id": "P001", "exit_date": dt.date(2024, 1, 10), "reason": "completed"},
}

#: Clean, loaded study data: three participants, one of whom died.
BASE: dict[str, list[dict[str, Any]]] = {
    "participants": [
        {"participant_id": "P001"},
        {"participant_id": "P002", "site_id": "S2", "sex": "male", "birth_year": 1960,
         "enrolled_on": dt.date(2020, 5, 1)},
        {"participant_id": "P003", "enrolled_on": dt.date(2022, 3, 1), "baseline_weight_kg": 80.0},
    ],
    "exits": [
        {"participant_id": "P003", "exit_date": dt.date(2023, 6, 1), "reason": "died"},
        {"participant_id": "P002", "exit_date": dt.date(2025, 5, 1), "reason": "withdrew"},
    ],
    "treatment_sessions": [
        {"participant_id": "P001", "session_date": dt.date(2021, 1, 20)},
        {"participant_id": "P002", "session_date": dt.date(2020, 6, 1), "drug": "esketamine",
         "route": "intranasal", "dose_mg": 56.0},
    ],
    "assessments": [
        {"participant_id": "P001", "assessed_on": dt.date(2021, 1, 10), "instrument": "MoCA",
         "score": 27.0},
        {"participant_id": "P002", "assessed_on": dt.date(2020, 5, 1), "score": 35.0},
    ],
    "events": [],
}


def row(table: str, **values: Any) -> dict[str, Any]:
    """A canonical row of ``table``: defaults overridden by ``values``."""
    unknown = set(values) - {c.name for c in TABLES[table]}
    assert not unknown, unknown
    return {**DEFAULTS[table], **values}


class Study:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.con = duckdb.connect(str(path))
        for f in sorted(resource_dir("sql").joinpath("schema").glob("*.sql")):
            self.con.execute(f.read_text(encoding="utf-8"))
        self.con.execute("create schema if not exists staging")
        self._ids = itertools.count(1)

    def _columns(self, table: str) -> list[str]:
        return [c.name for c in TABLES[table]]

    def load(self, table: str, rows: Iterable[Mapping[str, Any]], *, status: str = "loaded") -> int:
        """Insert rows into store.<table> as a loaded batch; return its batch id."""
        batch = next(self._ids)
        rows = [row(table, **r) for r in rows]
        cols = self._columns(table)
        for line, r in enumerate(rows, start=2):
            self.con.execute(
                f"insert into store.{table} ({', '.join(cols)}, batch_id, source_line) "
                f"values ({', '.join('?' * (len(cols) + 2))})",
                [r[c] for c in cols] + [batch, line])
        self.con.execute(
            "insert into uploads (batch_id, table_name, site_id, file_name, file_path, sha256, "
            "size_bytes, rows_read, rows_loaded, rows_quarantined, loaded_by, status) "
            "values (?, ?, 'S1', 'f.csv', '/tmp/f.csv', ?, 1, ?, ?, 0, 'test', ?)",
            [batch, table, "0" * 64, len(rows), len(rows), status])
        return batch

    def stage(self, table: str, rows: Iterable[Mapping[str, Any]], *, lines: Iterable[int] | None = None
              ) -> tuple[str, int]:
        """Create staging.batch_<id> holding ``rows``; return (relation, batch id)."""
        batch = next(self._ids)
        rel = f"staging.batch_{batch}"
        cols = self._columns(table)
        self.con.execute(
            f"create table {rel} as select {', '.join(cols)}, batch_id, source_line "
            f"from store.{table} limit 0")
        rows = [row(table, **r) for r in rows]
        lines = list(lines) if lines is not None else list(range(2, len(rows) + 2))
        if rows:
            self.con.executemany(
                f"insert into {rel} values ({', '.join('?' * (len(cols) + 2))})",
                [[r[c] for c in cols] + [batch, line] for r, line in zip(rows, lines, strict=True)])
        return rel, batch
