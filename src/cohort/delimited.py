"""Delimited text (CSV, TSV, ...) for the loader: dialect and header, DuckDB's reader of
a file (as text, or typed with rejects), the careful record-by-record reader that keeps
true line numbers when records span lines, and the text of chosen lines read again.

Lines
-----
A line ends with a line feed (``\\n``), which may follow a carriage return (``\\r\\n``);
the last line of a file may end without one. A carriage return not followed by a line
feed (a *lone CR*) is a character inside its line and inside the field that holds it: it
ends neither a line nor a record. Line 1 is the header. This is how
:func:`cohort.sourcefile.describe_file` counts lines, how an editor's or ``grep -n``'s
line numbers run, and how every reader here numbers records (DuckDB's reader refuses a
lone CR, and such a file is read by the careful reader). A header holding a lone CR is
refused: the file's lines most likely end in CR alone (classic Mac OS).

Records
-------
A record is one line, or more when a quoted field holds line breaks; a blank line holds
no record. Every record is loaded or quarantined (rule ``parse.record``, with its first
line), never skipped, and reading always goes on after a malformed one:

- a record whose number of fields is not the header's is quarantined whole;
- a record longer than :data:`MAX_RECORD_CHARS` characters is quarantined (its text is
  never held in memory whole), and reading goes on at the next line;
- a quote that opens a field on line L and is still open at the end of that line makes
  the record go on to the next lines until it closes. The quote is taken as *unclosed*
  if it reaches the end of the file, runs over more than :data:`MAX_RECORD_LINES` lines
  or :data:`MAX_RECORD_CHARS` characters, or if the quote that would close it is
  followed by other characters instead of a delimiter or the end of a line (a sign that
  it opens another field, not that it closes this one). Then line L alone is
  quarantined as a malformed record, and reading goes on at line L + 1 (the lines it
  ran over are read again as records of their own).

Quarantine messages name the line(s), the problem, the field counts and the columns
concerned; they never quote the record's text (it may hold the values of a dropped
identifier column). A file that does not decode in the mapping's encoding is refused
with one line naming its first such line.
"""

from __future__ import annotations

import bisect
import codecs
import csv
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

import duckdb
import numpy as np
import polars as pl

from cohort import sourcefile
from cohort.db import drop_staged, scalar, sql_literal
from cohort.errors import InputFileError, MappingError
from cohort.mapping import ReadOptions
from cohort.sourcefile import SourceFile, describe_file
from cohort.staged import staged_name

__all__ = ["MAX_RECORD_CHARS", "MAX_RECORD_LINES", "CsvDialect", "csv_dialect", "csv_scan",
           "stage_csv", "stage_csv_lines", "utf8_copy"]

#: the most characters a record may hold (its line ends excluded); DuckDB's reader is given
#: the same bound in bytes (``max_line_size``, its default), so whatever it accepts the
#: careful reader accepts too
MAX_RECORD_CHARS = 2_097_152
#: the most lines a record may span (a quoted field with line breaks); a quote still open
#: after so many lines is taken as unclosed
MAX_RECORD_LINES = 200
#: bytes of a line read at most (4 per character in UTF-8, and its line end): beyond, the
#: line is too long whatever it holds, and the rest of it is skipped unread
_MAX_LINE_BYTES = 4 * MAX_RECORD_CHARS + 2
#: records written to the staging table at a time by the careful reader (bounded memory)
_CHUNK = 50_000

csv.field_size_limit(max(csv.field_size_limit(), MAX_RECORD_CHARS + 1))


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
    first = head.lstrip("\ufeff").split("\n")[0]
    counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _py_encoding(encoding: str) -> str:
    encoding = encoding.lower().replace("_", "-")
    return {"latin1": "latin-1", "iso-8859-1": "latin-1", "utf8": "utf-8"}.get(encoding, encoding)


