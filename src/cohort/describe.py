"""Descriptive epidemiology: Table 1, follow-up summary, attrition (flow) table.

Analysis layer: every function takes a polars frame (pandas is accepted and
converted) and never touches the study database.

- :func:`table1`: baseline characteristics overall and by group: "n (%)" for
  categorical variables, "mean (SD)" or "median [IQR]" for continuous ones,
  missing counts, standardised mean differences and optional p-values, as R's
  ``tableone::CreateTableOne``; ``.redacted()`` applies small-count suppression.
- :func:`follow_up_summary`: participants, events, person-years, median
  follow-up by the reverse Kaplan-Meier method and why follow-up ended.
- :func:`attrition`: how many participants remain at each step of a
  selection (enrolled -> treated -> followed up -> ...).

Standardised mean differences (Austin 2009, Stat Med 28:3083; Yang & Dalton
2012, SAS GF 335-2012), the formulas ``tableone`` uses:

- continuous: ``d = (m1 - m2) / sqrt((s1^2 + s2^2) / 2)`` with the sample SDs
  (denominator n - 1) of the non-missing values;
- categorical with levels 1..k (missing values left out, proportions ``p1``,
  ``p2`` of levels 2..k): ``d = sqrt((p1 - p2)' S^-1 (p1 - p2))`` with
  ``S = (S1 + S2) / 2``, ``S_g = diag(p_g) - p_g p_g'``; for a binary variable
  this is ``|p1 - p2| / sqrt((p1 (1 - p1) + p2 (1 - p2)) / 2)``.

The absolute value is reported. With more than two groups, ``smd`` is the mean of
the pairwise SMDs (as tableone's default).

>>> import polars as pl
>>> from cohort.describe import table1
>>> df = pl.DataFrame({"route": ["iv", "iv", "iv", "oral", "oral", "oral"],
...                    "age": [40.0, 50, 60, 45, 55, 65], "sex": ["f", "m", "f", "m", "m", "f"]})
>>> t = table1(df, by="route")
>>> t.summary.filter(pl.col("variable") == "age")["overall"].to_list()
['52.50 (9.35)']
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations
from typing import Any

import numpy as np
import polars as pl

from cohort._figure import figure_and_axes
from cohort.errors import ModelSpecError
from cohort.frames import as_polars

__all__ = [
    "Table1",
    "table1",
    "FollowUpSummary",
    "follow_up_summary",
    "Attrition",
    "attrition",
    "standardised_mean_difference",
]

OVERALL = "overall"
REDACTED = "[REDACTED]"
_RESERVED = {"variable", "level", "statistic", "p_value", "test", "smd", OVERALL}


# -- helpers -------------------------------------------------------------------------------
def _need_columns(df: pl.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        import difflib

        hints = []
        for c in missing:
            close = difflib.get_close_matches(c, df.columns, n=1)
            hints.append(f"{c!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ModelSpecError(
            f"{what}: column(s) {', '.join(hints)} not in the data; "
            f"available: {', '.join(df.columns[:20])}"
        )


def _redact(n: int | None, threshold: int, rounding: int) -> int | None:
    from cohort.report.disclosure import redact_count

    return redact_count(n, threshold=threshold, rounding=rounding)


def _redact_warnings(warnings: tuple[str, ...], threshold: int, rounding: int) -> tuple[str, ...]:
    from cohort.report.disclosure import redact_text

    return tuple(redact_text(w, threshold=threshold, rounding=rounding) for w in warnings)


def _level_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _is_categorical_dtype(dtype: pl.DataType) -> bool:
    return dtype in (pl.String, pl.Boolean) or isinstance(dtype, (pl.Categorical, pl.Enum))


def standardised_mean_difference(
    a: Sequence[Any] | np.ndarray, b: Sequence[Any] | np.ndarray, *, categorical: bool = False
) -> float:
    """Absolute standardised mean difference between two samples (Austin 2009).

    Missing values (None, NaN) are left out. Continuous: difference of means over
    the root mean of the two variances; categorical: Yang & Dalton's multinomial
    form (see the module docstring).

    Examples
    --------
    >>> round(standardised_mean_difference([1.0, 2, 3], [2.0, 3, 4]), 4)
    1.0
    >>> round(standardised_mean_difference(["a", "b", "b"], ["a", "a", "b"], categorical=True), 4)
    0.7071
    """
    if not categorical:
        x, y = (np.asarray(v, dtype=float) if isinstance(v, np.ndarray)
                else np.asarray([np.nan if e is None else e for e in v], dtype=float)
                for v in (a, b))
        x, y = x[~np.isnan(x)], y[~np.isnan(y)]
        if len(x) < 2 or len(y) < 2:
            return float("nan")
        pooled = math.sqrt((x.var(ddof=1) + y.var(ddof=1)) / 2)
        diff = abs(x.mean() - y.mean())
        if pooled == 0:
            return 0.0 if diff == 0 else float("inf")
        return float(diff / pooled)
    xa = [_level_text(v) for v in a if v is not None and not (isinstance(v, float) and math.isnan(v))]
    xb = [_level_text(v) for v in b if v is not None and not (isinstance(v, float) and math.isnan(v))]
    levels = sorted(set(xa) | set(xb))
    if not xa or not xb or len(levels) < 2:
        return float("nan") if not xa or not xb else 0.0
    p1 = np.array([xa.count(v) / len(xa) for v in levels[1:]])
    p2 = np.array([xb.count(v) / len(xb) for v in levels[1:]])
    return _categorical_smd(p1, p2)


def _categorical_smd(p1: np.ndarray, p2: np.ndarray) -> float:
    d = p1 - p2
    s = (np.diag(p1) - np.outer(p1, p1) + np.diag(p2) - np.outer(p2, p2)) / 2
    if not np.any(d):
        return 0.0
    value = float(d @ np.linalg.pinv(s) @ d)
    return math.sqrt(max(value, 0.0))


# -- Table 1 -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Table1:
    """Table 1: baseline characteristics overall and by group; see :func:`table1`.

    Attributes
    ----------
    summary : polars.DataFrame
        The table as people read it, one row per line: variable, level (category,
        "missing", or null), statistic ("n", "n (%)", "mean (SD)", "median [IQR]"),
        overall, one column per group, then smd and p_value/test when asked.
    cells : polars.DataFrame
        The numbers behind every cell, long format: variable, level, group, kind
        ("n", "categorical", "missing", "continuous"), count, denominator,
        percent, mean, sd, median, q1, q3 (counts null where redacted).
    tests : polars.DataFrame
        Per variable: variable, type, smd, test, statistic, df, p_value.
    groups : tuple of str
        The group labels in column order (empty without ``by``).
    redaction : dict or None
        ``{"threshold": .., "rounding": ..}`` when :meth:`redacted` made this table.
    """

    summary: pl.DataFrame
    cells: pl.DataFrame
    tests: pl.DataFrame
    by: str | None
    groups: tuple[str, ...]
    variables: tuple[str, ...]
    nonnormal: tuple[str, ...]
    digits: int = 2
    pct_digits: int = 1
    redaction: dict[str, int] | None = None
    warnings: tuple[str, ...] = ()
    converged: bool = True

    def redacted(self, threshold: int = 7, *, rounding: int = 5) -> Table1:
        """A copy with disclosure control on counts, for output leaving the study.

        Counts 1..``threshold`` become ``[REDACTED]`` (their percentage too), other
        counts are rounded to a multiple of ``rounding`` and their percentage is
        recomputed from the rounded count over the rounded denominator. A continuous
        summary whose number of non-missing values is redacted is suppressed.
        SMDs and p-values are kept.

        Examples
        --------
        >>> import polars as pl
        >>> df = pl.DataFrame({"g": ["a"] * 20 + ["b"] * 23, "x": ["y"] * 3 + ["n"] * 40})
        >>> t = table1(df, by="g").redacted()
        >>> t.summary.filter(pl.col("level") == "y")["a"].to_list()
        ['[REDACTED]']
        """
        if self.redaction is not None:
            raise ModelSpecError("this Table1 is already redacted; redact the original table")

        def red(n: Any) -> int | None:
            return None if n is None else _redact(int(n), threshold, rounding)

        cells = self.cells.with_columns(
            pl.col("count").map_elements(red, return_dtype=pl.Int64),
            pl.col("denominator").map_elements(red, return_dtype=pl.Int64),
        )
        pct = pl.when(pl.col("count").is_not_null() & (pl.col("denominator") > 0)).then(
            100.0 * pl.col("count") / pl.col("denominator"))
        # a continuous summary of a redacted number of values is suppressed
        hide = (pl.col("kind") == "continuous") & (
            pl.col("count").is_null() | (pl.col("count") == 0))
        cells = cells.with_columns(
            percent=pl.when(pl.col("kind").is_in(["categorical", "missing"])).then(pct)
            .otherwise(pl.col("percent")),
            **{c: pl.when(hide).then(None).otherwise(pl.col(c))
               for c in ("mean", "sd", "median", "q1", "q3")},
        )
        return replace(self, cells=cells, summary=_render(self, cells, self.tests),
                       redaction={"threshold": threshold, "rounding": rounding},
                       warnings=_redact_warnings(self.warnings, threshold, rounding))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable plain data: the table, the cells and the tests."""
        return {
            "estimator": "table1",
            "by": self.by,
            "groups": list(self.groups),
            "variables": list(self.variables),
            "nonnormal": list(self.nonnormal),
            "redaction": self.redaction,
            "summary": _plain(self.summary.to_dicts()),
            "cells": _plain(self.cells.to_dicts()),
            "tests": _plain(self.tests.to_dicts()),
            "warnings": list(self.warnings),
        }

    def to_html(self) -> str:
        """The table as an HTML ``<table>`` (variable names shown once per block)."""
        cols = self.summary.columns
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        body = []
        previous = None
        for row in self.summary.iter_rows(named=True):
            cells = []
            for c in cols:
                v = row[c]
                if c == "variable" and v == previous:
                    v = ""
                if isinstance(v, float):
                    v = "&lt;0.001" if c == "p_value" and v < 0.001 else f"{v:.3f}"
                    cells.append(f"<td>{v}</td>")
                else:
                    cells.append(f"<td>{'' if v is None else html.escape(str(v))}</td>")
            previous = row["variable"]
            body.append("<tr>" + "".join(cells) + "</tr>")
        note = ""
        if self.redaction:
            note = (f"<caption>Counts 1-{self.redaction['threshold']} redacted, others rounded "
                    f"to {self.redaction['rounding']}</caption>")
        return (f"<table class='table1'>{note}<thead><tr>{head}</tr></thead><tbody>"
                + "".join(body) + "</tbody></table>")

    def plot(self, *, threshold: float = 0.1, ax: Any = None):
        """Dot plot of the absolute SMD per variable (a "love plot"), with a line at ``threshold``."""
        t = self.tests.filter(pl.col("smd").is_not_null() & pl.col("smd").is_not_nan())
        fig, ax = figure_and_axes(ax, figsize=(6, 1 + 0.35 * max(t.height, 1)))
        y = np.arange(t.height)
        ax.scatter(t["smd"].to_numpy(), y, color="#345")
        ax.set_yticks(y, t["variable"].to_list())
        ax.axvline(threshold, color="#c33", linestyle="--", linewidth=1)
        ax.set_xlabel("absolute standardised mean difference")
        ax.invert_yaxis()
        ax.set_title(f"Balance by {self.by}" if self.by else "Balance")
        fig.tight_layout()
        return fig


