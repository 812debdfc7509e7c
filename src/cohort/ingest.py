"""Load site files into the study: stage, coerce, validate, then promote atomically.

The flow of one file (one *batch*):

1. the file is checked (format, size, lines; its sha256 is computed meanwhile) and
   refused if it is the same load as a batch before (see *Batches* below);
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

Batches
-------
- A batch is one site's delivery of one table: ``--site`` and the mapping's ``site_id``
  must agree, and the rows' ``site_id`` (participants) is the upload's.
- The same load again (the same file by sha256, into the same table, with the same
  mapping: the parts of it that apply to that table, compared as parsed TOML) as a batch
  loaded, superseded or rolled back before is refused (:class:`AlreadyLoadedError`,
  naming every such file and its batch) unless ``force``, or skipped with
  ``skip_loaded`` (the monthly re-run of a site folder: only the files new to the study
  load); the same file for another table or with another mapping is a new batch. A
  rejected batch does not count: its file can be loaded again.
- ``replaces`` takes a batch in force of the same table and site; it is superseded in
  the load's transaction, and only if the correction is not rejected.
- Rolling back a correction puts the batch it replaced back in force. A rollback that
  would leave rows in force of other tables without their participants is refused
  (:class:`OrphanRowsError`, naming the counts per table) unless ``force``.
"""

from __future__ import annotations

import getpass
import glob as globlib
import json
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from cohort.batches import batch_table
from cohort.coerce import Coerced, coerce, coerce_csv, drop_coerced
from cohort.db import drop_staged, quote_ident, scalar, sql_literal, without_lines
from cohort.delimited import csv_dialect, stage_csv_lines
from cohort.errors import (
    AlreadyLoadedError,
    InputFileError,
    MappingError,
    OrphanRowsError,
    UserError,
)
from cohort.excel import sheet_to_read
from cohort.identifiers import screen_free_text
from cohort.io import stage_raw, unmappable_columns
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
from cohort.staged import staged_map, staged_name, staged_names
from cohort.tables import Column, table_columns

if TYPE_CHECKING:
    from cohort.study import Study
    from cohort.validate import ValidationReport

__all__ = ["LoadResult", "RollbackResult", "load_files", "validate_loaded", "rollback_batch",
           "expand_paths"]

#: records of a delimited text file read as text for the header and identifier checks
_SAMPLE_ROWS = 10_000
_NO_FINDINGS = pl.DataFrame(schema={
    "source_line": pl.Int64, "participant_id": pl.String, "column_name": pl.String,
    "value": pl.String, "rule": pl.String, "severity": pl.String, "message": pl.String})


