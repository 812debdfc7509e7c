"""Fixtures for hostile inputs: a scan of a whole study database for planted strings."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from cohort.db import quote_ident


def planted_in(study, strings: Iterable[str]) -> list[str]:
    """Where any of ``strings`` (case-insensitive) occurs in the study: every column (as
    text) of every table and view of every schema, temporary ones too, and the bytes of
    the database file after a checkpoint. Returns 'schema.table.column: string' items."""
    wanted = [s.lower() for s in strings]
    con = study.con
    found: list[str] = []
    relations = con.execute(
        "select database_name, schema_name, table_name from duckdb_tables() union all "
        "select database_name, schema_name, view_name from duckdb_views() where not internal"
    ).fetchall()
    for database, schema, table in relations:
        name = f"{quote_ident(database)}.{quote_ident(schema)}.{quote_ident(table)}"
        columns = [r[0] for r in con.execute(f"describe {name}").fetchall()]
        for column in columns:
            text = f"lower({quote_ident(column)}::varchar)"
            hits = con.execute(
                f"select {', '.join(f'count_if(contains({text}, ?))' for _ in wanted)} from {name}",
                wanted).fetchall()[0]
            found += [f"{schema}.{table}.{column}: {s}" for s, n in zip(wanted, hits, strict=True)
                      if n]
    con.execute("checkpoint")
    data = study.path.read_bytes().lower()
    found += [f"{study.path.name} (bytes): {s}" for s in wanted if s.encode() in data]
    return found


@pytest.fixture
def planted() -> Callable[..., list[str]]:
    """``planted(study, strings)``: where the strings are found in the study (see
    :func:`planted_in`); an empty list when nothing leaked."""
    return planted_in
