"""Load site files into the study: stage, coerce, validate, then promote atomically.

The flow of one file (one *batch*):

1. the file is checked (format, size, lines; its sha256 is computed meanwhile) and
   skipped if that exact file is already loaded into the same table;
2. its header (and, for identifiers, a sample of its values) is checked against the
   site's mapping; a column that looks like a direct identifier is refused;
3. every value is coerced (:mod:`cohort.coerce`): a value that cannot be read, a
   missing required value or a value outside the allowed set sends the row to
   quarantine with the reason. A delimited text file is read and typed by DuckDB in
   one pass, only the few rows it rejects or that look wrong are read again as text
   (from their lines) for the exact coercion; other formats, and text whose records
   are not one per line, are staged as text first. Working tables are temporary (in
   memory, spilling to disk; never in the study file);
4. the coerced rows are validated with the study's Great Expectations suites
   (:mod:`cohort.validate`): rows with error findings are quarantined, warnings
   are recorded, a fatal finding rejects the whole batch;
5. in one transaction the loaded rows (with their batch id and source line), the
   upload record, the quarantined rows (with their raw record) and the findings are
   written. A load killed at any moment leaves the study file as it was (a batch being
   validated, in the ``staging`` schema, is dropped the next time the study is opened).

``rows_read = rows_loaded + rows_quarantined`` holds for every batch; a
rejected batch counts all its rows as quarantined (its failing rows, with
their reasons, are in ``quarantine``).
"""

from __future__ import annotations

import getpass
import glob as globlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from cohort.coerce import Coerced, coerce, coerce_csv, drop_coerced
from cohort.db import drop_staged, quote_ident, scalar, sql_literal, without_lines
from cohort.delimited import csv_dialect, csv_scan, stage_csv_lines
from cohort.errors import InputFileError, MappingError, UserError
from cohort.io import stage_raw
from cohort.mapping import (
    ColumnMap,
    Mapping,
    ReadOptions,
    TableMap,
    check_header,
    identity_mapping,
    load_mapping,
)
from cohort.sourcefile import SourceFile, describe_file
from cohort.tables import table_columns

if TYPE_CHECKING:
    from cohort.study import Study
    from cohort.validate import ValidationReport

__all__ = ["LoadResult", "load_files", "validate_loaded", "rollback_batch", "expand_paths"]

#: records of a delimited text file read as text for the header and identifier checks
_SAMPLE_ROWS = 10_000
_IDENTIFIER_SAMPLE = 500
_NO_FINDINGS = pl.DataFrame(schema={
    "source_line": pl.Int64, "participant_id": pl.String, "column_name": pl.String,
    "value": pl.String, "rule": pl.String, "severity": pl.String, "message": pl.String})


@dataclass(frozen=True)
class LoadResult:
    """What happened to one file."""

    file: str
    table: str
    status: str  # loaded | rejected | skipped
    batch_id: int | None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_warned: int = 0
    message: str = ""
    validation: ValidationReport | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "validation"}


def expand_paths(paths: str | os.PathLike[str] | list[str | os.PathLike[str]],
                 *, pattern: str | None = None) -> list[Path]:
    """Files named by paths, folders (all files, or those matching ``pattern``) and globs."""
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(p.glob(pattern or "*"))
            out.extend(f for f in found if f.is_file() and not f.name.startswith("."))
        elif any(ch in str(item) for ch in "*?["):
            out.extend(Path(f) for f in sorted(globlib.glob(str(item))))
        else:
            out.append(p)
    if not out:
        raise InputFileError(f"no input files found in {', '.join(map(str, items))}")
    return out


def _next_batch_id(con: duckdb.DuckDBPyConnection) -> int:
    return int(scalar(con, "select coalesce(max(batch_id), 0) + 1 from uploads"))


def _resolve_mapping(mapping: str | os.PathLike[str] | Mapping | None) -> Mapping | None:
    if mapping is None or isinstance(mapping, Mapping):
        return mapping
    return load_mapping(mapping)


