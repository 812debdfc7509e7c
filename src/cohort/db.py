"""Small helpers over a DuckDB connection (DuckDB 1.x and 2.x alike)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import polars as pl

__all__ = ["drop_staged", "frame", "scalar", "quote_ident", "quote_literal", "without_lines"]


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


def quote_literal(text: str) -> str:
    """Quote a string as an SQL literal (where DuckDB takes no bound parameter, or where
    a constant plans better than one)."""
    return "'" + text.replace("'", "''") + "'"


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
