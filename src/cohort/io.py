"""Read site files into a DuckDB staging table, every value as text.

Each reader puts the file's records, in file order, into a table of VARCHAR
columns named by position (:mod:`cohort.staged`) plus ``source_line``: the line
(CSV) or sheet row (Excel) of the record, counting the header as line 1; for Parquet and statistical files the
record number + 1, as if they had a header line. Delimited text is read by DuckDB
itself (streaming, bounded memory; :mod:`cohort.delimited`); the other formats
through polars or pyreadstat.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from cohort.db import scalar, sql_literal
from cohort.delimited import csv_dialect, stage_csv
from cohort.errors import InputFileError, MappingError
from cohort.excel import read_sheet
from cohort.mapping import ReadOptions
from cohort.savfile import sav_records
from cohort.settings import DEFAULT_TIMEZONE
from cohort.sourcefile import SourceFile, describe_file
from cohort.staged import staged_name

__all__ = ["read_header_and_samples", "stage_raw", "unmappable_columns", "value_labels"]


def _as_text(name: str, dtype: pl.DataType, timezone: str) -> pl.Expr:
    """A column of a frame as text: a whole number without ``.0`` (so that a recode of a
    statistical file's codes, ``1 = "MADRS"``, finds them), NaN as null, a time-zone-aware
    date-time as the wall-clock time in the study's ``timezone``."""
    col = pl.col(name)
    if dtype.is_float():
        col = col.fill_nan(None)
        whole = col.is_finite() & (col == col.round(0)) & (col.abs() < 2**53)
        return pl.when(whole).then(col.cast(pl.Int64, strict=False).cast(pl.String)).otherwise(
            col.cast(pl.String))
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        col = col.dt.convert_time_zone(timezone).dt.replace_time_zone(None)
    return col.cast(pl.String)


def _stage_frame(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, target: str, *,
                 timezone: str = DEFAULT_TIMEZONE, source_lines: pl.Series | None = None,
                 parse_errors: pl.Series | None = None) -> list[str]:
    """Stage ``frame`` (columns named by position, :mod:`cohort.staged`); return its header.

    Its records' lines are ``source_lines`` (default 2, 3, ...), their read problems
    ``parse_errors`` (default none)."""
    names = [str(c).strip() for c in frame.columns]
    lines = (pl.int_range(2, pl.len() + 2, dtype=pl.Int64) if source_lines is None
             else pl.lit(source_lines).cast(pl.Int64))
    problems = (pl.lit(None, dtype=pl.String) if parse_errors is None
                else pl.lit(parse_errors).cast(pl.String))
    text = frame.select(
        lines.alias("source_line"),
        *(_as_text(c, t, timezone).alias(staged_name(i))
          for i, (c, t) in enumerate(frame.schema.items())),
        problems.alias("_parse_error"))
    con.register("_cohort_frame", text)
    try:
        con.execute(f"create or replace temp table {target} as select * from _cohort_frame")
    finally:
        con.unregister("_cohort_frame")
    return names


#: pyreadstat's reader of each statistical format, and what people call such a file
_STAT_READERS = {"spss": ("read_sav", "an SPSS file"), "sas": ("read_sas7bdat", "a SAS file"),
                 "stata": ("read_dta", "a Stata file")}


def _pyreadstat(path: Path, fmt: str, **options: Any) -> tuple[pl.DataFrame, Any]:
    """pyreadstat's (records, metadata) of a statistical file; an error it raises is one
    line: such a file is truncated or damaged (pyreadstat reads it whole or not at all)."""
    import pyreadstat

    reader, kind = _STAT_READERS[fmt]
    try:
        return getattr(pyreadstat, reader)(str(path), **options)
    except (pyreadstat.ReadstatError, pyreadstat.PyreadstatError) as exc:
        raise InputFileError(
            f"{path}: cannot be read as {kind} ({exc}): it is truncated or damaged; nothing "
            "was loaded. Ask the site to export it again") from None


def _read_stat(path: Path, fmt: str) -> pl.DataFrame:
    """A statistical file's records. Value labels are not applied: a labelled column gives
    its codes (a recode in the mapping turns them into canonical values), values without a
    label included; missing-value codes (SPSS user-missing, Stata ``.a``-``.z``, SAS
    special missing) are null."""
    # a .sav whose header leaves the count open: the records its data section holds
    counted = sav_records(path) if fmt == "spss" else None
    frame, meta = _pyreadstat(path, fmt, output_format="polars")
    expected = meta.number_rows if counted is None else counted
    if expected is not None and expected >= 0 and expected != frame.height:
        raise InputFileError(
            f"{path}: holds {expected} records but {frame.height} could be read: "
            "the file is truncated or damaged; nothing was loaded. Ask the site to export it again")
    return frame


def value_labels(path: Path) -> dict[str, dict[str, str]]:
    """The value labels of a statistical file: column -> {code as staged: label} (none for
    other formats, nor for SAS, whose labels live in a separate catalog file)."""
    src = describe_file(path, digest=False)
    if src.format not in _STAT_READERS:
        return {}
    _, meta = _pyreadstat(src.path, src.format, metadataonly=True)
    found = {}
    for column, labels in (meta.variable_value_labels or {}).items():
        codes = pl.DataFrame({"code": list(labels)})
        text = codes.select(_as_text("code", codes.schema["code"], DEFAULT_TIMEZONE))["code"]
        found[column] = dict(zip(text.to_list(), map(str, labels.values()), strict=True))
    return found


def _parquet_leaves(name: str, sql: str, kind: pa.DataType) -> Iterator[tuple[str, str, pa.DataType]]:
    """The columns of a Parquet column as staged: a struct's fields by dotted name
    (``vitals.weight``, recursively), any other column as it is."""
    if pa.types.is_struct(kind):
        for i in range(kind.num_fields):
            child = kind.field(i)
            yield from _parquet_leaves(f"{name}.{child.name}",
                                       f"struct_extract({sql}, {sql_literal(child.name)})",
                                       child.type)
    else:
        yield name, sql, kind


def _parquet_columns(path: Path) -> list[tuple[str, str, pa.DataType]]:
    """(header name, SQL of the value, Arrow type) of each staged column of a Parquet file."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputFileError(f"{path}: cannot read as Parquet: {str(exc).splitlines()[0]}") from None
    top = [f.name for f in schema]
    twice = sorted({n for n in top if top.count(n) > 1})
    if twice:
        raise MappingError(f"{path}: duplicated column name(s): {', '.join(twice)}; the columns "
                           "cannot be told apart: ask the site to name each column once")
    # by position (#1, #2, ...): DuckDB's names ignore case, so "score" would find "Score"
    return [leaf for i, f in enumerate(schema) for leaf in _parquet_leaves(f.name, f"#{i + 1}", f.type)]


def unmappable_columns(src: SourceFile) -> dict[str, str]:
    """Columns of ``src`` that can be dropped but not mapped, with what they hold (Parquet
    lists, maps and unions: many values to a record)."""
    if src.format != "parquet":
        return {}
    return {name: str(kind) for name, _, kind in _parquet_columns(src.path)
            if pa.types.is_nested(kind)}


def _stage_parquet(con: duckdb.DuckDBPyConnection, src: SourceFile, target: str, *,
                   timezone: str) -> list[str]:
    columns = _parquet_columns(src.path)
    values = []
    for i, (_, sql, kind) in enumerate(columns):
        if pa.types.is_timestamp(kind) and kind.tz is not None:  # the wall clock of the study
            sql = f"timezone({sql_literal(timezone)}, {sql})"
        values.append(f"{sql}::varchar as {staged_name(i)}")
    try:
        con.execute(
            f"create or replace temp table {target} as select "
            f"(row_number() over () + 1)::bigint as source_line, {', '.join(values)}, "
            "null::varchar as _parse_error from read_parquet(?)",
            [str(src.path)],
        )
    except duckdb.Error as exc:
        raise InputFileError(f"{src.path}: cannot read as Parquet: {str(exc).splitlines()[0]}") from None
    return [name for name, _, _ in columns]


def stage_raw(
    con: duckdb.DuckDBPyConnection,
    src: SourceFile,
    *,
    read: ReadOptions,
    sheet: str | None,
    target: str,
    limit: int | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    columns: Collection[str] | None = None,
) -> tuple[list[str], int]:
    """Copy the records of ``src`` into table ``target`` as text, columns named by position
    (:mod:`cohort.staged`); return (header, rows).

    With ``limit``, a delimited text file gives its first ``limit`` well-formed records
    only (a sample); other formats are read whole. A time-zone-aware date-time is staged as
    the wall-clock time in ``timezone`` (the study's, ``[study] timezone``). An Excel
    error cell quarantines its row (``_parse_error``) only in one of ``columns``, the
    source columns the load reads (default: every column): a dropped column's do not.
    """
    if src.format == "csv":
        header = stage_csv(con, src, csv_dialect(src, read), target, limit)
    elif src.format == "parquet":
        header = _stage_parquet(con, src, target, timezone=timezone)
    elif src.format == "excel":
        book = read_sheet(src.path, sheet=sheet, columns=columns)
        header = _stage_frame(con, book.frame, target, source_lines=book.rows,
                              parse_errors=book.problems)
    else:
        header = _stage_frame(con, _read_stat(src.path, src.format), target, timezone=timezone)
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
        for i, h in enumerate(header):
            column = staged_name(i)
            rows = con.execute(
                f"select distinct {column} from (select * from raw limit ?) "
                f"where {column} is not null limit 20",
                [n],
            ).fetchall()
            samples[h] = [str(r[0]) for r in rows]
        return header, samples
    finally:
        con.close()
