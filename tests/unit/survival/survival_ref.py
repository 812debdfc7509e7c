"""Shared fixtures: the published datasets and the R reference values in tests/reference/survival."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

REF = Path(__file__).resolve().parents[2] / "reference" / "survival"


def load_ref(name: str) -> dict:
    return json.loads((REF / f"{name}.json").read_text())


def load_data(name: str) -> pl.DataFrame:
    return pl.read_csv(REF / f"{name}.csv", null_values=["NA", ""])


def arr(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def col(records: list[dict], key: str) -> np.ndarray:
    return arr([r.get(key) for r in records])

