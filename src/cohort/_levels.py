"""The one rule for the levels of a categorical covariate (and so its reference level).

Both formula front ends (:mod:`cohort.survival.formula` and
:mod:`cohort.longitudinal._design`) hand formulaic a pandas frame built here, so a
column gives the same levels, in the same order, whatever the order of the rows or
the physical encoding of a categorical:

* string columns (polars ``String``): the distinct values sorted as R's ``factor()``
  sorts them in the C locale (byte order of UTF-8, which is Python's code-point order:
  ``"B" < "a"``; R in an English locale would put ``"a"`` first: run R with
  ``LC_COLLATE=C`` to compare);
* polars ``Enum`` and pandas *ordered* ``Categorical``: their declared order;
* polars ``Categorical`` and pandas unordered ``Categorical``: their values sorted as
  strings (as R's ``factor()`` of the values would), never by row order or encoding;
* levels with no row are dropped (as R's ``model.frame(drop.unused.levels=TRUE)``);
* booleans are 0/1 columns (``False`` is the reference); integers are numbers unless
  wrapped in ``C(x)`` (then their levels sort as numbers).

The first level is the reference; ``C(x, reference="b")`` / ``treatment(x, reference="b")``
overrides it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd
import polars as pl

__all__ = ["pandas_with_levels", "polars_from_pandas", "readable_name", "rewrite_reference"]

_CONTRAST = re.compile(r"C\(\s*([^,()]+?)\s*,\s*(?:contr\.)?treatment\([^)]*\)\s*\)", re.IGNORECASE)
_VAR = r"(`[^`]+`|[A-Za-z_][\w.]*)"
# treatment(x, reference='b') / treatment(x, base='b') / treatment(x, 'b') / treatment(x)
_TREATMENT = re.compile(
    rf"(?<![\w.])treatment\(\s*{_VAR}\s*(?:,\s*(?:(?:reference|base)\s*=\s*)?([^()]+?)\s*)?\)"
)
# C(x, reference='b') / C(x, base='b')
_C_REFERENCE = re.compile(rf"(?<![\w.])C\(\s*{_VAR}\s*,\s*(?:reference|base)\s*=\s*([^()]+?)\s*\)")


def readable_name(name: str) -> str:
    """A column or term name without its contrast specification.

    Parameters
    ----------
    name
        A formulaic name.

    Returns
    -------
    str

    Examples
    --------
    >>> readable_name("C(x, contr.treatment(base='b'))[T.a]")
    'C(x)[T.a]'
    """
    return _CONTRAST.sub(r"C(\1)", name)


def rewrite_reference(formula: str) -> str:
    """Spell ``treatment(x, reference='b')`` and ``C(x, reference='b')`` as formulaic's ``C(x, contr.treatment(base='b'))``.

    Parameters
    ----------
    formula
        A formula (or its right-hand side).

    Returns
    -------
    str

    Examples
    --------
    >>> rewrite_reference("age + C(dose, reference='low')")
    "age + C(dose, contr.treatment(base='low'))"
    """

    def repl(m: re.Match) -> str:
        var, ref = m.group(1), m.group(2)
        return f"C({var})" if ref is None else f"C({var}, contr.treatment(base={ref}))"

    return _C_REFERENCE.sub(repl, _TREATMENT.sub(repl, formula))


def _levels(series: pl.Series) -> list[str] | None:
    """The ordered levels of a categorical or string column; None for other types."""
    dtype = series.dtype
    present = series.drop_nulls().cast(pl.String).unique().to_list()
    if isinstance(dtype, pl.Enum):
        seen = set(present)
        return [c for c in dtype.categories.to_list() if c in seen]
    if dtype == pl.String or isinstance(dtype, pl.Categorical):
        return sorted(present)
    return None


def pandas_with_levels(frame: pl.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``frame[columns]`` as pandas, each string or categorical column a Categorical with the stated levels.

    Parameters
    ----------
    frame
        The (complete-case) rows of the model.
    columns
        The columns the formula uses.

    Returns
    -------
    pandas.DataFrame
        Other columns are converted as polars' ``to_pandas`` does.

    Examples
    --------
    >>> import polars as pl
    >>> f = pl.DataFrame({"dose": ["low", "high", "low"]}, schema={"dose": pl.Categorical})
    >>> list(pandas_with_levels(f, ["dose"])["dose"].cat.categories)
    ['high', 'low']
    """
    sub = frame.select(list(columns))
    levels = {c: _levels(sub.get_column(c)) for c in sub.columns}
    cats = [c for c, lv in levels.items() if lv is not None]
    pdf = sub.with_columns(pl.col(cats).cast(pl.String)).to_pandas()
    for c in cats:
        pdf[c] = pd.Categorical(pdf[c], categories=levels[c], ordered=False)
    return pdf


def polars_from_pandas(data: pd.DataFrame) -> pl.DataFrame:
    """A pandas frame as polars, its ordered Categoricals as ``Enum`` (their declared order kept).

    ``polars.from_pandas`` alone turns an ordered Categorical into an unordered
    ``Categorical``, losing the order this rule keeps.

    Parameters
    ----------
    data
        A pandas DataFrame.

    Returns
    -------
    polars.DataFrame

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"g": pd.Categorical(["b", "a"], categories=["b", "a"], ordered=True)})
    >>> polars_from_pandas(d).schema["g"]
    Enum(categories=['b', 'a'])
    """
    out = pl.from_pandas(data)
    ordered = [
        c for c in data.columns
        if isinstance(data[c].dtype, pd.CategoricalDtype) and data[c].cat.ordered
        and all(isinstance(v, str) for v in data[c].cat.categories)
    ]
    return out.with_columns(
        pl.col(c).cast(pl.String).cast(pl.Enum(list(data[c].cat.categories))) for c in ordered
    )
