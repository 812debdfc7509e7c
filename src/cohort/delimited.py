"""Delimited text (CSV, TSV, ...) for the loader: dialect and header, DuckDB's reader of
a file (as text, or typed with rejects), the careful record-by-record reader that keeps
true line numbers when records span lines, and the text of chosen lines read again.
"""

from __future__ import annotations

import bisect
import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from cohort import sourcefile
from cohort.db import drop_staged, quote_ident, scalar, sql_literal
from cohort.errors import InputFileError
from cohort.mapping import ReadOptions
from cohort.sourcefile import SourceFile, describe_file

__all__ = ["CsvDialect", "csv_dialect", "csv_scan", "stage_csv", "stage_csv_lines", "utf8_copy"]

@dataclass(frozen=True)
class CsvDialect:
    """How a delimited text file is written, and its header."""

    delimiter: str
    quote: str
    encoding: str  # Python's name for it
    names: tuple[str, ...]  # the header (an empty name becomes columnN)

    @property
    def duckdb_encoding(self) -> str | None:
        """The encoding as DuckDB's reader names it; None if it has none (Windows-1252,
        say: such a file is read by Python)."""
        return self.encoding if self.encoding in ("utf-8", "latin-1") else None


def _sniff_delimiter(path: Path, encoding: str) -> str:
    with path.open("rb") as fh:
        head = fh.read(65536).decode(encoding, errors="replace")
    first = head.lstrip("\ufeff").splitlines()[0] if head.strip() else ""
    counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _py_encoding(encoding: str) -> str:
    encoding = encoding.lower().replace("_", "-")
    return {"latin1": "latin-1", "iso-8859-1": "latin-1", "utf8": "utf-8"}.get(encoding, encoding)


def csv_dialect(src: SourceFile, opts: ReadOptions) -> CsvDialect:
    """The delimiter (from the mapping, else sniffed), quote, encoding and header of ``src``."""
    encoding = _py_encoding(opts.encoding)
    delimiter = opts.delimiter or _sniff_delimiter(src.path, encoding)
    with src.path.open("r", encoding=encoding, errors="replace", newline="") as fh:
        header = next(csv.reader(fh, delimiter=delimiter, quotechar=opts.quote), [])
    header = [h.lstrip("\ufeff").strip() for h in header]
    if not any(header):
        raise InputFileError(f"{src.path}: no header line; the first line must name the columns")
    names = tuple(h if h else f"column{i + 1}" for i, h in enumerate(header))
    return CsvDialect(delimiter, opts.quote, encoding, names)


def csv_scan(src: SourceFile, dialect: CsvDialect, *, types: Sequence[str] | None = None,
             date_format: str | None = None, decimal_comma: bool = False,
             rejects: str | None = None, lenient: bool = False) -> str:
    """A query of the records of ``src``, columns named as in its header.

    Every column is text unless ``types`` says otherwise; a typed value DuckDB cannot read
    makes its record a reject (in temporary table ``rejects``, with its line) instead of
    an error. Without ``rejects`` a malformed record is an error, or with ``lenient``
    skipped (for samples).
    """
    types = types or ["VARCHAR"] * len(dialect.names)
    columns = "{" + ", ".join(f"{sql_literal(f'c{i}')}: {sql_literal(t)}" for i, t in enumerate(types)) + "}"
    options = [
        f"delim = {sql_literal(dialect.delimiter)}", f"quote = {sql_literal(dialect.quote)}",
        f"escape = {sql_literal(dialect.quote)}", "header = true", "auto_detect = false",
        f"columns = {columns}", f"encoding = {sql_literal(dialect.duckdb_encoding or 'utf-8')}",
        "ignore_errors = true" if lenient else "strict_mode = true", "null_padding = false",
        "nullstr = ''",
    ]
    if date_format:
        options.append(f"dateformat = {sql_literal(date_format)}")
    if decimal_comma:
        options.append("decimal_separator = ','")
    if rejects:
        options.append(f"store_rejects = true, rejects_table = {sql_literal(rejects)}, "
                       f"rejects_scan = {sql_literal(rejects + '_scan')}")
    renames = ", ".join(f"c{i} as {quote_ident(n)}" for i, n in enumerate(dialect.names))
    return f"select {renames} from read_csv({sql_literal(str(src.path))}, {', '.join(options)})"