def load_files(
    study: Study,
    paths: str | os.PathLike[str] | list[str | os.PathLike[str]],
    *,
    site: str | None,
    table: str,
    mapping: str | os.PathLike[str] | Mapping | None = None,
    replaces: int | None = None,
    loaded_by: str | None = None,
    validate: bool = True,
    progress: Callable[[str], None] | None = None,
) -> list[LoadResult]:
    """Load one or more site files into ``table``; one batch per file.

    Parameters
    ----------
    study
        The open study.
    paths
        Files, folders or globs. A folder with a mapping that names a file
        pattern for ``table`` loads the matching files only.
    site
        The site id; defaults to the mapping's ``site_id``.
    table
        The canonical table the files hold.
    mapping
        The site's mapping spec (TOML path). Without one the file must carry
        the canonical column names.
    replaces
        A batch this delivery corrects: that batch is marked ``superseded``
        (its rows stay in the history), in the same transaction.
    loaded_by
        Who loads (default: the OS user).
    validate
        Run the study's validation suites on the batch (default). Without,
        only coercion (types, required values, allowed values) guards the load.
    progress
        Called with a short message as each file moves from stage to stage.
    """
    try:
        table_columns(table)
    except KeyError as exc:
        raise UserError(str(exc.args[0])) from None
    spec = _resolve_mapping(mapping)
    tm = spec.for_table(table) if spec is not None else None
    files = expand_paths(paths, pattern=tm.file if tm is not None else None)
    if replaces is not None and len(files) != 1:
        raise UserError("--replaces corrects one batch: give exactly one file")
    site_id = site or (spec.site_id if spec else None)
    who = loaded_by or _user()
    return [
        _load_one(study, f, table=table, spec=spec, site_id=site_id, replaces=replaces,
                  loaded_by=who, validate=validate, progress=progress or (lambda _: None))
        for f in files
    ]


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers
        return f"uid {os.getuid()}"


