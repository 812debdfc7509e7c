"""Rows with missing values: one rule for every model (survival, lmm, gee), as R's ``na.omit``.

``missing="drop"`` (the default) leaves out the rows with a missing value (null, or NaN in a
float column) in any column the model uses, and the note stating how many, per column and
which rows, goes in the fit's ``.warnings``; ``missing="raise"`` refuses them in one line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import polars as pl

from cohort.errors import ModelSpecError

__all__ = ["MISSING", "ROW_LIST", "check_missing", "incomplete_rows", "rows_text"]

MISSING = ("drop", "raise")  # what every model does with rows missing a value in a column it uses


#: a row list as messages write it ("at rows 3, 17", :func:`rows_text`): what a released text leaves out,
#: since how many rows it lists would give a small count back
ROW_LIST = re.compile(r" ?\bat rows? \d+(?:, \d+)*(?:, \.\.\.)?")


def rows_text(idx: np.ndarray, limit: int = 10) -> str:
    """``rows 3, 17 (2 rows)``: 0-based row indices of the input, the first ``limit`` shown
    (messages write "at" before it: "at rows 3, 17 (2 rows)")."""
    s = "s" if idx.size != 1 else ""
    shown = ", ".join(str(i) for i in idx[:limit]) + (", ..." if idx.size > limit else "")
    return f"row{s} {shown} ({idx.size} row{s})"


def check_missing(missing: str, *, model: str) -> None:
    """Refuse a ``missing=`` value other than those of :data:`MISSING`."""
    if missing not in MISSING:
        raise ModelSpecError(f"{model}: missing={missing!r}; use one of {', '.join(map(repr, MISSING))}")


def incomplete_rows(frame: pl.DataFrame, used: Sequence[str], *, rows: np.ndarray, model: str,
                    missing: str, why: str = "") -> tuple[np.ndarray, str | None]:
    """The rows of ``frame`` missing a value in ``used`` (boolean mask) and the note stating them.

    ``rows`` are the input row numbers of ``frame`` (named in the note and the refusal);
    ``missing="raise"`` refuses incomplete rows naming columns, rows and the fix.
    """
    check_missing(missing, model=model)
    masks = {}
    for c in dict.fromkeys(used):
        m = frame[c].is_null()
        if frame.schema[c].is_float():
            m = m | frame[c].is_nan().fill_null(False)
        if m.any():
            masks[c] = m.to_numpy()
    if not masks:
        return np.zeros(frame.height, dtype=bool), None
    bad = np.logical_or.reduce(list(masks.values()))
    k = int(bad.sum())
    per_col = "; ".join(f"{c!r} at {rows_text(rows[m])}" for c, m in masks.items())
    if missing == "raise":
        raise ModelSpecError(
            f"{model}: {k} row(s) have missing values in columns the model uses: {per_col}; "
            "drop or impute them, or pass missing='drop' to leave them out (the count is stated in .warnings)"
        )
    return bad, f"{k} row(s) with missing values left out (as R's na.omit): {per_col}{'; ' + why if why else ''}"
