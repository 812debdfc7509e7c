"""Right-hand-side formulas to design matrices (formulaic), without intercept, readable names.

Levels of categorical covariates follow one rule, whatever the row order (see
:mod:`cohort._levels`): strings sorted as R's ``factor()`` in the C locale, polars
``Enum`` and pandas ordered Categoricals in their declared order, other Categoricals
sorted as strings; the first level is the reference unless
``C(x, reference="b")`` / ``treatment(x, reference="b")`` names another.
``offset(expr)`` adds ``expr`` to the linear predictor with its coefficient fixed at 1
(see :mod:`cohort._offset`); only models that take an offset accept it.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from cohort._levels import pandas_with_levels, readable_name, rewrite_reference
from cohort._missing import incomplete_rows
from cohort._offset import offset_columns, offset_values, split_offsets
from cohort.errors import ModelSpecError
from cohort.survival._common import rows_text

__all__ = ["Design", "design_matrix", "new_design_matrix"]

@dataclass(frozen=True)
class Design:
    """A design matrix and its bookkeeping.

    Attributes
    ----------
    X : (n, p) float array (no intercept column).
    names : column (coefficient) names.
    terms : term name -> list of column indices (for per-term tests).
    rows : the row indices of the input used (the rows complete in the columns used).
    dropped : how many rows were left out for missing values.
    formula : the formula as given to formulaic (after rewriting ``treatment(...)``).
    spec : formulaic's ModelSpec (None for a plain sum of numeric columns), to
        build the same columns for new data (same levels and contrasts).
    columns : the data columns the formula's terms use (not its offset).
    offset : the sum of the ``offset(...)`` terms for the rows used, or None.
    notes : the note stating the rows left out for missing values (empty if none).
    """

    X: np.ndarray
    names: tuple[str, ...]
    terms: dict[str, list[int]]
    rows: np.ndarray
    dropped: int
    formula: str = ""
    spec: Any = None
    columns: tuple[str, ...] = ()
    offset: np.ndarray | None = None
    notes: tuple[str, ...] = ()


def _simple_terms(frame: pl.DataFrame, formula: str) -> list[str] | None:
    """The columns of a formula that is only ``a + b + `c.d```, all numeric; else None."""
    parts = [t.strip() for t in formula.split("+")]
    out = []
    for t in parts:
        name = t[1:-1] if len(t) > 2 and t[0] == t[-1] == "`" else t
        if name not in frame.columns or not (t == name or t[0] == "`"):
            return None
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and t[0] != "`":
            return None
        dt = frame.schema[name]
        if not (dt.is_numeric() or dt == pl.Boolean):
            return None
        out.append(name)
    return out if out and len(set(out)) == len(out) else None


def design_matrix(
    frame: pl.DataFrame,
    formula: str,
    *,
    missing: str = "drop",
    extra: tuple[str | None, ...] = (),
    model: str = "cox",
    allow_offset: bool = False,
) -> Design:
    """Build the covariate matrix of ``formula`` (right-hand side only) from ``frame``.

    ``missing="drop"`` (default, as R's ``na.omit``) leaves out the rows with a missing value
    (null or NaN) in a column used, the formula's or ``extra`` (time, event, strata...), and
    ``Design.notes`` states how many, per column and which rows; ``missing="raise"`` refuses
    them (see :mod:`cohort._missing`). Infinite covariates are refused. ``model`` names the
    caller in messages.

    Names: numeric columns keep their name; a categorical column ``x`` gives one
    column per non-reference level named ``C(x)[T.level]`` (formulaic's
    names, with any contrast specification removed: ``C(x, contr.treatment(base='b'))``,
    ``C(x, Treatment(reference='b'))`` and ``treatment(x, reference='b')`` all give
    ``C(x)[T.a]``); strings used without ``C()`` give ``x[T.level]``; interactions
    join with ``:``. Category levels: see the module docstring. ``offset(expr)``
    terms (only with ``allow_offset=True``) are taken out of the design and summed
    into ``Design.offset``; their columns must be complete too.
    """
    import formulaic

    if "~" in formula:
        raise ModelSpecError(
            f"give only the right-hand side of the formula (e.g. 'age + C(sex)'), got {formula!r}; "
            "the outcome is set with time=/event="
        )
    formula, offsets = split_offsets(rewrite_reference(formula))
    if offsets and not allow_offset:
        raise ModelSpecError(
            f"offset({offsets[0]}) is not available in this model; offset() is supported by cox and gee"
        )
    if offsets and not formula:
        raise ModelSpecError("the formula has only an offset(); add at least one covariate")
    off_cols = offset_columns(offsets, frame.columns)
    try:
        parsed = formulaic.Formula(formula)
        required = set(parsed.required_variables)
    except Exception as exc:
        raise ModelSpecError(f"cannot parse formula {formula!r}: {exc}") from None
    # columns the formula uses (formulaic's required_variables misses `quoted.names`)
    needed = [
        c
        for c in frame.columns
        if c in required or f"`{c}`" in formula or re.search(rf"(?<![\w.`]){re.escape(c)}(?![\w.`])", formula)
    ]
    needed = [c for c in needed if c in required or f"`{c}`" in formula or "." not in c or c in formula]
    simple = _simple_terms(frame, formula)
    if simple is not None:
        needed = simple
    cols = list(dict.fromkeys(needed + off_cols + [c for c in extra if c is not None]))
    sub = frame.select(cols)
    miss, note = incomplete_rows(sub, cols, rows=np.arange(frame.height), model=model, missing=missing)
    for c in needed + off_cols:
        s = sub.get_column(c)
        if s.dtype.is_float():
            inf = np.isinf(s.fill_null(0.0).to_numpy()) & ~miss
            if inf.any():
                raise ModelSpecError(
                    f"{model}: column {c!r} has infinite values at {rows_text(inf)}; fix or drop these rows"
                )
    rows = np.flatnonzero(~miss)
    if miss.any():
        sub = sub.filter(pl.Series(~miss))
    offset = offset_values(sub.select(off_cols).to_pandas(), offsets, rows=rows) if offsets else None
    if simple is not None:
        X = np.empty((sub.height, len(simple)), order="F")
        for j, c in enumerate(simple):
            X[:, j] = sub.get_column(c).cast(pl.Float64).to_numpy()
        return Design(X=X, names=tuple(simple), terms={c: [j] for j, c in enumerate(simple)}, rows=rows,
                      dropped=int(miss.sum()), formula=formula, spec=None, columns=tuple(simple), offset=offset,
                      notes=(note,) if note else ())
    pdf = pandas_with_levels(sub, needed) if needed else None
    try:
        mm = formulaic.model_matrix(formula, pdf, na_action="ignore")
    except Exception as exc:
        raise ModelSpecError(
            f"cannot build the design for {formula!r}: {exc}. Available columns: "
            f"{', '.join(frame.columns[:30])}; quote names with dots in backticks, e.g. `ph.ecog`"
        ) from None
    names = list(mm.columns)
    keep = [i for i, nm in enumerate(names) if nm != "Intercept"]
    X = np.asarray(mm.to_numpy(), dtype=np.float64)[:, keep]
    pos = {old: new for new, old in enumerate(keep)}
    terms: dict[str, list[int]] = {}
    for term, idx in mm.model_spec.term_indices.items():
        cols_t = [pos[i] for i in idx if i in pos]
        if cols_t:
            terms[readable_name(str(term))] = cols_t
    return Design(
        X=X,
        names=tuple(readable_name(names[i]) for i in keep),
        terms=terms,
        rows=rows,
        dropped=int(miss.sum()),
        formula=formula,
        spec=mm.model_spec,
        columns=tuple(needed),
        offset=offset,
        notes=(note,) if note else (),
    )


def new_design_matrix(design: Design, frame: pl.DataFrame, *, role: str = "newdata") -> np.ndarray:
    """The columns of ``design`` (same levels, contrasts and order) built from new data ``frame``.

    Raises ModelSpecError naming missing columns, rows with missing values and
    category levels not seen when fitting, and models with an ``offset()`` (whose
    predictions would need the offset of the new rows: not supported yet).
    """
    if design.offset is not None:
        raise ModelSpecError(
            f"{role}: predictions from a model with offset() ({design.formula!r}) are not supported yet"
        )
    absent = [c for c in design.columns if c not in frame.columns]
    if absent:
        raise ModelSpecError(
            f"{role} lacks the column(s) {', '.join(map(repr, absent))} used by the formula "
            f"{design.formula!r}; add them"
        )
    sub = frame.select(list(design.columns))
    for c in design.columns:
        s = sub.get_column(c)
        m = s.is_null().to_numpy()
        if s.dtype.is_float():
            m = m | ~np.isfinite(s.fill_null(0.0).to_numpy())
        if m.any():
            raise ModelSpecError(
                f"{role} column {c!r} has missing or infinite values at {rows_text(m)}; "
                "predictions need complete covariates"
            )
    if design.spec is None:
        X = np.empty((sub.height, len(design.columns)), order="F")
        for j, c in enumerate(design.columns):
            s = sub.get_column(c)
            if not (s.dtype.is_numeric() or s.dtype == pl.Boolean):
                raise ModelSpecError(f"{role} column {c!r} has type {s.dtype}, expected numbers")
            X[:, j] = s.cast(pl.Float64).to_numpy()
        return X
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            mm = design.spec.get_model_matrix(sub.to_pandas(), na_action="ignore")
        except Exception as exc:
            raise ModelSpecError(f"cannot build the columns of {design.formula!r} for {role}: {exc}") from None
    for w in caught:
        if "outside of the nominated levels" in str(w.message) or "not seen" in str(w.message):
            raise ModelSpecError(f"{role} has category levels not seen when fitting: {w.message}")
    names = [readable_name(n) for n in mm.columns if n != "Intercept"]
    if tuple(names) != design.names:
        raise ModelSpecError(
            f"{role} gives the columns {names}, expected {list(design.names)}; check the category columns"
        )
    keep = [i for i, n in enumerate(mm.columns) if n != "Intercept"]
    return np.asarray(mm.to_numpy(), dtype=np.float64)[:, keep]