def _check_encoding(encoding: str, path: Path) -> None:
    """An encoding Python knows, in which a line feed, the quote and the usual delimiters
    are the ASCII bytes (lines are found by their bytes)."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise MappingError(
            f"{path}: unknown encoding {encoding!r} under [read] in the mapping; use one such as "
            '"utf-8", "latin-1" or "cp1252"') from None
    if '\n\r,;\t|"'.encode(encoding) != b'\n\r,;\t|"':
        raise InputFileError(
            f"{path}: encoding {encoding!r} is not supported for delimited text (its line ends "
            "are not single bytes); ask the site for UTF-8, or convert the file to UTF-8")


def csv_dialect(src: SourceFile, opts: ReadOptions) -> CsvDialect:
    """The delimiter (from the mapping, else sniffed), quote, encoding and header of ``src``."""
    encoding = _py_encoding(opts.encoding)
    _check_encoding(encoding, src.path)
    delimiter = opts.delimiter or _sniff_delimiter(src.path, encoding)
    dialect = CsvDialect(delimiter, opts.quote, encoding, ())
    with src.path.open("rb") as fh:
        first = next(_records(_Lines(fh, src.path, encoding), _Parser(dialect)), None)
    if first is not None and first.problem is not None:
        problem = first.problem.split("; this line is quarantined")[0]
        raise InputFileError(f"{src.path}: the header is malformed: {problem}")
    header = [h.strip() for h in (first.fields or [])] if first is not None and first.line == 1 else []
    if not any(header):
        raise InputFileError(f"{src.path}: no header line; the first line must name the columns")
    if any("\r" in h for h in header):
        raise InputFileError(
            f"{src.path}: line 1 (the header) holds a carriage return that does not end the line: "
            "lines end with a line feed (\\n or \\r\\n) here, and this file's seem to end with a "
            "carriage return alone (old Mac OS); save it again with Unix or Windows line ends")
    names = tuple(h if h else f"column{i + 1}" for i, h in enumerate(header))
    return CsvDialect(delimiter, opts.quote, encoding, names)


def csv_scan(src: SourceFile, dialect: CsvDialect, *, types: Sequence[str] | None = None,
             date_format: str | None = None, decimal_comma: bool = False,
             rejects: str | None = None, lenient: bool = False) -> str:
    """A query of the records of ``src``, columns named by position (:mod:`cohort.staged`).

    Every column is text unless ``types`` says otherwise; a typed value DuckDB cannot read
    makes its record a reject (in temporary table ``rejects``, with its line) instead of
    an error. Without ``rejects`` a malformed record is an error, or with ``lenient``
    skipped (for samples).
    """
    types = types or ["VARCHAR"] * len(dialect.names)
    columns = "{" + ", ".join(f"{sql_literal(staged_name(i))}: {sql_literal(t)}"
                              for i, t in enumerate(types)) + "}"
    options = [
        f"delim = {sql_literal(dialect.delimiter)}", f"quote = {sql_literal(dialect.quote)}",
        f"escape = {sql_literal(dialect.quote)}", "header = true", "auto_detect = false",
        f"columns = {columns}", f"encoding = {sql_literal(dialect.duckdb_encoding or 'utf-8')}",
        "ignore_errors = true" if lenient else "strict_mode = true", "null_padding = false",
        "nullstr = ''", f"max_line_size = {MAX_RECORD_CHARS}",
    ]
    if date_format:
        options.append(f"dateformat = {sql_literal(date_format)}")
    if decimal_comma:
        options.append("decimal_separator = ','")
    if rejects:
        options.append(f"store_rejects = true, rejects_table = {sql_literal(rejects)}, "
                       f"rejects_scan = {sql_literal(rejects + '_scan')}")
    names = ", ".join(staged_name(i) for i in range(len(dialect.names)))
    return f"select {names} from read_csv({sql_literal(str(src.path))}, {', '.join(options)})"


def _check_utf8(path: Path) -> None:
    """Name the first line that is not UTF-8 (only called once a read has failed)."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _undecodable(path, number, raw, exc, "utf-8") from None


def _undecodable(path: Path, line: int, raw: bytes, exc: UnicodeDecodeError,
                 encoding: str) -> InputFileError:
    bad = raw[exc.start:exc.end]
    if codecs.lookup(encoding).name == "utf-8":
        return InputFileError(
            f"{path}: line {line}: bytes that are not UTF-8 ({bad!r}); if the site exports "
            'Latin-1 or Windows-1252, set encoding = "latin-1" or "cp1252" under [read] in '
            "the mapping")
    return InputFileError(
        f"{path}: line {line}: bytes that are not {encoding} ({bad!r}), the encoding the mapping "
        "names; set encoding under [read] in the mapping to the one the site exports "
        '(e.g. "utf-8" or "latin-1")')


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


