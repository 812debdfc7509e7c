"""Upload batches by id: the one check that a batch a user names exists."""

from __future__ import annotations

import duckdb

from cohort.errors import NoSuchBatchError

__all__ = ["batch_table"]


def batch_table(con: duckdb.DuckDBPyConnection, batch: int) -> str:
    """The table of ``batch``; a batch that does not exist is one line naming the ones that do.

    Raises
    ------
    NoSuchBatchError
        No such batch: the message gives the study's batch ids (or says it has none) and
        the command that lists them.
    """
    found = con.execute("select table_name from uploads where batch_id = ?", [batch]).fetchall()
    if found:
        return str(found[0][0])
    n, low, high = con.execute(
        "select count(*), min(batch_id), max(batch_id) from uploads").fetchall()[0]
    if not n:
        raise NoSuchBatchError(f"no batch {batch}: the study has no batches yet; "
                               "load files with `cohort load`")
    ids = f"batch {low}" if n == 1 else f"batches {low} to {high}"
    raise NoSuchBatchError(f"no batch {batch}: the study has {ids}; "
                           "`cohort uploads` lists them")
