from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

REF_DIR = Path(__file__).resolve().parents[2] / "reference" / "longitudinal"


@pytest.fixture(scope="session")
def ref() -> dict:
    return json.loads((REF_DIR / "reference.json").read_text())


def load(name: str) -> pl.DataFrame:
    return pl.read_csv(REF_DIR / f"{name}.csv")


@pytest.fixture(scope="session")
def dataset():
    return load
