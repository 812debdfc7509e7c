"""Small helpers over a DuckDB connection (DuckDB 1.x and 2.x alike)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

import duckdb
import polars as pl

__all__ = ["drop_staged", "frame", "scalar", "quote_ident", "sql_literal", "without_lines"]


def frame(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
) -> pl.DataFrame:
    """Run ``sql`` with bound ``params`` and return the rows as a polars DataFrame."""
    return con.sql(sql, params=params).pl()


def scalar(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
) -> Any:
    """Run ``sql`` and return the first column of its first row (None if no row)."""
    row = con.execute(sql, params).fetchall()
    return row[0][0] if row else None


def quote_ident(name: str) -> str:
    """Quote an SQL identifier that comes from user configuration."""
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: Any) -> str:
    """A SQL literal (numbers, strings, dates, booleans, null): for values DuckDB takes no
    bound parameter for, or where a constant plans better than one."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"'{value}'::double"
        return repr(value)
    if isinstance(value, dt.datetime):
        return f"timestamp '{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"date '{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {type(value).__name__} {value!r}")


def without_lines(con: duckdb.DuckDBPyConnection, lines: str) -> str:
    """A WHERE clause leaving out the source lines in table ``lines`` (nothing if it is
    empty: an anti-join of millions of rows with nothing is not free)."""
    if scalar(con, f"select count(*) from {lines}"):
        return f" where source_line not in (select source_line from {lines})"
    return ""


def drop_staged(con: duckdb.DuckDBPyConnection, target: str) -> None:
    """Drop a working relation, view or table, and the table behind a staged view
    (``{target}_csv``); nothing if there is none."""
    for statement in (f"drop view if exists {target}", f"drop table if exists {target}",
                      f"drop table if exists {target}_csv"):
        try:
            con.execute(statement)
        except duckdb.CatalogException:  # the name is the other kind of object
            pass