@dataclass(frozen=True)
class LoadResult:
    """What happened to one file."""

    file: str
    table: str
    #: loaded | rejected | skipped (``skip_loaded``: the same load is batch ``batch_id``)
    status: str
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
    """Files named by paths, folders (all files, or those matching ``pattern``) and globs.

    A path (or a folder's ``pattern``) is taken literally when it names a file
    (``visit[1].csv`` is that file, never ``visit1.csv``); only one that does not exist as
    given is expanded as a glob."""
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_file() or p.is_symlink():
            out.append(p)
        elif p.is_dir() and pattern is not None and (p / pattern).is_file():
            out.append(p / pattern)
        elif p.is_dir():
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
    force: bool = False,
    skip_loaded: bool = False,
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
        The site id; defaults to the mapping's ``site_id`` (they must agree), or
        with ``replaces`` to the site of the batch replaced.
    table
        The canonical table the files hold.
    mapping
        The site's mapping spec (TOML path). Without one the file must carry
        the canonical column names.
    replaces
        A batch in force of the same table and site that this delivery corrects:
        it is marked ``superseded`` (its rows stay in the history) in the same
        transaction, unless the correction is rejected.
    loaded_by
        Who loads (default: the OS user).
    validate
        Run the study's validation suites on the batch (default). Without,
        only coercion (types, required values, allowed values) guards the load.
    force
        Load a file again as a new batch even if it is the same load (file, table
        and mapping) as a batch before.
    skip_loaded
        Skip each file that is the same load as a batch before (loaded, superseded or
        rolled back): its result has status ``skipped`` and the ``batch_id`` of that
        batch (the latest, if several), no rows; the other files load.
    progress
        Called with a short message as each file moves from stage to stage.

    Returns
    -------
    list[LoadResult]
        One result per file, in order.

    Raises
    ------
    AlreadyLoadedError
        A file is the same load as a batch loaded, superseded or rolled back before
        (unless ``skip_loaded``), or has the content of another file of this call;
        nothing is loaded.
    """
    if force and skip_loaded:
        raise UserError("--force loads the files loaded before again and --skip-loaded skips "
                        "them: give one of the two")
    try:
        table_columns(table)
    except KeyError as exc:
        raise UserError(str(exc.args[0])) from None
    spec = _resolve_mapping(mapping)
    tm = spec.for_table(table) if spec is not None else None
    files = expand_paths(paths, pattern=tm.file if tm is not None else None)
    if replaces is not None and len(files) != 1:
        raise UserError("--replaces corrects one batch: give exactly one file")
    site_id = _declared_site(site, spec)
    if replaces is not None:
        site_id = _check_replaces(study.con, replaces, table=table, site_id=site_id)
    sources = [_describe(study, f, spec) for f in files]
    earlier = {} if force else _refuse_same_loads(study.con, sources, table=table, spec=spec,
                                                  skip_loaded=skip_loaded)
    who = loaded_by or _user()
    return [
        _skipped(src, table, earlier[src.path]) if src.path in earlier else
        _load_one(study, f, src, table=table, spec=spec, site_id=site_id, replaces=replaces,
                  loaded_by=who, validate=validate, progress=progress or (lambda _: None))
        for f, src in zip(files, sources, strict=True)
    ]


def _skipped(src: SourceFile, table: str, same: list[tuple[int, str]]) -> LoadResult:
    """The result of a file skipped as the same load as the batches ``same`` (batch, status)."""
    return LoadResult(str(src.path), table, "skipped", same[-1][0],
                      message=f"already loaded as {_batches_phrase(same, loaded_only=True)}, skipped")


def _batches_phrase(same: list[tuple[int, str]], *, loaded_only: bool = False) -> str:
    """``batch 7 (status loaded), batch 9 (status superseded)``; with ``loaded_only``, a
    status is named only if it is not ``loaded``."""
    return ", ".join(f"batch {b}" + ("" if loaded_only and st == "loaded" else f" (status {st})")
                     for b, st in same)


def _describe(study: Study, path: Path, spec: Mapping | None) -> SourceFile:
    declared = spec.format if spec and path.suffix.lower() not in (
        ".csv", ".xlsx", ".parquet") else None
    return describe_file(path, declared, input_root=study.input_root)


def _declared_site(site: str | None, spec: Mapping | None) -> str | None:
    """The site of the load: ``--site`` or the mapping's ``site_id``, which must agree."""
    site = site or None
    if site is not None and spec is not None and spec.site_id is not None \
            and site != spec.site_id:
        raise MappingError(
            f"--site {site} and the mapping's site_id {spec.site_id!r} "
            f"({spec.path or 'the mapping'}) disagree: a batch holds one site's rows. Leave out "
            "--site, or use the mapping of that site")
    return site if site is not None else (spec.site_id if spec is not None else None)


def _site_phrase(site_id: str | None) -> str:
    return f"site {site_id}" if site_id else "no site"


def _check_replaces(con: duckdb.DuckDBPyConnection, replaces: int, *, table: str,
                    site_id: str | None) -> str | None:
    """Refuse a ``replaces`` that is not a batch in force of the same table and site;
    return the site of the load (the replaced batch's when none is given)."""
    batch_table(con, replaces)
    found = con.execute("select status, table_name, site_id from uploads where batch_id = ?",
                        [replaces]).fetchall()
    status = found[0][0]
    if status != "loaded":
        raise UserError(f"--replaces {replaces}: no batch {replaces} in force "
                        f"(status: {status}); see `cohort uploads`")
    _, old_table, old_site = found[0]
    site_id = old_site if site_id is None and old_site else site_id
    if old_table != table or (old_site or None) != (site_id or None):
        raise UserError(
            f"--replaces {replaces}: batch {replaces} holds {old_table} of "
            f"{_site_phrase(old_site)}, this load is {table} of {_site_phrase(site_id)}; a "
            "correction replaces a batch of the same table and site (see `cohort uploads`)")
    return site_id