def _check_utf8(path: Path) -> None:
    """Name the first line that is not UTF-8 (only called once a read has failed)."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _not_utf8(path, number, raw, exc) from None


def _not_utf8(path: Path, line: int, raw: bytes, exc: UnicodeDecodeError) -> InputFileError:
    return InputFileError(
        f"{path}: line {line}: bytes that are not UTF-8 ({raw[exc.start:exc.end]!r}); if the "
        'site exports Latin-1, set encoding = "latin-1" under [read] in the mapping')


def stage_csv(con: duckdb.DuckDBPyConnection, src: SourceFile, dialect: CsvDialect,
              target: str, limit: int | None = None) -> list[str]:
    """DuckDB reads the file; if its records do not account for every line (quoted
    newlines, blank lines, malformed records), or it cannot decode it, the careful path
    takes over. With ``limit``, the first records only (a sample: malformed records are
    skipped)."""
    if dialect.duckdb_encoding is None:
        return _stage_csv_careful(con, src, dialect, target, limit)
    scan = csv_scan(src, dialect, lenient=limit is not None)
    if limit is not None:
        scan += f" limit {int(limit)}"
    try:
        con.execute(f"create or replace temp table {target}_csv as {scan}")
        rows = int(scalar(con, f"select count(*) from {target}_csv"))
    except duckdb.Error as exc:
        if dialect.encoding == "utf-8" and "unicode" in str(exc).lower():
            _check_utf8(src.path)
        rows = -1
    if rows < 0 or (limit is None and rows + 1 != src.lines):
        drop_staged(con, target)
        return _stage_csv_careful(con, src, dialect, target, limit)
    # a view, not a copy: the table keeps the file's order, so rowid + 2 is the line
    con.execute(
        f"create or replace temp view {target} as select (rowid + 2)::bigint as source_line, "
        f"*, null::varchar as _parse_error from {target}_csv"
    )
    return list(dialect.names)


def _register_records(con: duckdb.DuckDBPyConnection, names: Sequence[str],
                      records: list[list[str | None]], lines: list[int],
                      problems: list[str | None], target: str, *, append: bool = False) -> None:
    """Table ``target``: source_line, the text of each column, _parse_error."""
    if not records and not append:  # the usual case on the fast path: nothing to read again
        columns = ", ".join(f"{quote_ident(n)} varchar" for n in names)
        con.execute(f"create or replace temp table {target} (source_line bigint, {columns}, "
                    "_parse_error varchar)")
        return
    frame = pl.DataFrame(records, schema=[(f"c{i}", pl.String) for i in range(len(names))],
                         orient="row")
    frame = frame.rename({f"c{i}": n for i, n in enumerate(names)}).with_columns(
        source_line=pl.Series(lines, dtype=pl.Int64),
        _parse_error=pl.Series(problems, dtype=pl.String))
    con.register("_cohort_frame", frame.select("source_line", *names, "_parse_error"))
    try:
        con.execute(f"insert into {target} select * from _cohort_frame" if append else
                    f"create or replace temp table {target} as select * from _cohort_frame")
    finally:
        con.unregister("_cohort_frame")


def _fields(record: list[str], width: int, delimiter: str) -> tuple[list[str | None], str | None]:
    """A record's values (empty -> None), or Nones and why it is malformed."""
    if len(record) != width:
        return [None] * width, (f"expected {width} fields, found {len(record)}: "
                                f"{delimiter.join(record)[:200]!r}")
    return [v if v != "" else None for v in record], None


def _malformed(line: int, exc: csv.Error, text: str) -> str:
    return (f"malformed record from line {line} ({exc}): the file may be truncated; "
            f"its text: {text[:200]!r}")


def _line_text(path: Path, line: int, encoding: str) -> str:
    with path.open("r", encoding=encoding, errors="replace", newline="") as fh:
        for number, text in enumerate(fh, start=1):
            if number == line:
                return text[:200]
    return ""


def _stage_csv_careful(con: duckdb.DuckDBPyConnection, src: SourceFile, dialect: CsvDialect,
                       target: str, limit: int | None = None) -> list[str]:
    """Read record by record, keeping each record's first line; a malformed record
    (wrong number of fields, unterminated quote) is kept with its parse error. With
    ``limit``, the first records only."""
    records: list[list[str | None]] = []
    lines: list[int] = []
    problems: list[str | None] = []
    width = len(dialect.names)
    with src.path.open("r", encoding=dialect.encoding, newline="") as fh:
        reader = csv.reader(fh, delimiter=dialect.delimiter, quotechar=dialect.quote, strict=True)
        next(reader, None)
        end = reader.line_num
        while limit is None or len(records) < limit:
            start = end + 1
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                records.append([None] * width)
                lines.append(start)
                problems.append(_malformed(start, exc, _line_text(src.path, start, dialect.encoding)))
                break
            end = reader.line_num
            if not record or record == [""]:
                continue  # a blank line holds no record
            values, problem = _fields(record, width, dialect.delimiter)
            records.append(values)
            problems.append(problem)
            lines.append(start)
    _register_records(con, dialect.names, records, lines, problems, target)
    return list(dialect.names)


