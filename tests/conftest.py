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


DOSE_DECLARED = ["low", "Mid", "high"]


def _dose_as(d, kind: str):
    """``d`` (polars) with its string column ``dose`` stored as ``kind``: string, polars_categorical,
    polars_enum (declared order low, Mid, high), polars_enum_unused_level (the same plus a level
    with no row), pandas_categorical (unordered, categories in a non-sorted order) or pandas_ordered."""
    import pandas as pd
    import polars as pl

    if kind == "string":
        return d
    if kind == "polars_categorical":
        return d.with_columns(pl.col("dose").cast(pl.Categorical))
    if kind == "polars_enum":
        return d.with_columns(pl.col("dose").cast(pl.Enum(DOSE_DECLARED)))
    if kind == "polars_enum_unused_level":
        return d.with_columns(pl.col("dose").cast(pl.Enum([*DOSE_DECLARED, "none"])))
    pdf = d.to_pandas()
    if kind == "pandas_categorical":
        pdf["dose"] = pd.Categorical(pdf["dose"], categories=["low", "high", "Mid"])
    elif kind == "pandas_ordered":
        pdf["dose"] = pd.Categorical(pdf["dose"], categories=DOSE_DECLARED, ordered=True)
    else:
        raise ValueError(kind)
    return pdf


@pytest.fixture
def dose_as():
    """The same data with ``dose`` as a string, Categorical, Enum or pandas column (see _dose_as)."""
    return _dose_as