# --- the careful reader ---------------------------------------------------------------

class _Line(NamedTuple):
    number: int
    text: str  # without its line end
    end: str  # "\r\n", "\n", or "" (or "\r") on a last line without a line feed
    too_long: bool = False


class _Lines:
    """The lines of an open binary file from where it stands, decoded; lines given back
    are read again first."""

    def __init__(self, fh: BinaryIO, path: Path, encoding: str, *, number: int = 1) -> None:
        self._fh, self._path, self._encoding = fh, path, encoding
        self._next = number
        self._back: deque[_Line] = deque()

    def read(self) -> _Line | None:
        if self._back:
            return self._back.popleft()
        raw = self._fh.readline(_MAX_LINE_BYTES)
        if not raw:
            return None
        number = self._next
        self._next += 1
        if len(raw) == _MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # skip the rest of the line unread
                raw = self._fh.readline(sourcefile.BLOCK)
            return _Line(number, "", "\n" if raw else "", too_long=True)
        try:
            text = raw.decode(self._encoding)
        except UnicodeDecodeError as exc:
            raise _undecodable(self._path, number, raw, exc, self._encoding) from None
        if number == 1:
            text = text.removeprefix("\ufeff")
        if text[-1:] == "\n":
            end = "\r\n" if text[-2:-1] == "\r" else "\n"
        else:  # the last line; ending in CR, CR is its end
            end = "\r" if text[-1:] == "\r" else ""
        if end:
            text = text[:-len(end)]
        return _Line(number, text, end, len(text) > MAX_RECORD_CHARS)

    def give_back(self, lines: Sequence[_Line]) -> None:
        self._back.extendleft(reversed(lines))


class _Feed:
    """The input of a reusable csv.reader: one record's text at a time; notes whether
    the reader asked for more (a quoted field still open at the end of the text)."""

    def __init__(self) -> None:
        self.text: str | None = None
        self.asked_more = False

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        if self.text is None:
            self.asked_more = True
            raise StopIteration
        text, self.text = self.text, None
        return text


#: characters of Unicode's private use area stand in for carriage returns while Python's
#: csv parser reads a record (it would take one as the end of the record)
_STAND_INS = [chr(c) for c in range(0xE000, 0xE100)]


class _Parser:
    """The fields of a record's text, as Python's csv module reads them (strict)."""

    def __init__(self, dialect: CsvDialect) -> None:
        self.dialect = dialect
        self._feed = _Feed()
        self._reader = csv.reader(self._feed, delimiter=dialect.delimiter,
                                  quotechar=dialect.quote, strict=True)

    def fields(self, text: str) -> list[str] | None:
        """The fields of ``text``, or None if a quoted field is still open at its end;
        raises csv.Error if it is malformed."""
        if self.dialect.quote not in text and "\r" not in text:
            return text.split(self.dialect.delimiter)  # what csv makes of it, faster
        stand_in = next((c for c in _STAND_INS if c not in text), None) if "\r" in text else None
        if "\r" in text and stand_in is None:
            raise csv.Error("carriage returns and every stand-in character in one record")
        self._feed.text = text.replace("\r", stand_in) if stand_in else text
        self._feed.asked_more = False
        try:
            record = next(self._reader, [])
        except csv.Error:
            if self._feed.asked_more:
                return None
            raise
        finally:
            self._feed.text = None
        return [f.replace(stand_in, "\r") for f in record] if stand_in else record


class _Record(NamedTuple):
    line: int  # its first line
    last: int  # its last line
    fields: list[str] | None  # None if malformed
    problem: str | None = None


def _span(first: int, last: int) -> str:
    return f"line {first}" if first == last else f"lines {first}-{last}"


def _field_of_quote(text: str, dialect: CsvDialect) -> int:
    """The (0-based) field where a quote problem of ``text`` lies: the field still open at
    its end, or the one whose closing quote is followed by other characters."""
    d, q = dialect.delimiter, dialect.quote
    field, state = 0, "start"
    for c in text:
        if state == "start":
            if c == d:
                field += 1
            else:
                state = "quoted" if c == q else "plain"
        elif state == "plain":
            if c == d:
                field, state = field + 1, "start"
        elif state == "quoted":
            state = "quote?" if c == q else "quoted"
        elif c == q:
            state = "quoted"
        elif c == d:
            field, state = field + 1, "start"
        elif c not in "\r\n":
            return field
    return field