def _load_one(study: Study, path: Path, *, table: str, spec: Mapping | None,
              site_id: str | None, replaces: int | None, loaded_by: str,
              validate: bool, progress: Callable[[str], None]) -> LoadResult:
    from cohort.validate import ValidationConfig, validate_relation

    con = study.con
    src = describe_file(path, spec.format if spec and path.suffix.lower() not in (
        ".csv", ".xlsx", ".parquet") else None, input_root=study.input_root)
    # the same content has the same size: only then is the hash (still being computed) needed now
    loaded = "from uploads where size_bytes = ? and table_name = ? and status = 'loaded'"
    done = None
    if scalar(con, f"select count(*) {loaded}", [src.size_bytes, table]):
        done = scalar(con, f"select min(batch_id) {loaded} and sha256 = ?",
                      [src.size_bytes, table, src.sha256])
    if done is not None:
        return LoadResult(str(path), table, "skipped", int(done),
                          message=f"already loaded as batch {done}: nothing to do")
    if replaces is not None:
        status = scalar(con, "select status from uploads where batch_id = ?", [replaces])
        if status != "loaded":
            raise UserError(f"--replaces {replaces}: no batch {replaces} in force "
                            f"(status: {status or 'no such batch'}); see `cohort uploads`")

    batch = _next_batch_id(con)
    # working tables are temporary (in memory, spilling to disk; never in the study file);
    # only the batch to validate is visible to Great Expectations, in the staging schema
    raw, typed, errors = f"_raw_{batch}", f"_typed_{batch}", f"_errors_{batch}"
    staged = f"staging.batch_{batch}"
    read = spec.read if spec else ReadOptions()
    try:
        progress(f"{path.name}: reading")
        sheet = spec.for_table(table).sheet if spec else None
        fast_csv = src.format == "csv"
        # a delimited text file is read whole only once, typed (below); this is a sample
        header, rows_read = stage_raw(con, src, read=read, sheet=sheet, target=raw,
                                      limit=_SAMPLE_ROWS if fast_csv else None)
        if rows_read == 0 and (not fast_csv or (src.lines or 0) <= 1):
            raise InputFileError(f"{path}: has a header but no data rows; nothing to load")
        tm = (spec or identity_mapping(table, header, site_id=site_id)).for_table(table)
        check_header(tm, header, file=str(path), mapping_path=spec.path if spec else None)
        # a column the sample holds little of is looked for in the whole file
        rest = csv_scan(src, csv_dialect(src, read), lenient=True) if (
            fast_csv and rows_read == _SAMPLE_ROWS) else None
        identifiers = _refuse_identifiers(con, tm, raw, header, file=str(path), rest=rest)
        if site_id is not None and spec is not None and spec.site_id is None:
            tm = _with_site(tm, site_id)
        progress(f"{path.name}: reading and typing" if fast_csv else f"{path.name}: typing")
        good, rows_read, lines_only = _coerce_file(
            con, src, tm, read=read, sheet=sheet, rows_read=rows_read, raw=raw, typed=typed,
            errors=errors)
        if rows_read == 0:
            raise InputFileError(f"{path}: has a header but no data rows; nothing to load")
        rows = Coerced(f"select *, {int(batch)}::bigint as batch_id from ({good.sql})", good.params)
        if validate:  # Great Expectations reads the batch from the staging schema
            con.execute(f"create or replace table {staged} as {rows.sql}", rows.params)
            rows = Coerced(f"select * from {staged}", {})
        options = study.validation_options() if validate else {"config": ValidationConfig()}
        config = options["config"]
        progress(f"{path.name}: {rows_read:,} rows; " + ("validating" if validate else "writing"))
        report = validate_relation(
            con, relation=staged, table=table, **options,
            replaces=() if replaces is None else (replaces,)) if validate else None
        if lines_only and report is not None:  # the text of the rows validation quarantines
            failing = report.findings.filter(pl.col("severity").is_in(["error", "fatal"]))
            have = {r[0] for r in con.execute(f"select source_line from {raw}").fetchall()}
            more = set(failing["source_line"].drop_nulls().to_list()) - have
            if more:
                stage_csv_lines(con, src, csv_dialect(src, read), sorted(more), raw, append=True)
        kept = [h for h in header if h not in identifiers]
        return _promote(con, src, table=table, batch=batch, site_id=site_id or "", spec=spec,
                        header=kept, rows_read=rows_read, raw=raw, rows=rows, errors=errors,
                        report=report, replaces=replaces, loaded_by=loaded_by,
                        fatal_fraction=config.fatal_error_fraction)
    finally:
        drop_coerced(con, typed)
        for t in (staged, errors, raw):
            drop_staged(con, t)


def _coerce_file(con: duckdb.DuckDBPyConnection, src: SourceFile, tm: TableMap, *,
                 read: ReadOptions, sheet: str | None, rows_read: int, raw: str, typed: str,
                 errors: str) -> tuple[Coerced, int, bool]:
    """The typed rows of a file, the records read, and whether ``raw`` holds the text of
    the problem lines only (the fast path for delimited text) rather than of every record.

    A delimited text file has only a sample staged (``raw``) when this is called; other
    formats are staged whole (``rows_read`` records)."""
    if src.format == "csv":
        drop_staged(con, raw)  # the sample
        fast = coerce_csv(con, tm, src, read=read, raw=raw, typed=typed, errors=errors)
        if fast is not None:
            return fast[0], fast[1], True
        # records that are not one per line (quoted newlines, blank lines): text first
        drop_coerced(con, typed)
        _, rows_read = stage_raw(con, src, read=read, sheet=sheet, target=raw)
    good = coerce(con, tm, src, raw=raw, typed=typed, errors=errors, decimal_comma=read.decimal_comma)
    return good, rows_read, False


