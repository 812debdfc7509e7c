"""Read site files into a DuckDB staging table, every value as text.

Each reader puts the file's records, in file order, into a table of VARCHAR
columns plus ``source_line``: the line (CSV) or sheet row (Excel) of the
record, counting the header as line 1; for Parquet and statistical files the
record number + 1, as if they had a header line. CSV is read by DuckDB itself
(streaming, bounded memory); the other formats through polars or pyreadstat.
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from cohort.db import quote_ident, quote_literal, scalar
from cohort.errors import InputFileError
from cohort.mapping import ReadOptions

__all__ = [
    "CsvDialect", "SourceFile", "csv_dialect", "csv_scan", "describe_file",
    "detect_format", "drop_staged", "read_header_and_samples", "stage_csv_lines", "stage_raw",
    "utf8_copy",
]

_EXTENSIONS = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv",
    ".xlsx": "excel", ".xlsm": "excel",
    ".parquet": "parquet", ".pq": "parquet",
    ".sav": "spss", ".zsav": "spss",
    ".sas7bdat": "sas",
    ".dta": "stata",
}
_MAGIC = {
    "excel": (b"PK\x03\x04",),
    "parquet": (b"PAR1",),
    "spss": (b"$FL2", b"$FL3"),
}


_BLOCK = 1 << 20


@dataclass(frozen=True)
class SourceFile:
    path: Path
    format: str
    size_bytes: int
    #: physical lines (a last line without a newline counts); delimited text only
    lines: int | None = None
    #: newlines before each block of ``_BLOCK`` bytes, to find a line without reading it all
    newlines_before: tuple[int, ...] = ()
    _digest: Future[str] | None = field(default=None, repr=False, compare=False)

    @property
    def sha256(self) -> str:
        """The file's SHA-256 (hex); computed in the background, this waits for it."""
        assert self._digest is not None
        return self._digest.result()


_HASHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cohort-sha256")


def _sha256(path: Path) -> str:
    try:  # Linux: this thread alone yields to the load's work and uses the idle moments
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def detect_format(path: Path, declared: str | None = None) -> str:
    """The file's format from its extension (or ``declared``), checked against its bytes."""
    fmt = declared or _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise InputFileError(
            f"{path}: unknown file type {path.suffix!r}; expected one of "
            f"{', '.join(sorted(_EXTENSIONS))}, or set `format` in the mapping"
        )
    with path.open("rb") as fh:
        head = fh.read(8192)
    if not head:
        raise InputFileError(f"{path}: the file is empty (0 bytes); ask the site to resend it")
    if fmt in _MAGIC and not head.startswith(_MAGIC[fmt]):
        raise InputFileError(
            f"{path}: is not a valid {fmt} file (its first bytes are {head[:8]!r}); "
            "the extension does not match the content"
        )
    if fmt == "csv" and b"\x00" in head:
        raise InputFileError(f"{path}: contains NUL bytes: binary data, not a delimited text file")
    return fmt


