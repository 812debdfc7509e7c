"""Input handling shared by the survival estimators: frames, columns, checks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from cohort._missing import incomplete_rows
from cohort._missing import rows_text as row_list
from cohort.errors import ModelSpecError
from cohort.frames import as_polars

__all__ = [
    "as_columns",
    "as_polars",
    "column_array",
    "check_times",
    "complete_rows",
    "event_array",
    "group_codes",
    "rows_text",
    "timefix",
    "weight_array",
    "z_value",
]

TIMEFIX_TOLERANCE = float(np.sqrt(np.finfo(float).eps))


def rows_text(mask: np.ndarray, limit: int = 10) -> str:
    """Describe the row indices where ``mask`` is true, e.g. ``rows 3, 17 (2 rows)``
    (:func:`cohort._missing.rows_text` of those indices)."""
    return row_list(np.flatnonzero(mask), limit)


def column_array(df: pl.DataFrame, name: str, *, role: str) -> np.ndarray:
    """The column ``name`` as a float64 array; errors name the column and its role."""
    if name not in df.columns:
        raise ModelSpecError(
            f"{role} column {name!r} is not in the data; available columns: "
            f"{', '.join(df.columns[:30])}"
        )
    s = df.get_column(name)
    if s.dtype == pl.Boolean:
        s = s.cast(pl.Int8)
    if not s.dtype.is_numeric():
        raise ModelSpecError(
            f"{role} column {name!r} has type {s.dtype}, expected numbers; "
            "convert it (e.g. dates to days since entry) before fitting"
        )
    return s.cast(pl.Float64).fill_null(np.nan).to_numpy().astype(np.float64, copy=False)


def weight_array(df: pl.DataFrame, name: str, *, rows: np.ndarray | None = None) -> np.ndarray:
    """Case weights from column ``name`` (of the ``rows`` used, when given), all finite and > 0.

    Zero, negative or infinite weights are refused naming the column, the rows and their
    count, as R's coxph ("Invalid weights, must be >0"); a missing weight is a missing value
    (its row is left out before, as R's na.omit).
    """
    w = column_array(df, name, role="weights")
    bad = ~(np.isfinite(w) & (w > 0)) & used_mask(w.size, rows)
    if bad.any():
        raise ModelSpecError(
            f"weights column {name!r} has {int(bad.sum())} row(s) with a zero, negative or infinite "
            f"weight at {rows_text(bad)}; case weights must be > 0 (as R): drop these rows or fix "
            "their weights"
        )
    return w if rows is None else w[rows]


def as_columns(cols: str | Sequence[str] | None) -> list[str]:
    """One column name, several or None as a list of names."""
    return [] if cols is None else [cols] if isinstance(cols, str) else list(cols)


def complete_rows(
    frame: pl.DataFrame, columns: Sequence[str | None], *, missing: str, model: str
) -> tuple[np.ndarray, list[str]]:
    """The rows complete in ``columns`` (indices) and the note stating those left out, as R's ``na.omit``.

    Null, or NaN in a float column, is missing; ``missing="raise"`` refuses them (see
    :mod:`cohort._missing`). Columns not in the data are left to the callers' checks.
    """
    used = [c for c in dict.fromkeys(columns) if c is not None and c in frame.columns]
    bad, note = incomplete_rows(frame, used, rows=np.arange(frame.height), model=model, missing=missing)
    return np.flatnonzero(~bad), [note] if note else []


def used_mask(n: int, rows: np.ndarray | None) -> np.ndarray:
    """Boolean mask of length ``n``, true at ``rows`` (all true when ``rows`` is None)."""
    if rows is None:
        return np.ones(n, dtype=bool)
    used = np.zeros(n, dtype=bool)
    used[rows] = True
    return used


def check_times(
    time: np.ndarray, *, name: str, start: np.ndarray | None = None, start_name: str = "start",
    rows: np.ndarray | None = None,
) -> None:
    """Raise a ModelSpecError naming the rows with NaN/inf/negative times or start >= stop.

    With ``rows`` only those rows (the complete cases) are checked; row numbers stay those of the input.
    """
    used = used_mask(time.size, rows)
    bad = ~np.isfinite(time) & used
    if bad.any():
        raise ModelSpecError(
            f"time column {name!r} has missing or infinite values at {rows_text(bad)}; "
            "drop or fix these rows before fitting"
        )
    if start is None:
        neg = (time < 0) & used
        if neg.any():
            raise ModelSpecError(
                f"time column {name!r} has negative values at {rows_text(neg)}; "
                "times are durations since the origin and must be >= 0"
            )
        return
    bad = ~np.isfinite(start) & used
    if bad.any():
        raise ModelSpecError(
            f"start column {start_name!r} has missing or infinite values at {rows_text(bad)}; "
            "drop or fix these rows before fitting"
        )
    neg = (start < 0) & used
    if neg.any():
        raise ModelSpecError(
            f"start column {start_name!r} has negative values at {rows_text(neg)}; "
            "times must be >= 0"
        )
    order = (start >= time) & used
    if order.any():
        raise ModelSpecError(
            f"start >= stop ({start_name!r} >= {name!r}) at {rows_text(order)}; each interval "
            "(start, stop] must have positive length: drop zero-length intervals or fix the times"
        )


def event_array(df: pl.DataFrame, name: str, *, rows: np.ndarray | None = None) -> np.ndarray:
    """The event indicator as a boolean array (1/True = event, 0/False = censored), of ``rows`` if given."""
    e = column_array(df, name, role="event")
    bad = ~np.isin(e, (0.0, 1.0)) & used_mask(e.size, rows)
    if bad.any():
        vals = ", ".join(map(str, np.unique(e[bad])[:5]))
        raise ModelSpecError(
            f"event column {name!r} must be 0/1 (or boolean); found {vals} at {rows_text(bad)}. "
            "For competing risks use cumulative_incidence/fine_gray with cause="
        )
    return e == 1.0 if rows is None else e[rows] == 1.0


def group_codes(
    df: pl.DataFrame, by: str | Sequence[str] | None, *, role: str = "by"
) -> tuple[np.ndarray, list[str], pl.DataFrame | None]:
    """Integer codes 0..G-1 for the groups of ``by`` (sorted), their labels and key frame.

    Labels are the value as text for one column, ``"a=1, b=2"`` for several,
    ``"all"`` when ``by`` is None.
    """
    n = df.height
    if by is None:
        return np.zeros(n, dtype=np.int64), ["all"], None
    cols = as_columns(by)
    for c in cols:
        if c not in df.columns:
            raise ModelSpecError(f"{role} column {c!r} is not in the data")
        nulls = df.get_column(c).is_null().to_numpy()
        if df.get_column(c).dtype.is_float():
            nulls = nulls | df.get_column(c).is_nan().fill_null(True).to_numpy()
        if nulls.any():
            raise ModelSpecError(
                f"{role} column {c!r} has missing values at {rows_text(nulls)}; "
                "drop these rows or give them an explicit level"
            )
    keys = df.select(cols).unique().sort(cols)
    keyed = keys.with_row_index("__code")
    codes = (
        df.select(cols)
        .with_row_index("__row")
        .join(keyed, on=cols, how="left")
        .sort("__row")
        .get_column("__code")
        .to_numpy()
        .astype(np.int64)
    )
    if len(cols) == 1:
        labels = [str(v) for v in keys.get_column(cols[0]).to_list()]
    else:
        labels = [", ".join(f"{c}={v}" for c, v in zip(cols, row, strict=True)) for row in keys.iter_rows()]
    return codes, labels, keys


def z_value(conf_level: float) -> float:
    """The two-sided normal quantile for ``conf_level``."""
    from scipy.stats import norm

    if not 0 < conf_level < 1:
        raise ModelSpecError(f"conf_level must be between 0 and 1, got {conf_level}")
    return float(norm.ppf(0.5 + conf_level / 2))


def timefix(
    stop: np.ndarray, start: np.ndarray | None = None, *, tolerance: float = TIMEFIX_TOLERANCE
) -> tuple[np.ndarray, np.ndarray | None]:
    """Merge nearly equal times as R's ``aeqSurv`` (survival's ``timefix``, on by default in R).

    Sorted distinct (finite) start and stop times one after the other are tied when
    they differ by at most ``tolerance`` absolutely, or relative to the mean absolute
    time; each tied run takes its smallest value. This undoes floating-point noise
    (e.g. 1.0 and 1.0 + 1e-12 from date arithmetic) that would otherwise split one
    event time in two. A (start, stop] interval that collapses to length 0 is an error.
    """
    if tolerance <= 0:
        return stop, start
    allt = stop if start is None else np.concatenate([start, stop])
    finite = np.isfinite(allt)
    vals = allt[finite] if not finite.all() else allt
    y = np.unique(vals)  # a sort: the common no-ties case stops here
    if y.size < 2:
        return stop, start
    dy = np.diff(y)
    scale = np.mean(np.abs(y))
    with np.errstate(divide="ignore", invalid="ignore"):
        tied = (dy <= tolerance) | (dy / scale <= tolerance)
    if not tied.any():
        return stop, start
    inv = np.unique(vals, return_inverse=True)[1]
    # each distinct time -> the first time of its tied run
    run = np.concatenate([[0], np.cumsum(~tied)])
    first = y[np.concatenate([[True], ~tied])]
    fixed = allt.copy()
    fixed[finite] = first[run[inv.ravel()]]
    n = stop.size
    new_stop = fixed if start is None else fixed[n:]
    if start is None:
        return new_stop, None
    new_start = fixed[:n]
    zero = (new_start == new_stop) & (start != stop)
    if zero.any():
        raise ModelSpecError(
            f"after merging nearly equal times (timefix), the interval (start, stop] has length 0 at "
            f"{rows_text(zero)}; fix these times, or pass timefix=False"
        )
    return new_stop, new_start
