"""Right-hand-side formulas to design matrices (formulaic), without intercept, readable names."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import polars as pl

from cohort.errors import ModelSpecError
from cohort.survival._common import rows_text

__all__ = ["Design", "design_matrix"]

_CONTRAST = re.compile(r"C\(\s*([^,()]+?)\s*,\s*(?:contr\.)?treatment\([^)]*\)\s*\)")


def _readable(name: str) -> str:
    """``C(x, contr.treatment(base='b'))[T.a]`` -> ``C(x)[T.a]``."""
    return _CONTRAST.sub(r"C(\1)", name)


@dataclass(frozen=True)
class Design:
    """A design matrix and its bookkeeping.

    Attributes
    ----------
    X : (n, p) float array (no intercept column).
    names : column (coefficient) names.
    terms : term name -> list of column indices (for per-term tests).
    rows : the row indices of the input used (all rows unless missing="drop").
    """

    X: np.ndarray
    names: tuple[str, ...]
    terms: dict[str, list[int]]
    rows: np.ndarray
    dropped: int


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
    frame: pl.DataFrame, formula: str, *, missing: str = "error", extra: tuple[str, ...] = ()
) -> Design:
    """Build the covariate matrix of ``formula`` (right-hand side only) from ``frame``.

    ``missing="error"`` raises naming the rows with missing covariates;
    ``missing="drop"`` drops them (the count is reported by the caller).
    ``extra`` are columns that must also be complete (time, event, strata...).
    """
    import formulaic

    if "~" in formula:
        raise ModelSpecError(
            f"give only the right-hand side of the formula (e.g. 'age + C(sex)'), got {formula!r}; "
            "the outcome is set with time=/event="
        )
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
    cols = list(dict.fromkeys(needed + [c for c in extra if c is not None]))
    sub = frame.select(cols)
    miss = np.zeros(frame.height, dtype=bool)
    where = {}
    for c in cols:
        s = sub.get_column(c)
        m = s.is_null().to_numpy()
        if s.dtype.is_float():
            m = m | ~np.isfinite(s.fill_null(0.0).to_numpy())
        if m.any():
            where[c] = m
            miss |= m
    if miss.any() and missing == "error":
        detail = "; ".join(f"{c!r} at {rows_text(m)}" for c, m in where.items())
        raise ModelSpecError(
            f"missing or infinite values in model columns: {detail}. Drop or impute these rows, "
            "or pass missing='drop' to exclude them (the number dropped is recorded in .warnings)"
        )
    rows = np.flatnonzero(~miss)
    if miss.any():
        sub = sub.filter(pl.Series(~miss))
    if simple is not None:
        X = np.empty((sub.height, len(simple)), order="F")
        for j, c in enumerate(simple):
            X[:, j] = sub.get_column(c).cast(pl.Float64).to_numpy()
        return Design(X=X, names=tuple(simple), terms={c: [j] for j, c in enumerate(simple)}, rows=rows,
                      dropped=int(miss.sum()))
    pdf = sub.select(needed).to_pandas() if needed else None
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
            terms[_readable(str(term))] = cols_t
    return Design(
        X=X,
        names=tuple(_readable(names[i]) for i in keep),
        terms=terms,
        rows=rows,
        dropped=int(miss.sum()),
    )
