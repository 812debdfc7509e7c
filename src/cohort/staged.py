"""The columns of a staged file: named by their position, the file's own names kept beside.

Every reader (:mod:`cohort.io`, :mod:`cohort.delimited`) stages a file's records in a
table of text columns ``c0, c1, ...`` (the file's columns in order), beside its own
``source_line`` and ``_parse_error``. A file's column may so be called anything, an
internal name (``source_line``, ``rowid``, ``_parse_error``) or a name that differs from
another only by case (``Score`` and ``score``: DuckDB's identifiers ignore case), and
still be mapped or dropped like any other. The header (the file's names, in order) is
what the mapping, the checks and the messages speak of; :func:`staged_map` turns a
mapping's source columns into the staged ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from cohort.mapping import TableMap

__all__ = ["staged_map", "staged_name", "staged_names"]


def staged_name(index: int) -> str:
    """The staged column of the file's column at ``index`` (0-based)."""
    return f"c{index}"


def staged_names(header: Sequence[str]) -> dict[str, str]:
    """Staged column -> the file's name for it."""
    return {staged_name(i): h for i, h in enumerate(header)}


def staged_map(tm: TableMap, header: Sequence[str]) -> TableMap:
    """``tm`` with each source column named as staged (the header's names must be unique,
    as :func:`cohort.mapping.check_header` makes sure)."""
    where = {h: staged_name(i) for i, h in enumerate(header)}
    columns = tuple(c if c.source is None else replace(c, source=where[c.source])
                    for c in tm.columns)
    return replace(tm, columns=columns, drop=())