def _mapping_key(text: str | None, table: str) -> str | None:
    """What of a mapping decides a table's rows (site, format, [read], [tables.TABLE]), as
    canonical JSON: comments, spacing, key order and other tables' sections do not count."""
    if text is None:
        return None
    raw = tomllib.loads(text)
    used = {key: raw.get(key) for key in ("site_id", "format", "read")}
    used["table"] = raw.get("tables", {}).get(table)
    return json.dumps(used, sort_keys=True, default=str)


def _refuse_same_loads(con: duckdb.DuckDBPyConnection, sources: list[SourceFile], *,
                       table: str, spec: Mapping | None, skip_loaded: bool = False
                       ) -> dict[Path, list[tuple[int, str]]]:
    """Raise AlreadyLoadedError naming every file that is the same load as a batch before
    (loaded, superseded or rolled back; not rejected), unless ``skip_loaded``, or that has
    the content of another file of this call; return the files that are the same load as
    batches before, with those (batch, status), in batch order.

    A file's hash is waited for only if a batch or another file has its size."""
    key = _mapping_key(spec.text if spec is not None else None, table)
    sizes = [s.size_bytes for s in sources]
    how = "with the same mapping" if spec is not None else "without a mapping"
    seen: dict[str, Path] = {}
    problems: list[str] = []
    loaded: dict[Path, list[tuple[int, str]]] = {}
    for src in sources:
        earlier = con.execute(
            "select batch_id, status, sha256, mapping from uploads where table_name = ? and "
            "size_bytes = ? and status <> 'rejected' order by batch_id",
            [table, src.size_bytes]).fetchall()
        if not earlier and sizes.count(src.size_bytes) == 1:
            continue
        same = [(b, st) for b, st, sha, text in earlier
                if sha == src.sha256 and _mapping_key(text, table) == key]
        if same:
            loaded[src.path] = same
            if not skip_loaded:
                problems.append(f"{src.path} is already loaded into {table} {how} as "
                                + _batches_phrase(same))
        elif src.sha256 in seen:
            problems.append(f"{src.path} has the same content as {seen[src.sha256]}")
        seen.setdefault(src.sha256, src.path)
    if problems:
        skip = ("--skip-loaded (Python: skip_loaded=True) to load only the files not loaded "
                "before, " if loaded and not skip_loaded else "")
        raise AlreadyLoadedError(
            "; ".join(problems) + f"; nothing was loaded. Give {skip}--force (Python: force=True) "
            "to load the same file again as a new batch, or --replaces BATCH with a corrected file")
    return loaded


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers
        return f"uid {os.getuid()}"


def _load_one(study: Study, path: Path, src: SourceFile, *, table: str, spec: Mapping | None,
              site_id: str | None, replaces: int | None, loaded_by: str,
              validate: bool, progress: Callable[[str], None]) -> LoadResult:
    from cohort.validate import ValidationConfig, validate_relation

    con = study.con
    batch = _next_batch_id(con)
    # working tables are temporary (in memory, spilling to disk; never in the study file);
    # only the batch to validate is visible to Great Expectations, in the staging schema
    raw, typed, errors = f"_raw_{batch}", f"_typed_{batch}", f"_errors_{batch}"
    staged = f"staging.batch_{batch}"
    read = spec.read if spec else ReadOptions()
    try:
        progress(f"{path.name}: reading")
        mapped = spec.for_table(table) if spec else None
        sheet = mapped.sheet if mapped else None
        # a workbook's batch says which sheet it holds (the first visible one unless named)
        read_from = f"sheet {sheet_to_read(src.path, sheet=sheet)!r}" if src.format == "excel" else ""
        fast_csv = src.format == "csv"
        # a delimited text file is read whole only once, typed (below); this is a sample
        zone = study.settings.timezone
        # an Excel error cell in a column the mapping drops quarantines nothing
        header, rows_read = stage_raw(con, src, read=read, sheet=sheet, target=raw,
                                      limit=_SAMPLE_ROWS if fast_csv else None, timezone=zone,
                                      columns=mapped.sources if mapped else None)
        if rows_read == 0 and (not fast_csv or (src.lines or 0) <= 1):
            raise InputFileError(f"{path}: has a header but no data rows; nothing to load")
        tm = _with_struct_drops((spec or identity_mapping(table, header, site_id=site_id))
                                .for_table(table), header)
        check_header(tm, header, file=str(path), mapping_path=spec.path if spec else None)
        _refuse_unmappable(tm, src, file=str(path))
        labels = staged_names(header)
        pseudonymised = _identifier_functions(con, tm, study_folder=study.path.parent)
        if site_id is not None and spec is not None and spec.site_id is None:
            tm = _with_site(tm, site_id)
        progress(f"{path.name}: reading and typing" if fast_csv else f"{path.name}: typing")
        by_position = staged_map(tm, header)  # the mapping onto the staged columns
        good, rows_read, lines_only = _coerce_file(
            con, src, by_position, read=read, sheet=sheet, rows_read=rows_read,
            raw=raw, typed=typed, errors=errors, labels=labels, timezone=zone)
        if rows_read == 0:
            raise InputFileError(f"{path}: has a header but no data rows; nothing to load")
        # every value of each mapped column is screened, not the sample only
        _refuse_identifiers(con, by_position, good, raw=raw, errors=errors, file=str(path),
                            labels=labels)
        site_id = _rows_site(con, good, site_id, file=path, table=table)
        screened = screen_free_text(con, tm, good, work=f"_masked_{batch}", errors=errors)
        good = screened.rows
        if lines_only and screened.refused:  # the text of the rows refused, for quarantine
            stage_csv_lines(con, src, csv_dialect(src, read), screened.refused, raw, append=True)
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
        # the raw record of a quarantined row: the mapped source columns only (never a
        # dropped one), and not those pseudonymised
        kept = [(h, staged_name(i)) for i, h in enumerate(header)
                if h in tm.sources and h not in pseudonymised]
        return _promote(con, src, table=table, batch=batch, site_id=site_id or "", spec=spec,
                        header=kept, rows_read=rows_read, raw=raw, rows=rows, errors=errors,
                        report=report, replaces=replaces, loaded_by=loaded_by,
                        fatal_fraction=config.fatal_error_fraction,
                        screened=screened.warnings, read_from=read_from)
    finally:
        drop_coerced(con, typed)
        for t in (staged, errors, raw, f"_masked_{batch}"):
            drop_staged(con, t)


