"""Shared fixtures: real study files on disk, the bad-input corpus."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

CORPUS = Path(__file__).parent / "badinput" / "corpus"


@pytest.fixture
def corpus() -> Path:
    return CORPUS


@pytest.fixture
def study(tmp_path: Path):
    import cohort

    s = cohort.open(tmp_path / "study.duckdb", create=True)
    yield s
    s.close()
