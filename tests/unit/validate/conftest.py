"""Fixtures of the validate tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from validate_helpers import BASE, Study


@pytest.fixture
def vstudy(tmp_path: Path) -> Study:
    """A study database with clean participants, exits, sessions and assessments loaded."""
    s = Study(tmp_path / "study.duckdb")
    for table in ("participants", "exits", "treatment_sessions", "assessments", "events"):
        if BASE[table]:
            s.load(table, BASE[table])
    yield s
    s.con.close()
