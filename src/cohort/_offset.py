"""``offset(x)`` terms in a formula: a term whose coefficient is fixed at 1, as R's ``offset()``.

Used by both formula front ends: :func:`split_offsets` takes the ``offset(...)``
terms out of a formula (formulaic has none) and :func:`offset_values` evaluates them
(any formulaic expression giving one numeric column, e.g. ``offset(log(years))``);
several offsets add up, as in R.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from cohort.errors import ModelSpecError

__all__ = ["split_offsets", "offset_columns", "offset_values"]

_START = re.compile(r"(?<![\w.`])offset\s*\(")


def split_offsets(formula: str) -> tuple[str, tuple[str, ...]]:
    """The formula without its ``offset(...)`` terms, and the expressions inside them.

    Parameters
    ----------
    formula
        A formula or its right-hand side, e.g. ``"y ~ x + offset(log(t))"``.

    Returns
    -------
    tuple of (str, tuple of str)
        The formula with the offset terms removed (``"y ~ x"``; ``"y ~ 1"`` when
        nothing else is on the right) and the offset expressions (``("log(t)",)``).

    Raises
    ------
    ModelSpecError
        An ``offset(...)`` that is not a term of its own (joined with ``:`` or ``*``)
        or has unbalanced parentheses.

    Examples
    --------
    >>> split_offsets("age + offset(log(pt))")
    ('age', ('log(pt)',))
    """
    exprs: list[str] = []
    out = formula
    while (m := _START.search(out)) is not None:
        depth, i = 1, m.end()
        while i < len(out) and depth:
            depth += {"(": 1, ")": -1}.get(out[i], 0)
            i += 1
        if depth:
            raise ModelSpecError(f"unbalanced parentheses in {formula!r} after 'offset('")
        before, after = out[: m.start()].rstrip(), out[i:].lstrip()
        if (before and before[-1] not in "+~") or (after and after[0] not in "+-)"):
            raise ModelSpecError(
                f"offset(...) in {formula!r} must be a term of its own, added with '+' "
                "(e.g. 'age + offset(log(years))'); it cannot be part of an interaction"
            )
        exprs.append(out[m.end() : i - 1].strip())
        if before.endswith("+"):
            before = before[:-1].rstrip()
        elif after.startswith("+"):
            after = after[1:].lstrip()
        out = f"{before} {after}".strip()
    if not exprs:
        return formula, ()
    if out.endswith("~"):
        out += " 1"
    return out, tuple(exprs)


def offset_columns(exprs: Sequence[str], columns: Sequence[str]) -> list[str]:
    """The data columns that the offset expressions use.

    Parameters
    ----------
    exprs
        Offset expressions from :func:`split_offsets`.
    columns
        The data's columns.

    Returns
    -------
    list of str
        In the data's column order.
    """
    from formulaic import Formula

    needed: set[str] = set()
    for e in exprs:
        try:
            needed |= set(Formula(e).required_variables)
        except Exception as exc:  # noqa: BLE001
            raise ModelSpecError(f"cannot parse offset({e}): {exc}") from None
        needed |= {c for c in columns if f"`{c}`" in e}
    return [c for c in columns if c in needed]


def offset_values(
    pdf: pd.DataFrame, exprs: Sequence[str], *, rows: np.ndarray | None = None, context: dict | None = None
) -> np.ndarray | None:
    """The sum of the offset expressions evaluated on the model's rows (None without offsets).

    Parameters
    ----------
    pdf
        The complete-case rows, with the columns the offsets use.
    exprs
        Offset expressions from :func:`split_offsets`.
    rows
        The data's (0-based) row index of each row of ``pdf``, for messages; default
        the positions in ``pdf``.
    context
        Extra functions for formulaic.

    Returns
    -------
    numpy.ndarray or None

    Raises
    ------
    ModelSpecError
        An expression that is not one numeric column, or values that are not finite
        (e.g. ``log(0)``), naming the rows (0-based row indices of the data).

    Examples
    --------
    >>> import pandas as pd
    >>> offset_values(pd.DataFrame({"pt": [1.0, 10.0]}), ["log10(pt)"]).tolist()
    [0.0, 1.0]
    """
    from formulaic import model_matrix

    if not exprs:
        return None
    total = np.zeros(len(pdf))
    for e in exprs:
        try:
            with np.errstate(divide="ignore", invalid="ignore"):  # log(0) is reported below
                mm = model_matrix(f"0 + {e}", pdf, context=context or {}, na_action="ignore")
        except Exception as exc:  # noqa: BLE001
            raise ModelSpecError(f"cannot evaluate offset({e}): {exc}") from None
        if mm.shape[1] != 1:
            raise ModelSpecError(
                f"offset({e}) gives {mm.shape[1]} columns; an offset must be one number per row "
                "(a numeric column or a transform of one, e.g. offset(log(years)))"
            )
        v = np.asarray(mm, dtype=np.float64)[:, 0]
        bad = ~np.isfinite(v)
        if bad.any():
            where = np.flatnonzero(bad) if rows is None else np.asarray(rows)[bad]
            shown = ", ".join(map(str, where[:10])) + (" ..." if where.size > 10 else "")
            raise ModelSpecError(
                f"offset({e}) is not finite in {where.size} row(s) (row indices {shown}, 0-based), "
                "e.g. log(0): drop those rows or fix the values"
            )
        total += v
    return total