def describe_file(path: Path, declared_format: str | None = None, *,
                  input_root: Path | None = None, digest: bool = True) -> SourceFile:
    """Check a file and return its format, size and (delimited text) lines; its sha256
    is computed in the background meanwhile (:attr:`SourceFile.sha256` waits for it).

    With ``input_root``, the file (after following links) must lie inside that folder.
    """
    try:
        resolved = path.resolve(strict=True)
    except RuntimeError:
        raise InputFileError(f"{path}: symbolic link loop") from None
    except OSError as exc:
        if exc.errno == 40:  # ELOOP
            raise InputFileError(f"{path}: symbolic link loop") from None
        raise InputFileError(f"{path}: no such file") from None
    if input_root is not None and not resolved.is_relative_to(input_root.resolve()):
        raise InputFileError(
            f"{path}: outside the allowed input folder {input_root} (it resolves to {resolved}); "
            "copy the file into that folder, or change input_root in cohort.toml")
    if not resolved.is_file():
        raise InputFileError(f"{path}: not a regular file")
    fmt = detect_format(resolved, declared_format)
    hashed = _HASHER.submit(_sha256, resolved) if digest else None
    before: list[int] = []
    newlines, last = 0, b"\n"
    if fmt == "csv":  # the lines, to check that every line is accounted for, and where they are
        with resolved.open("rb") as fh:
            for block in iter(lambda: fh.read(_BLOCK), b""):
                before.append(newlines)
                newlines += int(np.count_nonzero(np.frombuffer(block, np.uint8) == 10))
                last = block[-1:]
    lines = newlines + (last != b"\n") if fmt == "csv" else None
    return SourceFile(resolved, fmt, resolved.stat().st_size, lines, tuple(before), hashed)


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
    columns = "{" + ", ".join(f"{quote_literal(f'c{i}')}: {quote_literal(t)}" for i, t in enumerate(types)) + "}"
    options = [
        f"delim = {quote_literal(dialect.delimiter)}", f"quote = {quote_literal(dialect.quote)}",
        f"escape = {quote_literal(dialect.quote)}", "header = true", "auto_detect = false",
        f"columns = {columns}", f"encoding = {quote_literal(dialect.duckdb_encoding or 'utf-8')}",
        "ignore_errors = true" if lenient else "strict_mode = true", "null_padding = false",
        "nullstr = ''",
    ]
    if date_format:
        options.append(f"dateformat = {quote_literal(date_format)}")
    if decimal_comma:
        options.append("decimal_separator = ','")
    if rejects:
        options.append(f"store_rejects = true, rejects_table = {quote_literal(rejects)}, "
                       f"rejects_scan = {quote_literal(rejects + '_scan')}")
    renames = ", ".join(f"c{i} as {quote_ident(n)}" for i, n in enumerate(dialect.names))
    return f"select {renames} from read_csv({quote_literal(str(src.path))}, {', '.join(options)})"


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


def _stage_csv(con: duckdb.DuckDBPyConnection, src: SourceFile, dialect: CsvDialect,
               target: str, limit: int | None = None) -> list[str]:
    """DuckDB reads the file; if its records do not account for every line (quoted
    newlines, blank lines, malformed records), the careful path takes over. With
    ``limit``, the first records only (a sample: malformed records are skipped)."""
    scan = csv_scan(src, dialect, lenient=limit is not None)
    if limit is not None:
        scan += f" limit {int(limit)}"
    if dialect.duckdb_encoding is None:
        return _stage_csv_careful(con, src, dialect, target, limit)
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
            for chunk in iter(lambda: fin.read(_BLOCK), ""):
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
        _stage_csv(con, src, dialect, whole)
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
            if holder != block:
                block = holder
                fh.seek(block * _BLOCK)
                newlines = np.flatnonzero(np.frombuffer(fh.read(_BLOCK), np.uint8) == 10)
            fh.seek(block * _BLOCK + int(newlines[k - before[block] - 1]) + 1)
            yield fh.readline()


def _stage_frame(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, target: str) -> list[str]:
    names = [str(c).strip() for c in frame.columns]
    text = frame.rename(dict(zip(frame.columns, names, strict=True))).with_columns(
        pl.all().cast(pl.String)
    ).with_row_index("source_line", offset=2).with_columns(
        pl.col("source_line").cast(pl.Int64), _parse_error=pl.lit(None, dtype=pl.String))
    con.register("_cohort_frame", text)
    try:
        con.execute(f"create or replace temp table {target} as select * from _cohort_frame")
    finally:
        con.unregister("_cohort_frame")
    return names


def _read_excel(path: Path, sheet: str | None) -> pl.DataFrame:
    try:
        if sheet is None:
            return pl.read_excel(path, sheet_id=1, infer_schema_length=0)
        return pl.read_excel(path, sheet_name=sheet, infer_schema_length=0)
    except Exception as exc:  # fastexcel raises its own types
        text = str(exc).splitlines()[0]
        raise InputFileError(f"{path}: cannot read Excel sheet {sheet or '1'}: {text}") from None


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


def drop_staged(con: duckdb.DuckDBPyConnection, target: str) -> None:
    """Drop what :func:`stage_raw` made for ``target``."""
    for statement in (f"drop view if exists {target}", f"drop table if exists {target}",
                      f"drop table if exists {target}_csv"):
        try:
            con.execute(statement)
        except duckdb.CatalogException:  # the name is the other kind of object
            pass


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
        header = _stage_csv(con, src, csv_dialect(src, read), target, limit)
    elif src.format == "parquet":
        header = _stage_parquet(con, src, target)
    elif src.format == "excel":
        header = _stage_frame(con, _read_excel(src.path, sheet), target)
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