def _refuse_identifiers(con: duckdb.DuckDBPyConnection, tm: TableMap, raw: str,
                       header: list[str], *, file: str, rest: str | None = None) -> set[str]:
    """Refuse a mapped column that looks like a direct identifier (unless pseudonymised);
    return every suspect column, so that none is ever written (not even in quarantine).

    Each column is judged on its first 500 values; ``raw`` may be a sample of the file, and
    ``rest`` then the query of all its records, for the columns the sample has too few of.
    """
    from cohort.identifiers import find_identifiers

    def first_values(relation: str, column: str) -> list[Any]:
        return [r[0] for r in con.execute(
            f"select {quote_ident(column)} from ({relation}) where {quote_ident(column)} "
            f"is not null limit {_IDENTIFIER_SAMPLE}").fetchall()]

    samples = {h: first_values(f"select * from {raw}", h) for h in header}
    if rest is not None:
        for h, values in samples.items():
            if len(values) < _IDENTIFIER_SAMPLE:
                samples[h] = first_values(rest, h)
    suspects = find_identifiers(header, samples)
    pseudonymised = {c.source for c in tm.columns if c.pseudonymise}
    for s in suspects:
        if s.column in tm.sources and s.column not in pseudonymised:
            canonical = next(c.canonical for c in tm.columns if c.source == s.column)
            raise MappingError(
                f"{file}: column {s.column!r} (mapped to {tm.table}.{canonical}) looks like "
                f"{s.kind} ({s.evidence}); direct identifiers are not loaded. Drop it under "
                f"[tables.{tm.table}.drop], or map it with pseudonymise = true to store a keyed "
                "hash instead")
    return {s.column for s in suspects} | pseudonymised


def _with_site(tm: TableMap, site_id: str) -> TableMap:
    if any(c.canonical == "site_id" for c in tm.columns) or not any(
        c.name == "site_id" for c in table_columns(tm.table)
    ):
        return tm
    return TableMap(tm.table, tm.columns + (ColumnMap("site_id", constant=site_id),),
                    tm.file, tm.sheet, tm.drop)


