"""Read site files into a DuckDB staging table, every value as text.

Each reader puts the file's records, in file order, into a table of VARCHAR
columns plus ``source_line``: the line (CSV) or sheet row (Excel) of the
record, counting the header as line 1; for Parquet and statistical files the
record number + 1, as if they had a header line. Delimited text is read by DuckDB
itself (streaming, bounded memory; :mod:`cohort.delimited`); the other formats
through polars or pyreadstat.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from cohort.db import quote_ident, scalar
from cohort.delimited import csv_dialect, stage_csv
from cohort.errors import InputFileError
from cohort.excel import SheetText, read_sheet
from cohort.mapping import ReadOptions
from cohort.sourcefile import SourceFile, describe_file

__all__ = ["read_header_and_samples", "stage_raw"]


def _stage_frame(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, target: str, *,
                 source_lines: pl.Series | None = None,
                 parse_errors: pl.Series | None = None) -> list[str]:
    """Stage ``frame`` as text; its records' lines are ``source_lines`` (default 2, 3, ...)."""
    names = [str(c).strip() for c in frame.columns]
    text = frame.rename(dict(zip(frame.columns, names, strict=True))).with_columns(
        pl.all().cast(pl.String)
    ).with_row_index("source_line", offset=2).with_columns(
        pl.col("source_line").cast(pl.Int64), _parse_error=pl.lit(None, dtype=pl.String))
    if source_lines is not None:
        text = text.with_columns(source_line=source_lines.cast(pl.Int64))
    if parse_errors is not None:
        text = text.with_columns(_parse_error=parse_errors.cast(pl.String))
    con.register("_cohort_frame", text)
    try:
        con.execute(f"create or replace temp table {target} as select * from _cohort_frame")
    finally:
        con.unregister("_cohort_frame")
    return names


def _read_excel(path: Path, sheet: str | None) -> SheetText:
    return read_sheet(path, sheet=sheet)


def _read_stat(path: Path, fmt: str) -> pl.DataFrame:
    import pyreadstat

    reader = {"spss": pyreadstat.read_sav, "sas": pyreadstat.read_sas7bdat, "stata": pyreadstat.read_dta}[fmt]
    try:
        df, _meta = reader(str(path), apply_value_formats=True)
    except Exception as exc:
        raise InputFileError(f"{path}: cannot read as {fmt}: {exc}") from None
    return pl.from_pandas(df)


def _stage_parquet(con: duckdb.DuckDBPyConnection, src: SourceFile, target: str) -> list[str]:
    try:
        names = [r[0] for r in con.execute(
            "select name from parquet_schema(?) where num_children is null or num_children = 0",
            [str(src.path)],
        ).fetchall()]
        con.execute(
            f"create or replace temp table {target} as select "
            "(row_number() over () + 1)::bigint as source_line, columns(*)::varchar, "
            "null::varchar as _parse_error from read_parquet(?)",
            [str(src.path)],
        )
    except duckdb.Error as exc:
        raise InputFileError(f"{src.path}: cannot read as Parquet: {str(exc).splitlines()[0]}") from None
    return names


def stage_raw(
    con: duckdb.DuckDBPyConnection,
    src: SourceFile,
    *,
    read: ReadOptions,
    sheet: str | None,
    target: str,
    limit: int | None = None,
) -> tuple[list[str], int]:
    """Copy the records of ``src`` into table ``target`` as text; return (header, rows).

    With ``limit``, a delimited text file gives its first ``limit`` well-formed records
    only (a sample); other formats are read whole.
    """
    if src.format == "csv":
        header = stage_csv(con, src, csv_dialect(src, read), target, limit)
    elif src.format == "parquet":
        header = _stage_parquet(con, src, target)
    elif src.format == "excel":
        book = _read_excel(src.path, sheet)
        header = _stage_frame(con, book.frame, target, source_lines=book.rows,
                              parse_errors=book.problems)
    else:
        header = _stage_frame(con, _read_stat(src.path, src.format), target)
    return header, int(scalar(con, f"select count(*) from {target}"))


def read_header_and_samples(
    path: Path, *, read: ReadOptions, sheet: str | None = None, n: int = 200
) -> tuple[list[str], dict[str, list[str]]]:
    """The header of a file and a few distinct sample values per column (for suggestions)."""
    src = describe_file(path)
    con = duckdb.connect()
    try:
        header, _ = stage_raw(con, src, read=read, sheet=sheet, target="raw", limit=n)
        samples: dict[str, list[str]] = {}
        for h in header:
            rows = con.execute(
                f"select distinct {quote_ident(h)} from (select * from raw limit ?) "
                f"where {quote_ident(h)} is not null limit 20",
                [n],
            ).fetchall()
            samples[h] = [str(r[0]) for r in rows]
        return header, samples
    finally:
        con.close()