def _rows_site(con: duckdb.DuckDBPyConnection, rows: Coerced, site_id: str | None, *,
               file: Path, table: str) -> str | None:
    """The site of a batch whose rows carry ``site_id``: the one declared (every row must
    hold it), else the one site the rows hold; a table without the column keeps ``site_id``."""
    if not any(c.name == "site_id" for c in table_columns(table)):
        return site_id
    sites = con.execute(
        f"select site_id, count(*), min(source_line) from ({rows.sql}) group by site_id "
        "order by 3", rows.params).fetchall()
    if site_id is None and len(sites) <= 1:
        return sites[0][0] if sites else None
    other = [(s, n, line) for s, n, line in sites if s != site_id]
    if site_id is None:
        raise InputFileError(
            f"{file}: column site_id holds {len(sites)} sites ("
            + ", ".join(f"{s!r} from line {line}" for s, _, line in sites[:5])
            + "); a batch holds one site's rows: split the file by site and load each part "
              "with its --site or mapping")
    if other:
        value, n, line = other[0]
        raise InputFileError(
            f"{file}: line {line}, column site_id: {value!r} is not the site of this load "
            f"({site_id!r}, from --site or the mapping); {sum(o[1] for o in other)} rows hold "
            "another site. A batch holds one site's rows: fix the file, or load it as that "
            "site's delivery")
    return site_id


def _coerce_file(con: duckdb.DuckDBPyConnection, src: SourceFile, tm: TableMap, *,
                 read: ReadOptions, sheet: str | None, rows_read: int, raw: str, typed: str,
                 errors: str, labels: dict[str, str], timezone: str) -> tuple[Coerced, int, bool]:
    """The typed rows of a file, the records read, and whether ``raw`` holds the text of
    the problem lines only (the fast path for delimited text) rather than of every record.

    A delimited text file has only a sample staged (``raw``) when this is called; other
    formats are staged whole (``rows_read`` records)."""
    if src.format == "csv":
        drop_staged(con, raw)  # the sample
        fast = coerce_csv(con, tm, src, read=read, raw=raw, typed=typed, errors=errors,
                          labels=labels)
        if fast is not None:
            return fast[0], fast[1], True
        # records that are not one per line (quoted newlines, blank lines): text first
        drop_coerced(con, typed)
        _, rows_read = stage_raw(con, src, read=read, sheet=sheet, target=raw, timezone=timezone)
    good = coerce(con, tm, src, raw=raw, typed=typed, errors=errors,
                  decimal_comma=read.decimal_comma, labels=labels)
    return good, rows_read, False