def _column(field: int, names: Sequence[str]) -> str:
    return f"field {field + 1} ({names[field]!r})" if field < len(names) else f"field {field + 1}"


def _unclosed(line: int, field: int, names: Sequence[str], why: str, *, last: bool) -> str:
    then = "" if last else f" and reading goes on at line {line + 1}"
    return (f"line {line}: a quote opens {_column(field, names)} and is not closed {why}; this "
            f"line is quarantined alone{then}")


def _gather(first: _Line, lines: _Lines, parser: _Parser, names: Sequence[str]) -> _Record:
    """The record whose quoted field opens on line ``first``: the lines up to the one where
    it closes, or ``first`` alone as malformed if the quote is unclosed (see the module's
    docstring); the lines read beyond ``first`` are then given back."""
    taken: list[_Line] = []
    text, size = first.text, len(first.text)
    why = None
    while why is None:
        line = lines.read()
        if line is None:
            why = "before the end of the file (the file may be truncated)"
            break
        taken.append(line)
        size += len(line.text) + 2
        if line.too_long or size > MAX_RECORD_CHARS:
            why = f"within {MAX_RECORD_CHARS:,} characters"
        elif len(taken) >= MAX_RECORD_LINES:
            why = f"within {MAX_RECORD_LINES} lines (more than any plausible record)"
        else:
            text += (taken[-2].end if len(taken) > 1 else first.end) + line.text
            if parser.dialect.quote not in line.text:
                continue
            try:
                fields = parser.fields(text)
            except csv.Error:
                why = (f"where a quote on line {line.number} would close it, other characters "
                       "follow that quote instead of a delimiter, so it opens a field instead")
                break
            if fields is not None:
                return _Record(first.number, line.number, fields)
    lines.give_back(taken)
    return _Record(first.number, first.number, None,
                   _unclosed(first.number, _field_of_quote(first.text, parser.dialect), names, why,
                             last=not taken))


def _records(lines: _Lines, parser: _Parser, names: Sequence[str] = ()) -> Iterator[_Record]:
    """Every record of ``lines`` (the first is the header if they start at line 1), each
    with its first and last line; a malformed one has a problem and no fields."""
    while (line := lines.read()) is not None:
        if line.too_long:
            yield _Record(line.number, line.number, None, (
                f"line {line.number}: longer than {MAX_RECORD_CHARS:,} characters, the most a "
                f"record may hold; reading goes on at line {line.number + 1}"))
            continue
        if line.text == "":
            continue  # a blank line holds no record
        try:
            fields = parser.fields(line.text)
        except csv.Error:
            yield _Record(line.number, line.number, None, _stray_quote(
                line.number, line.number, line.text, parser.dialect, names))
            continue
        if fields is None:
            yield _gather(line, lines, parser, names)
        else:
            yield _Record(line.number, line.number, fields)


def _stray_quote(first: int, last: int, text: str, dialect: CsvDialect,
                 names: Sequence[str]) -> str:
    column = _column(_field_of_quote(text, dialect), names)
    return (f"{_span(first, last)}: the closing quote of {column} is followed by other "
            f"characters instead of a delimiter; a quote inside a quoted field is written "
            f'twice ("")')


def _values(record: _Record, names: Sequence[str]) -> tuple[list[str | None], str | None]:
    """A record's values (empty -> None), or Nones and why it is malformed."""
    width = len(names)
    if record.fields is None:
        return [None] * width, record.problem
    found = len(record.fields)
    if found == width:
        return [v if v != "" else None for v in record.fields], None
    if found < width:
        missing = names[found:]
        named = ", ".join(map(repr, missing[:5])) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        detail = f"no value for {named}"
    else:
        detail = f"{found - width} more than the header names"
    fields = "field" if found == 1 else "fields"
    return [None] * width, (f"{_span(record.line, record.last)}: {found} {fields} where the header "
                            f"has {width} ({detail}); check the delimiter and quoting of this record")


