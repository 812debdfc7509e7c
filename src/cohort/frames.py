"""Data frames in: analysis functions take polars, pandas, or anything Arrow-compatible."""

from __future__ import annotations

from typing import Any

import polars as pl

from cohort.errors import ModelSpecError

__all__ = ["as_polars"]


def as_polars(data: Any, *, what: str = "data") -> pl.DataFrame:
    """Return ``data`` as a polars DataFrame (polars lazy, pandas and Arrow accepted).

    Examples
    --------
    >>> import pandas as pd
    >>> as_polars(pd.DataFrame({"t": [1, 2]})).shape
    (2, 1)
    """
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pl.LazyFrame):
        return data.collect()
    try:
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            from cohort._levels import polars_from_pandas

            return polars_from_pandas(data)  # ordered Categoricals keep their order
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    try:
        return pl.DataFrame(data)
    except Exception:
        raise ModelSpecError(
            f"{what}: expected a polars or pandas DataFrame, got {type(data).__name__}; "
            "convert it with pl.DataFrame(...) first"
        ) from None