def _plain(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Replace NaN/inf floats by None so the JSON is valid."""
    return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
            for r in rows]


def table1(
    df: Any,
    *,
    by: str | None = None,
    variables: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    nonnormal: Sequence[str] | None = None,
    missing: bool = True,
    smd: bool = True,
    test: bool = False,
    digits: int = 2,
    pct_digits: int = 1,
) -> Table1:
    """Table 1 of a cohort: characteristics overall and by group, as R's tableone.

    Parameters
    ----------
    df : polars or pandas DataFrame, one row per participant.
    by : grouping column (e.g. ``"route"``); rows with a missing group count in
        the overall column only (a warning says how many).
    variables : columns to describe, in order; default: every column but ``by``.
    categorical : numeric columns to treat as categorical (strings, booleans and
        categoricals always are). Levels are sorted; missing values are left out of
        the percentages and counted on a "missing" line.
    nonnormal : continuous columns summarised as "median [IQR]" (R's quantile
        type 7) and tested with Kruskal-Wallis; the others as "mean (SD)" and tested
        with a one-way ANOVA (equal variances; the t-test for two groups).
    missing : add a "missing" line, n (%) of all rows, for variables with missing values.
    smd : add the absolute standardised mean difference (see the module docstring).
    test : add p-values: chi-square (Yates' correction for 2 x 2, as R's
        ``chisq.test``) for categorical variables, ANOVA or Kruskal-Wallis for
        continuous ones.
    digits, pct_digits : decimals of continuous summaries and of percentages.

    Returns
    -------
    Table1

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"route": ["iv", "iv", "oral", "oral", "oral"],
    ...                    "sex": ["f", "m", "f", "f", None], "age": [30.0, 50, 40, 44, 48]})
    >>> t = table1(df, by="route", nonnormal=["age"])
    >>> t.summary.select("variable", "level", "iv", "oral").rows()[:3]
    [('n', None, '2', '3'), ('sex', 'f', '1 (50.0)', '2 (100.0)'), ('sex', 'm', '1 (50.0)', '0 (0.0)')]
    """
    data = as_polars(df, what="table1")
    if by is not None:
        _need_columns(data, [by], "table1 by=")
    if variables is None:
        variables = [c for c in data.columns if c != by]
    variables = list(variables)
    if not variables:
        raise ModelSpecError("table1: no variables to describe; pass variables=[...]")
    _need_columns(data, variables, "table1 variables=")
    categorical = list(categorical or [])
    nonnormal = list(nonnormal or [])
    _need_columns(data, categorical + nonnormal, "table1 categorical=/nonnormal=")
    if by is not None and by in variables:
        raise ModelSpecError(f"table1: {by!r} is the grouping column; leave it out of variables=")
    dup = sorted({v for v in variables if variables.count(v) > 1})
    if dup:
        raise ModelSpecError(f"table1: variables listed twice: {dup}")

    kinds: dict[str, str] = {}
    bad = []
    for v in variables:
        dtype = data.schema[v]
        if v in categorical or _is_categorical_dtype(dtype):
            if v in nonnormal:
                raise ModelSpecError(f"table1: {v!r} is categorical; remove it from nonnormal=")
            kinds[v] = "categorical"
        elif dtype.is_numeric():
            kinds[v] = "continuous"
        else:
            bad.append(f"{v} ({dtype})")
    if bad:
        raise ModelSpecError(
            f"table1: cannot describe column(s) {', '.join(bad)}: only numeric, string, boolean "
            "and categorical columns; leave them out with variables=[...] or derive a number "
            "(e.g. age from a date) first")

    warnings: list[str] = []
    if by is not None:
        group_values = data[by]
        n_null = int(group_values.null_count())
        if n_null:
            warnings.append(f"{n_null} row(s) with missing {by!r} counted in the overall column only")
        raw_levels = sorted(group_values.drop_nulls().unique().to_list(), key=_sort_key)
        groups = tuple(_level_text(g) for g in raw_levels)
        clash = [g for g in groups if g in _RESERVED]
        if clash:
            raise ModelSpecError(
                f"table1: group label(s) {clash} of {by!r} clash with the table's own columns; "
                "recode the grouping column")
        if len(groups) < 2:
            warnings.append(f"{by!r} has {len(groups)} group(s): no SMD or tests")
        parts = {g: data.filter(pl.col(by) == raw) for g, raw in zip(groups, raw_levels, strict=True)}
    else:
        groups = ()
        parts = {}
    frames = {OVERALL: data, **parts}

    cells: list[dict[str, Any]] = []
    for g, part in frames.items():
        cells.append(_cell("n", None, g, "n", count=part.height, denominator=part.height))
    tests: list[dict[str, Any]] = []
    for v in variables:
        kind = kinds[v]
        for g, part in frames.items():
            col = part[v]
            n_missing = int(col.null_count() + (col.is_nan().sum() if col.dtype.is_float() else 0))
            values = col.drop_nulls()
            if values.dtype.is_float():
                values = values.filter(~values.is_nan())
            if kind == "categorical":
                counts = dict(zip(*_value_counts(values), strict=True))
                for level in _levels(data[v]):
                    n = counts.get(level, 0)
                    cells.append(_cell(v, level, g, "categorical", count=n, denominator=values.len(),
                                       percent=100.0 * n / values.len() if values.len() else None))
            else:
                x = values.cast(pl.Float64).to_numpy()
                cells.append(_cell(
                    v, None, g, "continuous", count=len(x), denominator=part.height,
                    mean=float(x.mean()) if len(x) else None,
                    sd=float(x.std(ddof=1)) if len(x) > 1 else None,
                    median=float(np.median(x)) if len(x) else None,
                    q1=float(np.quantile(x, 0.25)) if len(x) else None,
                    q3=float(np.quantile(x, 0.75)) if len(x) else None))
            if missing:
                cells.append(_cell(v, "missing", g, "missing", count=n_missing, denominator=part.height,
                                   percent=100.0 * n_missing / part.height if part.height else None))
        tests.append(_test_row(v, kind, v in nonnormal, parts, smd=smd, test=test))

    cell_frame = pl.DataFrame(cells, schema=_CELL_SCHEMA)
    if missing:
        with_missing = set(cell_frame.filter((pl.col("kind") == "missing") & (pl.col("group") == OVERALL)
                                             & (pl.col("count") > 0))["variable"].to_list())
        cell_frame = cell_frame.filter((pl.col("kind") != "missing")
                                       | pl.col("variable").is_in(list(with_missing)))
    test_frame = pl.DataFrame(tests, schema=_TEST_SCHEMA)
    for row in tests:
        if row.get("_warning"):
            warnings.append(row["_warning"])
    result = Table1(summary=pl.DataFrame(), cells=cell_frame, tests=test_frame, by=by, groups=groups,
                    variables=tuple(variables), nonnormal=tuple(nonnormal), digits=digits,
                    pct_digits=pct_digits, warnings=tuple(warnings))
    return replace(result, summary=_render(result, cell_frame, test_frame, smd=smd, test=test))


_CELL_SCHEMA = {
    "variable": pl.String, "level": pl.String, "group": pl.String, "kind": pl.String,
    "count": pl.Int64, "denominator": pl.Int64, "percent": pl.Float64, "mean": pl.Float64,
    "sd": pl.Float64, "median": pl.Float64, "q1": pl.Float64, "q3": pl.Float64,
}
_TEST_SCHEMA = {
    "variable": pl.String, "type": pl.String, "smd": pl.Float64, "test": pl.String,
    "statistic": pl.Float64, "df": pl.Float64, "p_value": pl.Float64,
}


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, (int, float, bool)) else (1, str(value))


def _levels(col: pl.Series) -> list[str]:
    values = col.drop_nulls()
    if isinstance(values.dtype, pl.Enum):
        return [str(c) for c in values.dtype.categories.to_list()]
    return [_level_text(v) for v in sorted(values.unique().to_list(), key=_sort_key)]


def _value_counts(values: pl.Series) -> tuple[list[str], list[int]]:
    counts = values.value_counts()
    return ([_level_text(v) for v in counts[values.name].to_list()],
            [int(n) for n in counts["count"].to_list()])


def _cell(variable: str, level: str | None, group: str, kind: str, **numbers: Any) -> dict[str, Any]:
    row = {"variable": variable, "level": level, "group": group, "kind": kind}
    for key in ("count", "denominator", "percent", "mean", "sd", "median", "q1", "q3"):
        row[key] = numbers.get(key)
    return row


def _test_row(v: str, kind: str, nonnormal: bool, parts: Mapping[str, pl.DataFrame], *,
              smd: bool, test: bool) -> dict[str, Any]:
    from scipy import stats

    row: dict[str, Any] = {"variable": v, "type": "categorical" if kind == "categorical"
                           else ("nonnormal" if nonnormal else "continuous"),
                           "smd": None, "test": None, "statistic": None, "df": None, "p_value": None}
    samples = []
    for part in parts.values():
        s = part[v].drop_nulls()
        if s.dtype.is_float():
            s = s.filter(~s.is_nan())
        samples.append(s)
    if len(samples) < 2:
        return row
    table = None
    if kind == "categorical":
        # levels x groups matrix of counts (missing values left out)
        levels = sorted({_level_text(x) for s in samples for x in s.unique().to_list()})
        table = np.zeros((len(levels), len(samples)))
        index = {lv: i for i, lv in enumerate(levels)}
        for j, s in enumerate(samples):
            for lv, n in zip(*_value_counts(s), strict=True):
                table[index[lv], j] = n
    if smd:
        pairs = []
        for a, b in combinations(range(len(samples)), 2):
            if kind == "categorical":
                na, nb = table[:, a].sum(), table[:, b].sum()
                if na == 0 or nb == 0 or table.shape[0] < 2:
                    pairs.append(float("nan") if na == 0 or nb == 0 else 0.0)
                else:
                    pairs.append(_categorical_smd(table[1:, a] / na, table[1:, b] / nb))
            else:
                pairs.append(standardised_mean_difference(
                    samples[a].cast(pl.Float64).to_numpy(), samples[b].cast(pl.Float64).to_numpy()))
        finite = [p for p in pairs if not math.isnan(p)]
        row["smd"] = float(np.mean(finite)) if finite else None
    if not test:
        return row
    if table is not None:
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[0] < 2 or table.shape[1] < 2:
            return row
        chi2, p, dof, expected = stats.chi2_contingency(table, correction=True)
        row.update(test="chisq", statistic=float(chi2), df=float(dof), p_value=float(p))
        if (expected < 5).any():
            row["_warning"] = (f"{v}: chi-square test with expected counts below 5; "
                               "consider an exact test")
    else:
        xs = [s.cast(pl.Float64).to_numpy() for s in samples if s.len() > 0]
        if len(xs) < 2:
            return row
        if nonnormal:
            h, p = stats.kruskal(*xs)
            row.update(test="kruskal", statistic=float(h), df=float(len(xs) - 1), p_value=float(p))
        else:
            f, p = stats.f_oneway(*xs)
            row.update(test="anova", statistic=float(f), df=float(len(xs) - 1), p_value=float(p))
    return row


def _fmt_cell(row: dict[str, Any], nonnormal: bool, digits: int, pct_digits: int) -> str | None:
    kind = row["kind"]
    if kind == "n":
        return REDACTED if row["count"] is None else str(row["count"])
    if kind in ("categorical", "missing"):
        if row["count"] is None:
            return REDACTED
        pct = row["percent"]
        return f"{row['count']} ({'-' if pct is None else f'{pct:.{pct_digits}f}'})"
    if nonnormal:
        if row["median"] is None:
            return REDACTED if row["count"] is None else "-"
        return f"{row['median']:.{digits}f} [{row['q1']:.{digits}f}, {row['q3']:.{digits}f}]"
    if row["mean"] is None:
        return REDACTED if row["count"] is None else "-"
    sd = "-" if row["sd"] is None else f"{row['sd']:.{digits}f}"
    return f"{row['mean']:.{digits}f} ({sd})"


def _render(t: Table1, cells: pl.DataFrame, tests: pl.DataFrame, *, smd: bool | None = None,
            test: bool | None = None) -> pl.DataFrame:
    if smd is None:
        smd = "smd" in t.summary.columns
    if test is None:
        test = "p_value" in t.summary.columns
    columns = [OVERALL, *t.groups]
    rows: dict[tuple[str, str | None, str], dict[str, Any]] = {}
    for r in cells.iter_rows(named=True):
        nonnormal = r["variable"] in t.nonnormal
        key = (r["variable"], r["level"], r["kind"])
        if key not in rows:
            if r["kind"] == "n":
                stat = "n"
            elif r["kind"] in ("categorical", "missing"):
                stat = "n (%)"
            else:
                stat = "median [IQR]" if nonnormal else "mean (SD)"
            rows[key] = {"variable": r["variable"], "level": r["level"], "statistic": stat,
                         **dict.fromkeys(columns)}
        rows[key][r["group"]] = _fmt_cell(r, nonnormal, t.digits, t.pct_digits)
    by_var = {r["variable"]: r for r in tests.iter_rows(named=True)}
    seen: set[str] = set()
    out = []
    for key, row in rows.items():
        first = key[0] not in seen
        seen.add(key[0])
        extra = by_var.get(key[0], {})
        if smd:
            row["smd"] = extra.get("smd") if first else None
        if test:
            row["p_value"] = extra.get("p_value") if first else None
            row["test"] = extra.get("test") if first else None
        out.append(row)
    schema = {"variable": pl.String, "level": pl.String, "statistic": pl.String,
              **dict.fromkeys(columns, pl.String)}
    if smd:
        schema["smd"] = pl.Float64
    if test:
        schema["p_value"] = pl.Float64
        schema["test"] = pl.String
    return pl.DataFrame(out, schema=schema, orient="row")


# -- follow-up -------------------------------------------------------------------------------
@dataclass(frozen=True)
class FollowUpSummary:
    """Follow-up of a cohort; see :func:`follow_up_summary`.

    Attributes
    ----------
    summary : polars.DataFrame
        One row per group: group, participants, events, person_years, median_follow_up
        (reverse Kaplan-Meier) with conf_low, conf_high, q1_follow_up, q3_follow_up,
        median_observed (median of the observed times), max_follow_up.
    censoring : polars.DataFrame
        group, reason (why follow-up ended: the censoring reason, or "event"), n, percent.
    """

    summary: pl.DataFrame
    censoring: pl.DataFrame
    time: str
    unit: str
    redaction: dict[str, int] | None = None
    warnings: tuple[str, ...] = ()
    converged: bool = True

    def redacted(self, threshold: int = 7, *, rounding: int = 5) -> FollowUpSummary:
        """A copy with participants, events and reason counts redacted/rounded (percentages recomputed)."""

        def red(n: Any) -> int | None:
            return None if n is None else _redact(int(n), threshold, rounding)

        summary = self.summary.with_columns(
            pl.col(c).map_elements(red, return_dtype=pl.Int64) for c in ("participants", "events"))
        censoring = self.censoring.with_columns(pl.col("n").map_elements(red, return_dtype=pl.Int64))
        total = censoring.group_by("group").agg(total=pl.col("n").sum())
        censoring = censoring.join(total, on="group", how="left").with_columns(
            percent=pl.when(pl.col("n").is_not_null() & (pl.col("total") > 0))
            .then(100.0 * pl.col("n") / pl.col("total"))).drop("total")
        return replace(self, summary=summary, censoring=censoring,
                       redaction={"threshold": threshold, "rounding": rounding},
                       warnings=_redact_warnings(self.warnings, threshold, rounding))

    def to_dict(self) -> dict[str, Any]:
        return {"estimator": "follow_up_summary", "time": self.time, "unit": self.unit,
                "redaction": self.redaction, "summary": _plain(self.summary.to_dicts()),
                "censoring": _plain(self.censoring.to_dicts()), "warnings": list(self.warnings)}


def follow_up_summary(
    tte_df: Any,
    *,
    time: str = "time_years",
    event: str = "event",
    by: str | None = None,
    censor_reason: str | None = "censor_reason",
    unit: str = "years",
) -> FollowUpSummary:
    """How long participants were followed: person-years and median follow-up.

    The median follow-up is the reverse Kaplan-Meier estimate (Schemper & Smith
    1996): Kaplan-Meier of the time to censoring, the event of interest acting as a
    censoring, so participants whose follow-up ended with the event count as
    followed up to then and no longer. It is computed with
    :func:`cohort.survival.kaplan_meier` (95% CI, log transform, as R's ``survfit``).

    Parameters
    ----------
    tte_df : one row per participant, e.g. ``study.derive("time_to_event")``.
    time : follow-up time column.
    event : 0/1 event column (1: follow-up ended with the event).
    by : optional grouping column.
    censor_reason : column saying why follow-up ended for the censored (null for
        events), or None.
    unit : ``"years"`` or ``"days"`` (days are divided by 365.25 for person-years).

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"time_years": [1.0, 2, 3, 4, 5], "event": [1, 0, 1, 0, 0],
    ...                    "censor_reason": [None, "withdrew", None, "completed", "completed"]})
    >>> s = follow_up_summary(df)
    >>> s.summary.select("participants", "events", "person_years", "median_follow_up").row(0)
    (5, 2, 15.0, 4.0)
    """
    from cohort.survival import kaplan_meier

    data = as_polars(tte_df, what="follow_up_summary")
    needed = [time, event] + ([by] if by else []) + ([censor_reason] if censor_reason else [])
    _need_columns(data, needed, "follow_up_summary")
    if unit not in ("years", "days"):
        raise ModelSpecError(f"follow_up_summary: unit={unit!r}; use 'years' or 'days'")
    bad = data.filter(pl.col(time).is_null() | (pl.col(time) < 0) | pl.col(event).is_null()
                      | ~pl.col(event).cast(pl.Int64, strict=False).is_in([0, 1]))
    if bad.height:
        rows = data.with_row_index("_row").filter(
            pl.col(time).is_null() | (pl.col(time) < 0) | pl.col(event).is_null()
            | ~pl.col(event).cast(pl.Int64, strict=False).is_in([0, 1]))["_row"].head(5).to_list()
        raise ModelSpecError(
            f"follow_up_summary: {bad.height} row(s) with a missing or negative {time!r} or an "
            f"{event!r} other than 0/1 (rows {rows}); fix or filter them first")
    scale = 1.0 if unit == "years" else 1 / 365.25
    warnings: list[str] = []
    data = data.with_columns(_censored=1 - pl.col(event).cast(pl.Int64),
                             _group=pl.lit("all") if by is None else pl.col(by).cast(pl.String))
    if by is not None and data["_group"].null_count():
        warnings.append(f"{data['_group'].null_count()} row(s) with missing {by!r} left out")
        data = data.filter(pl.col("_group").is_not_null())
    km = kaplan_meier(data, time=time, event="_censored", by="_group")
    med = km.median()
    q1 = km.quantile(0.25).select("group", q1_follow_up="time")
    q3 = km.quantile(0.75).select("group", q3_follow_up="time")
    counts = data.group_by("_group").agg(
        participants=pl.len(), events=pl.col(event).cast(pl.Int64).sum(),
        person_years=pl.col(time).cast(pl.Float64).sum() * scale,
        median_observed=pl.col(time).cast(pl.Float64).median(),
        max_follow_up=pl.col(time).cast(pl.Float64).max(),
    ).rename({"_group": "group"})
    summary = (counts.join(med.rename({"median": "median_follow_up"}), on="group", how="left")
               .join(q1, on="group", how="left").join(q3, on="group", how="left")
               .select("group", "participants", "events", "person_years", "median_follow_up",
                       "conf_low", "conf_high", "q1_follow_up", "q3_follow_up", "median_observed",
                       "max_follow_up")
               .with_columns(pl.col("participants", "events").cast(pl.Int64))
               .sort("group"))
    if censor_reason is not None:
        reason = pl.when(pl.col(event).cast(pl.Int64) == 1).then(pl.lit("event")).otherwise(
            pl.col(censor_reason).cast(pl.String).fill_null("unknown"))
        censoring = (data.with_columns(reason=reason).group_by("_group", "reason")
                     .agg(n=pl.len()).rename({"_group": "group"}))
    else:
        censoring = (data.with_columns(reason=pl.when(pl.col(event).cast(pl.Int64) == 1)
                                       .then(pl.lit("event")).otherwise(pl.lit("censored")))
                     .group_by("_group", "reason").agg(n=pl.len()).rename({"_group": "group"}))
    censoring = (censoring.with_columns(pl.col("n").cast(pl.Int64))
                 .with_columns(percent=100.0 * pl.col("n") / pl.col("n").sum().over("group"))
                 .sort("group", "n", descending=[False, True]))
    return FollowUpSummary(summary=summary, censoring=censoring, time=time, unit=unit,
                           warnings=tuple(warnings + list(km.warnings)))


# -- attrition -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Attrition:
    """A participant flow (attrition) table; see :func:`attrition`.

    Attributes
    ----------
    summary : polars.DataFrame
        One row per step: step, n (participants remaining), excluded (lost since the
        previous step), percent_of_start, percent_of_previous, reason (why excluded).
    """

    summary: pl.DataFrame
    id: str
    redaction: dict[str, int] | None = None
    warnings: tuple[str, ...] = ()
    converged: bool = True
    excluded_ids: dict[str, tuple[Any, ...]] = field(default_factory=dict, repr=False)

    def redacted(self, threshold: int = 7, *, rounding: int = 5) -> Attrition:
        """A copy with n and excluded redacted/rounded and percentages recomputed; no ids kept.

        ``excluded`` is recomputed from the rounded ``n`` where both are shown, so
        the rounded numbers add up down the flow.
        """

        def red(n: Any) -> int | None:
            return None if n is None else _redact(int(n), threshold, rounding)

        n = [red(v) for v in self.summary["n"].to_list()]
        excl_raw = self.summary["excluded"].to_list()
        excluded: list[int | None] = []
        for i, e in enumerate(excl_raw):
            if i == 0:
                excluded.append(None)
            elif red(e) is None and e:
                excluded.append(None)
            elif n[i] is not None and n[i - 1] is not None:
                excluded.append(n[i - 1] - n[i])
            else:
                excluded.append(red(e))
        first = n[0]
        summary = self.summary.with_columns(
            n=pl.Series(n, dtype=pl.Int64), excluded=pl.Series(excluded, dtype=pl.Int64),
        ).with_columns(
            percent_of_start=pl.when(pl.col("n").is_not_null() & (pl.lit(first or 0) > 0))
            .then(100.0 * pl.col("n") / (first or 1)),
            percent_of_previous=pl.when(pl.col("n").is_not_null() & (pl.col("n").shift(1) > 0))
            .then(100.0 * pl.col("n") / pl.col("n").shift(1)),
        )
        return replace(self, summary=summary, excluded_ids={},
                       redaction={"threshold": threshold, "rounding": rounding},
                       warnings=_redact_warnings(self.warnings, threshold, rounding))

    def to_dict(self) -> dict[str, Any]:
        return {"estimator": "attrition", "id": self.id, "redaction": self.redaction,
                "summary": _plain(self.summary.to_dicts()), "warnings": list(self.warnings)}

    def plot(self, *, ax: Any = None):
        """A flow diagram: one box per step with its n, the exclusions to the side."""
        rows = self.summary.to_dicts()
        fig, ax = figure_and_axes(ax, figsize=(7, 1.3 * len(rows) + 0.5))
        ax.set_xlim(0, 10)
        ax.set_ylim(-len(rows) * 1.3, 0.8)
        ax.axis("off")
        box = {"boxstyle": "round,pad=0.4", "facecolor": "#eef2f6", "edgecolor": "#345"}
        for i, r in enumerate(rows):
            y = -i * 1.3
            n = REDACTED if r["n"] is None else f"n = {r['n']}"
            ax.text(3, y, f"{r['step']}\n{n}", ha="center", va="center", bbox=box, fontsize=9)
            if i > 0:
                ax.annotate("", xy=(3, y + 0.35), xytext=(3, y + 0.95),
                            arrowprops={"arrowstyle": "->", "color": "#345"})
                excl = REDACTED if r["excluded"] is None else str(r["excluded"])
                label = f"excluded: {excl}" + (f"\n{r['reason']}" if r.get("reason") else "")
                ax.text(7.2, y + 0.65, label, ha="center", va="center", fontsize=8,
                        bbox={"boxstyle": "round,pad=0.3", "facecolor": "white",
                              "edgecolor": "#999"})
        fig.tight_layout()
        return fig


def attrition(
    steps: Mapping[str, Any] | Sequence[tuple[str, Any]],
    *,
    id: str = "participant_id",
    reasons: Mapping[str, str] | None = None,
) -> Attrition:
    """Attrition (flow) table: participants remaining after each selection step.

    Each step is a label and the participants who meet it: a data frame with an
    ``id`` column (several rows per participant are fine) or any iterable of ids.
    A participant remains at step k when present in step k's frame *and* in every
    earlier step (steps are intersected in order), so ``n`` never increases.
    Participants of a step absent from the first step are left out with a warning
    (e.g. sessions of someone not enrolled).

    Parameters
    ----------
    steps : ordered mapping (or list of pairs) label -> frame or ids, starting with
        the whole cohort, e.g. ``{"enrolled": participants, "with a session": sessions}``.
    id : participant id column of the frames.
    reasons : optional label -> reason text for the exclusions at that step.

    Examples
    --------
    >>> import polars as pl
    >>> enrolled = pl.DataFrame({"participant_id": [1, 2, 3, 4]})
    >>> sessions = pl.DataFrame({"participant_id": [1, 1, 2, 4]})
    >>> a = attrition({"enrolled": enrolled, "with a session": sessions, "followed up": [1, 4]})
    >>> a.summary.select("step", "n", "excluded").rows()
    [('enrolled', 4, None), ('with a session', 3, 1), ('followed up', 2, 1)]
    """
    items = list(steps.items()) if isinstance(steps, Mapping) else list(steps)
    if not items:
        raise ModelSpecError("attrition: no steps; pass e.g. {'enrolled': participants, ...}")
    reasons = dict(reasons or {})
    unknown = [k for k in reasons if k not in {label for label, _ in items}]
    if unknown:
        raise ModelSpecError(f"attrition: reasons for unknown step(s) {unknown}")
    remaining: set[Any] | None = None
    rows: list[dict[str, Any]] = []
    warnings: list[str] = []
    excluded_ids: dict[str, tuple[Any, ...]] = {}
    first_n = None
    first_ids: set[Any] = set()
    for label, value in items:
        ids = _ids(value, id=id, label=label)
        if remaining is None:
            kept = ids
            first_n = len(kept)
            excluded = None
        else:
            outside = ids - first_ids
            if outside:
                warnings.append(f"attrition step {label!r}: {len(outside)} participant(s) not "
                                f"in the first step {items[0][0]!r} left out")
            kept = ids & remaining
            lost = remaining - kept
            excluded = len(lost)
            excluded_ids[label] = tuple(sorted(lost, key=_sort_key))
        prev_n = rows[-1]["n"] if rows else None
        rows.append({
            "step": label, "n": len(kept), "excluded": excluded,
            "percent_of_start": 100.0 * len(kept) / first_n if first_n else None,
            "percent_of_previous": (100.0 * len(kept) / prev_n) if prev_n else None,
            "reason": reasons.get(label),
        })
        if remaining is None:
            first_ids = set(kept)
        remaining = kept
    summary = pl.DataFrame(rows, schema={
        "step": pl.String, "n": pl.Int64, "excluded": pl.Int64, "percent_of_start": pl.Float64,
        "percent_of_previous": pl.Float64, "reason": pl.String})
    return Attrition(summary=summary, id=id, warnings=tuple(warnings), excluded_ids=excluded_ids)


def _ids(value: Any, *, id: str, label: str) -> set[Any]:
    if isinstance(value, (pl.DataFrame, pl.LazyFrame)) or type(value).__name__ == "DataFrame":
        frame = value.collect() if isinstance(value, pl.LazyFrame) else as_polars(value, what="attrition")
        if id not in frame.columns:
            raise ModelSpecError(
                f"attrition step {label!r}: no column {id!r} (columns: {', '.join(frame.columns[:12])}); "
                "pass id= the participant id column")
        return set(frame[id].drop_nulls().to_list())
    if isinstance(value, pl.Series):
        return set(value.drop_nulls().to_list())
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ModelSpecError(
            f"attrition step {label!r}: expected a data frame with {id!r} or a collection of ids, "
            f"got {type(value).__name__}")
    return {v for v in value if v is not None}