class _Staging:
    """Records written to a staging table in chunks (bounded memory)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, names: Sequence[str], target: str,
                 *, append: bool = False) -> None:
        self._con, self._names, self._target = con, names, target
        self.count, self._written = 0, append
        self._records: list[list[str | None]] = []
        self._lines: list[int] = []
        self._problems: list[str | None] = []

    def add(self, record: _Record) -> None:
        values, problem = _values(record, self._names)
        self._records.append(values)
        self._lines.append(record.line)
        self._problems.append(problem)
        self.count += 1
        if len(self._records) >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        if self._records or not self._written:
            _register_records(self._con, self._names, self._records, self._lines,
                              self._problems, self._target, append=self._written)
            self._written = True
        self._records, self._lines, self._problems = [], [], []


def _register_records(con: duckdb.DuckDBPyConnection, names: Sequence[str],
                      records: list[list[str | None]], lines: list[int],
                      problems: list[str | None], target: str, *, append: bool = False) -> None:
    """Table ``target``: source_line, the text of each column (named by position), _parse_error."""
    staged = [staged_name(i) for i in range(len(names))]
    if not records and not append:  # the usual case on the fast path: nothing to read again
        columns = ", ".join(f"{n} varchar" for n in staged)
        con.execute(f"create or replace temp table {target} (source_line bigint, {columns}, "
                    "_parse_error varchar)")
        return
    frame = pl.DataFrame(records, schema=[(n, pl.String) for n in staged], orient="row")
    frame = frame.with_columns(source_line=pl.Series(lines, dtype=pl.Int64),
                               _parse_error=pl.Series(problems, dtype=pl.String))
    con.register("_cohort_frame", frame.select("source_line", *staged, "_parse_error"))
    try:
        con.execute(f"insert into {target} select * from _cohort_frame" if append else
                    f"create or replace temp table {target} as select * from _cohort_frame")
    finally:
        con.unregister("_cohort_frame")


def _stage_csv_careful(con: duckdb.DuckDBPyConnection, src: SourceFile, dialect: CsvDialect,
                       target: str, limit: int | None = None) -> list[str]:
    """Read record by record (see the module's docstring), keeping each record's first
    line; a malformed record is kept with its parse error and reading goes on. With
    ``limit``, the first records only."""
    staging = _Staging(con, dialect.names, target)
    with src.path.open("rb") as fh:
        records = _records(_Lines(fh, src.path, dialect.encoding), _Parser(dialect), dialect.names)
        next(records, None)  # the header
        for record in records:
            if limit is not None and staging.count >= limit:
                break
            staging.add(record)
    staging.flush()
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
    Each is read by the careful reader's rules (a record that would span lines there is
    malformed here: DuckDB's reader took its first line as a record of its own).
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
    staging = _Staging(con, dialect.names, target, append=append)
    parser = _Parser(dialect)
    with src.path.open("rb") as fh:
        for line, offset in zip(wanted, _line_offsets(src, fh, wanted), strict=True):
            fh.seek(offset)
            record = next(_records(_Lines(fh, src.path, dialect.encoding, number=line), parser,
                                   dialect.names), None)
            if record is None or record.line != line:  # DuckDB saw a record on a blank line?
                record = _Record(line, line, [])
            if record.last != record.line:  # DuckDB's reader took line L as a record alone
                record = _Record(line, line, None, (
                    f"line {line}: a quoted field opens on this line and closes on line "
                    f"{record.last}, but the fast reader took the line as a record of its own; "
                    "this line is quarantined alone"))
            staging.add(record)
    staging.flush()


def _line_offsets(src: SourceFile, fh: BinaryIO, wanted: list[int]) -> Iterator[int]:
    """Where each of the (sorted, > 1) ``wanted`` lines starts, each block read once."""
    before = src.newlines_before
    block, newlines = -1, np.empty(0, np.int64)
    for line in wanted:
        # line L starts after newline L-1, which lies in the last block with fewer before it
        k = line - 1
        holder = bisect.bisect_left(before, k) - 1
        if holder != block and k - before[holder] == 1:  # after the block's first newline:
            fh.seek(holder * sourcefile.BLOCK)  # no need to index the block
            fh.readline()
            yield fh.tell()
            continue
        if holder != block:
            block = holder
            fh.seek(block * sourcefile.BLOCK)
            newlines = np.flatnonzero(np.frombuffer(fh.read(sourcefile.BLOCK), np.uint8) == 10)
        yield block * sourcefile.BLOCK + int(newlines[k - before[block] - 1]) + 1