def _promote(con: duckdb.DuckDBPyConnection, src: SourceFile, *, table: str, batch: int,
             site_id: str, spec: Mapping | None, header: list[str], rows_read: int, raw: str,
             rows: Coerced, errors: str, report: ValidationReport | None, replaces: int | None,
             loaded_by: str, fatal_fraction: float) -> LoadResult:
    findings = report.findings if report is not None else _NO_FINDINGS
    val_errors = findings.filter(pl.col("severity").is_in(["error", "fatal"]))
    warnings = findings.filter(pl.col("severity") == "warning")
    con.register("_val_errors", val_errors.select(
        pl.col("source_line").cast(pl.Int64), "column_name",
        pl.col("value").cast(pl.String), "rule", "message",
        pl.col("severity").replace({"fatal": "error"})))
    con.register("_warnings", warnings)
    raw_json = "to_json({" + ", ".join(
        f"{sql_literal(h)}: r.{quote_ident(h)}" for h in header) + "})"
    try:
        bad_lines = int(scalar(
            con, f"select count(*) from (select source_line from {errors} union "
                 "select source_line from _val_errors)"))
        fatal = list(report.fatal_reasons) if report is not None else []
        if not fatal and rows_read and bad_lines / rows_read > fatal_fraction:
            fatal.append(f"{bad_lines} of {rows_read} rows ({bad_lines / rows_read:.0%}) fail "
                         f"error rules, more than the {fatal_fraction:.0%} allowed")
        status = "rejected" if fatal else "loaded"
        quarantined = rows_read if fatal else bad_lines
        loaded = rows_read - quarantined
        message = "; ".join(fatal) if fatal else (
            f"{loaded} rows loaded, {quarantined} quarantined" if quarantined else f"{loaded} rows loaded")
        cols = [c.name for c in table_columns(table)]
        collist = ", ".join(quote_ident(c) for c in cols)
        con.execute("begin transaction")
        try:
            if not fatal:
                try:
                    [(inserted,)] = con.execute(
                        f"insert into store.{table} ({collist}, batch_id, source_line) "
                        f"select {collist}, batch_id, source_line from ({rows.sql})"
                        + without_lines(con, "_val_errors"), rows.params).fetchall()
                except duckdb.ConstraintException as exc:  # only validation quarantines duplicates
                    raise InputFileError(
                        f"{src.path}: {str(exc).splitlines()[0]}; nothing was loaded. Load with "
                        "validation (the default) to quarantine the duplicated rows") from None
                if inserted != loaded:  # never a lost (or doubled) row, whatever the cause
                    raise RuntimeError(f"{src.path}: {inserted} rows would be written, not the "
                                       f"{loaded} counted; nothing was loaded (a bug: please report it)")
            if replaces is not None:
                con.execute("update uploads set status = 'superseded', ended_at = current_timestamp "
                            "where batch_id = ?", [replaces])
            con.execute(  # after the rows: the file's hash may still be being computed
                "insert into uploads (batch_id, table_name, site_id, file_name, file_path, sha256, "
                "size_bytes, mapping, rows_read, rows_loaded, rows_quarantined, rows_warned, "
                "loaded_by, status, replaces, message) values "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [batch, table, site_id, src.path.name, str(src.path), src.sha256, src.size_bytes,
                 spec.text if spec else None, rows_read, loaded, quarantined, warnings.height,
                 loaded_by, status, replaces, message])
            con.execute(
                f"insert into quarantine select ?, ?, ?, e.source_line, e.column_name, e.value, "
                f"e.rule, e.severity, e.message, {raw_json} from ("
                f"select source_line, column_name, value, rule, 'error' as severity, message "
                f"from {errors} union all select source_line, column_name, value, rule, "
                f"severity, message from _val_errors) e join {raw} r using (source_line)",
                [batch, table, str(src.path)])
            if warnings.height:
                con.execute(
                    "insert into validation_findings select ?, ?, source_line, participant_id, "
                    "column_name, value, rule, severity, message from _warnings",
                    [batch, table])
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    finally:
        con.unregister("_val_errors")
        con.unregister("_warnings")
    return LoadResult(str(src.path), table, status, batch, rows_read, loaded, quarantined,
                      warnings.height, message, report)


def rollback_batch(study: Study, batch: int) -> None:
    """Take a batch out of force; its rows stay in the history (status ``rolled_back``)."""
    status = scalar(study.con, "select status from uploads where batch_id = ?", [batch])
    if status != "loaded":
        raise UserError(f"batch {batch} is not in force (status: {status or 'no such batch'}); "
                        "see `cohort uploads`")
    study.con.execute("update uploads set status = 'rolled_back', ended_at = current_timestamp "
                      "where batch_id = ?", [batch])


def validate_loaded(study: Study, *, table: str | None = None,
                    batch: int | None = None) -> dict[str, ValidationReport]:
    """Validate rows already loaded: one batch, one table, or every table (rows in force)."""
    from cohort.tables import TABLES
    from cohort.validate import validate_relation

    where = "u.status = 'loaded'"
    params: list[Any] = []
    if batch is not None:
        batch_table = scalar(study.con, "select table_name from uploads where batch_id = ?", [batch])
        if batch_table is None:
            raise UserError(f"no batch {batch}; see `cohort uploads`")
        if table is not None and table != batch_table:
            raise UserError(f"batch {batch} holds {batch_table}, not {table}")
        table, where, params = batch_table, "u.batch_id = ?", [batch]
    names = [table] if table else list(TABLES)
    reports = {}
    for name in names:
        table_columns(name)
        view = f"staging.inforce_{name}"
        study.con.execute(
            f"create or replace table {view} as select t.* from store.{name} t "
            f"join uploads u using (batch_id) where {where}", params)
        try:
            reports[name] = validate_relation(study.con, relation=view, table=name,
                                              **study.validation_options())
        finally:
            study.con.execute(f"drop table if exists {view}")
    return reports
