"""Small-count suppression for anything meant to leave the study.

Default rule (as OpenSAFELY's): counts from 1 to 7 are redacted, others are
rounded to the nearest 5. Zero stays zero.
"""

from __future__ import annotations

import polars as pl

__all__ = ["redact_count", "redact_counts"]


def redact_count(n: int | None, *, threshold: int = 7, rounding: int = 5) -> int | None:
    """Return ``None`` for 1..threshold, else ``n`` rounded to a multiple of ``rounding``.

    Examples
    --------
    >>> [redact_count(n) for n in (0, 3, 8, 12, 1003)]
    [0, None, 10, 10, 1005]
    """
    if n is None or n == 0:
        return n
    if 0 < n <= threshold:
        return None
    return int(rounding * round(n / rounding)) if rounding > 1 else int(n)


def redact_counts(
    df: pl.DataFrame, columns: list[str], *, threshold: int = 7, rounding: int = 5
) -> pl.DataFrame:
    """Apply :func:`redact_count` to integer count ``columns`` of ``df``."""
    return df.with_columns(
        pl.col(c).map_elements(
            lambda n: redact_count(n, threshold=threshold, rounding=rounding), return_dtype=pl.Int64
        )
        for c in columns
    )