def utf8_copy(src: SourceFile, dialect: CsvDialect, folder: Path) -> SourceFile | None:
    """A UTF-8 copy of a delimited text file in ``folder``, line for line (so that DuckDB
    can read a file in an encoding it does not know); None if the file does not decode."""
    copy = folder / (src.path.stem + ".utf8" + src.path.suffix)
    try:
        with src.path.open("r", encoding=dialect.encoding, newline="") as fin, \
                copy.open("w", encoding="utf-8", newline="") as fout:
            for chunk in iter(lambda: fin.read(sourcefile.BLOCK), ""):
                fout.write(chunk)
    except UnicodeDecodeError:
        return None
    return describe_file(copy, "csv", digest=False)


#: beyond this many lines to read again (and 1 in 50 of the file), DuckDB reading the whole
#: file as text is quicker (measured: about 8 us a line in Python, 0.13 us a row in DuckDB)
_MANY_LINES = 20_000


def stage_csv_lines(con: duckdb.DuckDBPyConnection, src: SourceFile, dialect: CsvDialect,
                    lines: Sequence[int], target: str, *, append: bool = False) -> None:
    """Table ``target`` (as :func:`stage_raw` makes it) of the records on ``lines`` only
    (or, with ``append``, those records added to it).

    Only for a file whose every record is one line (``src.lines`` = records + 1): the
    sparse newline index of :func:`describe_file` finds each line without a full read.
    """
    wanted = sorted(set(lines))
    if len(wanted) > max(_MANY_LINES, (src.lines or 0) // 50):
        whole = f"{target}_whole"
        stage_csv(con, src, dialect, whole)
        con.execute(f"create or replace temp table {whole}_lines as select unnest(?::bigint[]) "
                    "as source_line", [wanted])
        rows = f"select w.* from {whole} w semi join {whole}_lines using (source_line)"
        try:
            con.execute(f"insert into {target} {rows}" if append else
                        f"create or replace temp table {target} as {rows}")
        finally:
            drop_staged(con, whole)
            drop_staged(con, f"{whole}_lines")
        return
    records: list[list[str | None]] = []
    problems: list[str | None] = []
    for line, data in zip(wanted, _lines(src, wanted), strict=True):
        try:
            text = data.decode(dialect.encoding).rstrip("\r\n")
        except UnicodeDecodeError as exc:  # DuckDB rejected the line for it
            raise _not_utf8(src.path, line, data, exc) from None
        try:
            record = next(csv.reader([text], delimiter=dialect.delimiter,
                                     quotechar=dialect.quote, strict=True), [])
        except csv.Error as exc:
            records.append([None] * len(dialect.names))
            problems.append(_malformed(line, exc, text))
            continue
        values, problem = _fields(record, len(dialect.names), dialect.delimiter)
        records.append(values)
        problems.append(problem)
    _register_records(con, dialect.names, records, wanted, problems, target, append=append)


def _lines(src: SourceFile, wanted: list[int]) -> Iterator[bytes]:
    """The bytes of each of the (sorted, > 1) ``wanted`` lines, each block read once."""
    before = src.newlines_before
    block, newlines = -1, np.empty(0, np.int64)
    with src.path.open("rb") as fh:
        for line in wanted:
            # line L starts after newline L-1, which lies in the last block with fewer before it
            k = line - 1
            holder = bisect.bisect_left(before, k) - 1
            if holder != block and k - before[holder] == 1:  # after the block's first newline:
                fh.seek(holder * sourcefile.BLOCK)  # no need to index the block
                fh.readline()
                yield fh.readline()
                continue
            if holder != block:
                block = holder
                fh.seek(block * sourcefile.BLOCK)
                newlines = np.flatnonzero(np.frombuffer(fh.read(sourcefile.BLOCK), np.uint8) == 10)
            fh.seek(block * sourcefile.BLOCK + int(newlines[k - before[block] - 1]) + 1)
            yield fh.readline()