def _identifier_functions(con: duckdb.DuckDBPyConnection, tm: TableMap, *,
                          study_folder: Path) -> set[str]:
    """Define the masking (and pseudonymising) SQL functions the load uses; return the
    pseudonymised source columns (never written as they are, not even in quarantine)."""
    from cohort.identifiers import register_functions, study_secret

    pseudonymised = {c.source for c in tm.columns if c.pseudonymise and c.source is not None}
    register_functions(con, secret=study_secret(study_folder=study_folder)
                       if pseudonymised else None)
    return pseudonymised


def _refuse_identifiers(con: duckdb.DuckDBPyConnection, tm: TableMap, rows: Coerced, *,
                        raw: str, errors: str, file: str, labels: dict[str, str]) -> None:
    """Refuse a mapped column that looks like a direct identifier (unless pseudonymised),
    judged by its name in the file (``labels``: staged column -> name) and on every value:
    the typed ``rows`` to be stored, and the text (``raw``) of the records that failed
    (``errors``), which quarantine would keep."""
    from cohort.identifiers import CODE_COLUMNS, judge_columns, typed_column_counts

    kinds = {c.name: c for c in table_columns(tm.table)}
    screened: dict[str, Column] = {}
    for c in tm.columns:
        if c.source is not None and not c.pseudonymise and c.source not in screened:
            screened[c.source] = kinds[c.canonical]
    failing = (f"select * from {raw} where source_line in "
               f"(select source_line from {errors})")
    counts = typed_column_counts(con, rows=rows, failing=failing, columns=screened)
    named = {labels[k]: v for k, v in counts.items()}
    codes = {labels[c.source] for c in tm.columns
             if c.canonical in CODE_COLUMNS and c.source is not None}
    for s in judge_columns([labels[c] for c in screened], named, codes=codes):
        canonical = next(c.canonical for c in tm.columns if labels.get(c.source) == s.column)
        raise MappingError(
            f"{file}: column {s.column!r} (mapped to {tm.table}.{canonical}) looks like "
            f"{s.kind} ({s.evidence}); direct identifiers are not loaded. Drop it under "
            f"[tables.{tm.table}.drop], or map it with pseudonymise = true to store a keyed "
            "hash instead")


def _with_struct_drops(tm: TableMap, header: list[str]) -> TableMap:
    """``tm`` with a dropped struct (``vitals``) standing for its fields (``vitals.weight``:
    a Parquet struct's fields are columns of their own, named by dotted path)."""
    more = [h for d in tm.drop if d not in header for h in header if h.startswith(f"{d}.")]
    return replace(tm, drop=tm.drop + tuple(more)) if more else tm


def _refuse_unmappable(tm: TableMap, src: SourceFile, *, file: str) -> None:
    """Refuse a mapped column that holds many values to a record (a Parquet list)."""
    nested = unmappable_columns(src)
    for column in tm.columns:
        if column.source in nested:
            raise MappingError(
                f"{file}: column {column.source!r} (mapped to {tm.table}.{column.canonical}) "
                f"holds {nested[column.source]}, many values to a record, not one; list it under "
                f"[tables.{tm.table}.drop] columns, or ask the site for one value per column "
                "(a struct's fields are mapped by dotted name, e.g. vitals.weight)")


def _with_site(tm: TableMap, site_id: str) -> TableMap:
    if any(c.canonical == "site_id" for c in tm.columns) or not any(
        c.name == "site_id" for c in table_columns(tm.table)
    ):
        return tm
    return TableMap(tm.table, tm.columns + (ColumnMap("site_id", constant=site_id),),
                    tm.file, tm.sheet, tm.drop)


