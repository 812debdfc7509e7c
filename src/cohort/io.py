"""Read site files into a DuckDB staging table, every value as text.

Each reader puts the file's records, in file order, into a table of VARCHAR
columns plus ``source_line``: the line (CSV) or sheet row (Excel) of the
record, counting the header as line 1; for Parquet and statistical files the
record number + 1, as if they had a header line. CSV is read by DuckDB itself
(streaming, bounded memory); the other formats through polars or pyreadstat.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from cohort.db import quote_ident, scalar
from cohort.errors import InputFileError
from cohort.mapping import ReadOptions

__all__ = [
    "SourceFile", "describe_file", "detect_format", "drop_staged", "stage_raw",
    "read_header_and_samples",
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


@dataclass(frozen=True)
class SourceFile:
    path: Path
    format: str
    sha256: str
    size_bytes: int


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
                  input_root: Path | None = None) -> SourceFile:
    """Check a file and return its format, sha256 and size.

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
    digest = hashlib.sha256()
    with resolved.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return SourceFile(resolved, fmt, digest.hexdigest(), resolved.stat().st_size)


def _sniff_delimiter(path: Path, encoding: str) -> str:
    with path.open("rb") as fh:
        head = fh.read(65536).decode(encoding, errors="replace")
    first = head.lstrip("\ufeff").splitlines()[0] if head.strip() else ""
    counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_header(path: Path, opts: ReadOptions, delimiter: str) -> list[str]:
    with path.open("r", encoding=_py_encoding(opts.encoding), errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter, quotechar=opts.quote)
        header = next(reader, [])
    return [h.lstrip("\ufeff").strip() for h in header]


def _py_encoding(encoding: str) -> str:
    return {"latin-1": "latin-1", "latin1": "latin-1", "utf8": "utf-8"}.get(encoding, encoding)


def _check_utf8(path: Path) -> None:
    """Name the first line that is not UTF-8 (only called once a read has failed)."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputFileError(
                    f"{path}: line {number}: bytes that are not UTF-8 "
                    f"({raw[exc.start:exc.end]!r}); if the site exports Latin-1, set "
                    'encoding = "latin-1" under [read] in the mapping'
                ) from None


def _count_lines(path: Path) -> int:
    """Physical lines of a file (a last line without a newline counts)."""
    lines, last = 0, b"\n"
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def _stage_csv(con: duckdb.DuckDBPyConnection, src: SourceFile, opts: ReadOptions, target: str) -> list[str]:
    """Fast path: DuckDB reads the file; if its records do not account for every line
    (quoted newlines, blank lines, malformed records), the careful path takes over."""
    encoding = opts.encoding.replace("_", "-")
    delimiter = opts.delimiter or _sniff_delimiter(src.path, _py_encoding(encoding))
    header = _csv_header(src.path, opts, delimiter)
    if not any(header):
        raise InputFileError(f"{src.path}: no header line; the first line must name the columns")
    names = [h if h else f"column{i + 1}" for i, h in enumerate(header)]
    columns = {f"c{i}": "VARCHAR" for i in range(len(names))}
    try:
        con.execute(
            f"create or replace temp table {target}_csv as "
            "select * from read_csv(?, delim = ?, quote = ?, escape = ?, header = true, "
            "auto_detect = false, columns = ?, encoding = ?, strict_mode = true, "
            "null_padding = false, nullstr = '')",
            [str(src.path), delimiter, opts.quote, opts.quote, columns,
             "latin-1" if encoding in ("latin-1", "latin1", "iso-8859-1") else "utf-8"],
        )
        rows = int(scalar(con, f"select count(*) from {target}_csv"))
    except duckdb.Error as exc:
        if encoding in ("utf-8", "utf8") and "unicode" in str(exc).lower():
            _check_utf8(src.path)
        rows = -1
    if rows + 1 != _count_lines(src.path):
        drop_staged(con, target)
        return _stage_csv_careful(con, src, opts, delimiter, names, target)
    # a view, not a copy: the table keeps the file's order, so rowid + 2 is the line
    renames = ", ".join(f"c{i} as {quote_ident(n)}" for i, n in enumerate(names))
    con.execute(
        f"create or replace temp view {target} as select (rowid + 2)::bigint as source_line, "
        f"{renames}, null::varchar as _parse_error from {target}_csv"
    )
    return names


def _text_from(path: Path, line: int, opts: ReadOptions) -> str:
    with path.open("r", encoding=_py_encoding(opts.encoding), errors="replace", newline="") as fh:
        for number, text in enumerate(fh, start=1):
            if number == line:
                return text[:200]
    return ""


def _stage_csv_careful(con: duckdb.DuckDBPyConnection, src: SourceFile, opts: ReadOptions,
                       delimiter: str, names: list[str], target: str) -> list[str]:
    """Read record by record, keeping each record's first line; a malformed record
    (wrong number of fields, unterminated quote) is kept with its parse error."""
    records: list[list[str | None]] = []
    lines: list[int] = []
    problems: list[str | None] = []
    width = len(names)
    with src.path.open("r", encoding=_py_encoding(opts.encoding.replace("_", "-")),
                       newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter, quotechar=opts.quote, strict=True)
        next(reader, None)
        end = reader.line_num
        while True:
            start = end + 1
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                records.append([None] * width)
                lines.append(start)
                problems.append(f"malformed record from line {start} ({exc}): the file may be "
                                f"truncated; its text: {_text_from(src.path, start, opts)!r}")
                break
            end = reader.line_num
            if not record or record == [""]:
                continue  # a blank line holds no record
            if len(record) != width:
                records.append([None] * width)
                problems.append(f"expected {width} fields, found {len(record)}: "
                                f"{delimiter.join(record)[:200]!r}")
            else:
                records.append([v if v != "" else None for v in record])
                problems.append(None)
            lines.append(start)
    frame = pl.DataFrame(records, schema=[(f"c{i}", pl.String) for i in range(width)],
                         orient="row")
    frame = frame.rename({f"c{i}": n for i, n in enumerate(names)}).with_columns(
        source_line=pl.Series(lines, dtype=pl.Int64),
        _parse_error=pl.Series(problems, dtype=pl.String))
    con.register("_cohort_frame", frame.select("source_line", *names, "_parse_error"))
    try:
        con.execute(f"create or replace temp table {target} as select * from _cohort_frame")
    finally:
        con.unregister("_cohort_frame")
    return names


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
) -> tuple[list[str], int]:
    """Copy the records of ``src`` into table ``target`` as text; return (header, rows)."""
    if src.format == "csv":
        header = _stage_csv(con, src, read, target)
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
        header, _ = stage_raw(con, src, read=read, sheet=sheet, target="raw")
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