def _promote(con: duckdb.DuckDBPyConnection, src: SourceFile, *, table: str, batch: int,
             site_id: str, spec: Mapping | None, header: list[tuple[str, str]], rows_read: int,
             raw: str,
             rows: Coerced, errors: str, report: ValidationReport | None, replaces: int | None,
             loaded_by: str, fatal_fraction: float,
             screened: pl.DataFrame | None = None, read_from: str = "") -> LoadResult:
    from cohort.identifiers import EMAIL_PATTERN, masked

    findings = report.findings if report is not None else _NO_FINDINGS
    if screened is not None and screened.height:  # the warnings of free text masked
        findings = pl.concat([findings, screened], how="diagonal_relaxed")
    val_errors = findings.filter(pl.col("severity").is_in(["error", "fatal"]))
    warnings = findings.filter(pl.col("severity") == "warning")
    con.register("_val_errors", val_errors.select(
        pl.col("source_line").cast(pl.Int64), "column_name",
        pl.col("value").cast(pl.String), "rule", "message",
        pl.col("severity").replace({"fatal": "error"})))
    con.register("_warnings", warnings)
    # every value quoted is masked (cohort.identifiers), whatever its column; ``header``:
    # (name in the file, staged column) of the columns the raw record keeps
    raw_json = "to_json({" + ", ".join(
        f"{sql_literal(h)}: {masked(f'r.{column}')}" for h, column in header) + "})"
    no_email = f"regexp_replace(e.message, {sql_literal(EMAIL_PATTERN)}, '[e-mail removed]', 'g')"
    try:
        bad_lines = int(scalar(
            con, f"select count(*) from (select source_line from {errors} union "
                 "select source_line from _val_errors)"))
        fatal = list(report.fatal_reasons) if report is not None else []
        if not fatal and rows_read and bad_lines / rows_read > fatal_fraction:
            fatal.append(f"{bad_lines} of {rows_read} records ({bad_lines / rows_read:.1%}) fail "
                         f"error rules, more than the {fatal_fraction * 100:g}% allowed "
                         "(fatal_error_fraction under [validation] in cohort.toml)")
        status = "rejected" if fatal else "loaded"
        quarantined = rows_read if fatal else bad_lines
        loaded = rows_read - quarantined
        message = "; ".join(fatal) + (  # every record accounted for
            f": batch rejected, none of its {rows_read} records loaded ({bad_lines} in "
            f"quarantine with their reasons, {rows_read - bad_lines} without a finding held back "
            "with the batch)") if fatal else (
            f"{loaded} rows loaded, {quarantined} quarantined" if quarantined else f"{loaded} rows loaded")
        if replaces is not None:
            message += (f"; batch {replaces} stays in force" if fatal
                        else f"; replaces batch {replaces} (now superseded)")
        if read_from:  # the part of the file read (a workbook's sheet)
            message = f"{read_from}: {message}"
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
            if replaces is not None and not fatal:  # a rejected correction replaces nothing
                con.execute("update uploads set status = 'superseded', ended_at = current_timestamp "
                            "where batch_id = ? and status = 'loaded'", [replaces])
            con.execute(  # after the rows: the file's hash may still be being computed
                "insert into uploads (batch_id, table_name, site_id, file_name, file_path, sha256, "
                "size_bytes, mapping, rows_read, rows_loaded, rows_quarantined, rows_warned, "
                "loaded_by, status, replaces, message) values "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [batch, table, site_id, src.path.name, str(src.path), src.sha256, src.size_bytes,
                 spec.text if spec else None, rows_read, loaded, quarantined, warnings.height,
                 loaded_by, status, replaces, message])
            con.execute(
                f"insert into quarantine select ?, ?, ?, e.source_line, e.column_name, "
                f"{masked('e.value')}, e.rule, e.severity, {no_email}, {raw_json} from ("
                f"select source_line, column_name, value, rule, 'error' as severity, message "
                f"from {errors} union all select source_line, column_name, value, rule, "
                f"severity, message from _val_errors) e join {raw} r using (source_line)",
                [batch, table, str(src.path)])
            if warnings.height:
                con.execute(
                    "insert into validation_findings select ?, ?, source_line, participant_id, "
                    f"column_name, {masked('value::varchar')}, rule, severity, message "
                    "from _warnings",
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


@dataclass(frozen=True)
class RollbackResult:
    """What a rollback did: the batch out of force, the one back in force (the batch a
    rolled-back correction replaced), and rows in force left without their participants."""

    batch_id: int
    table: str
    restored: int | None = None
    orphans: dict[str, int] = field(default_factory=dict)

    @property
    def orphans_text(self) -> str:
        """The rows left without their participants, per table ('' if none)."""
        return ("rows in force left without their participants: " + _orphan_counts(self.orphans)
                if self.orphans else "")

    @property
    def message(self) -> str:
        text = f"batch {self.batch_id} ({self.table}) rolled back"
        if self.restored is not None:
            text += f"; batch {self.restored}, which it replaced, is in force again"
        return f"{text}; {self.orphans_text}" if self.orphans else text


def _orphan_counts(orphans: dict[str, int]) -> str:
    return ", ".join(f"{table} {n}" for table, n in orphans.items())


def _orphans_of(con: duckdb.DuckDBPyConnection, batch: int, restored: int | None) -> dict[str, int]:
    """Rows in force of the other tables whose participant is in ``batch`` and in no other
    participants batch that stays in force (or comes back: ``restored``)."""
    from cohort.tables import TABLES

    counts = {}
    for name in TABLES:
        if name == "participants":
            continue
        n = int(scalar(con, f"""
            select count(*) from main.{quote_ident(name)}
            where participant_id in (
                select participant_id from store.participants where batch_id = $batch)
              and participant_id not in (
                select p.participant_id from store.participants p join uploads u using (batch_id)
                where (u.status = 'loaded' and u.batch_id <> $batch) or u.batch_id = $restored)""",
                       {"batch": batch, "restored": restored}))
        if n:
            counts[name] = n
    return counts


def rollback_batch(study: Study, batch: int, *, force: bool = False) -> RollbackResult:
    """Take a batch out of force; its rows stay in the history (status ``rolled_back``).

    The batch a rolled-back correction replaced is put back in force (status ``loaded``,
    ``ended_at`` cleared). A rollback of participants that would leave rows in force of other
    tables without their participants is refused, naming the counts per table, unless
    ``force``: then it goes ahead and the result names them.

    Raises
    ------
    UserError
        The batch does not exist or is not in force.
    OrphanRowsError
        Rows of other tables would lose their participants (and ``force`` is not given).
    """
    con = study.con
    batch_table(con, batch)
    found = con.execute("select status, table_name, replaces from uploads where batch_id = ?",
                        [batch]).fetchall()
    status = found[0][0]
    if status != "loaded":
        raise UserError(f"batch {batch} is not in force (status: {status}); "
                        "see `cohort uploads`")
    _, table, replaces = found[0]
    restored = replaces if replaces is not None and scalar(
        con, "select status from uploads where batch_id = ?", [replaces]) == "superseded" else None
    orphans = _orphans_of(con, batch, restored) if table == "participants" else {}
    if orphans and not force:
        raise OrphanRowsError(
            f"rollback {batch}: rows in force of other tables would be left without their "
            f"participants ({_orphan_counts(orphans)}): no other batch in force holds them; "
            "nothing was rolled back. Roll back those batches first, or give --force "
            "(Python: force=True) to roll back anyway")
    con.execute("begin transaction")
    try:
        con.execute("update uploads set status = 'rolled_back', ended_at = current_timestamp "
                    "where batch_id = ?", [batch])
        if restored is not None:
            con.execute("update uploads set status = 'loaded', ended_at = null "
                        "where batch_id = ?", [restored])
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return RollbackResult(batch, table, restored, orphans)


def validate_loaded(study: Study, *, table: str | None = None,
                    batch: int | None = None) -> dict[str, ValidationReport]:
    """Validate rows already loaded: one batch, one table, or every table (rows in force).

    A table with no rows in force (nothing loaded into it yet) is not validated and has no
    report: the result holds the tables that have rows (a batch is validated whatever it
    holds).
    """
    from cohort.tables import TABLES
    from cohort.validate import validate_relation

    where = "u.status = 'loaded'"
    params: list[Any] = []
    if batch is not None:
        held = batch_table(study.con, batch)
        if table is not None and table != held:
            raise UserError(f"batch {batch} holds {held}, not {table}")
        if scalar(study.con, "select status from uploads where batch_id = ?",
                  [batch]) == "rejected":
            raise UserError(f"batch {batch} was rejected when loaded: none of its rows were "
                            f"stored, so there is nothing to validate; `cohort quarantine "
                            f"--batch {batch}` lists why")
        table, where, params = held, "u.batch_id = ?", [batch]
    names = [table] if table else list(TABLES)
    reports = {}
    for name in names:
        table_columns(name)
        view = f"staging.inforce_{name}"
        study.con.execute(
            f"create or replace table {view} as select t.* from store.{name} t "
            f"join uploads u using (batch_id) where {where}", params)
        if batch is None and not scalar(study.con, f"select count(*) from {view}"):
            study.con.execute(f"drop table {view}")
            continue
        try:
            reports[name] = validate_relation(study.con, relation=view, table=name,
                                              **study.validation_options())
        finally:
            study.con.execute(f"drop table if exists {view}")
    return reports
