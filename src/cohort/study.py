"""The study database: one DuckDB file per study, created or opened here.

``cohort.open(path)`` opens an existing study file after checking its schema version;
``cohort.open(path, create=True)`` creates the canonical schema in a new file (and opens
an existing study as it is). Nothing is created unless asked: a mistyped path is a
:class:`StudyNotFoundError` naming the folder's studies. ``Study`` is the facade
that ties the database to ingest, validation, derivations and analyses.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from cohort.batches import batch_table
from cohort.db import frame, quote_ident, scalar
from cohort.errors import (
    ConfigError,
    DatabaseLockedError,
    SchemaError,
    StudyNotFoundError,
    UserError,
)
from cohort.resources import resource_dir
from cohort.settings import DEFAULT_MEMORY_LIMIT, INPUT_ROOT_VARIABLE, Settings, load_settings

if TYPE_CHECKING:
    from cohort.ingest import LoadResult, RollbackResult
    from cohort.validate import ValidationReport

__all__ = ["SCHEMA_VERSION", "DEFAULT_MEMORY_LIMIT", "Study", "open_study"]

#: Version of the canonical schema written by this release of cohort.
SCHEMA_VERSION = 1
_KNOWN_VERSIONS = {1}


def _connect(path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            pid = re.search(r"PID (\d+)", text)
            holder = f" (pid {pid.group(1)})" if pid else ""
            raise DatabaseLockedError(
                f"{path}: database is locked by another load{holder}; "
                "wait for it to finish or stop that process, then retry"
            ) from None
        raise SchemaError(f"{path}: cannot open as a DuckDB study database: {text}") from None
    except duckdb.Error as exc:
        raise SchemaError(
            f"{path}: not a cohort study database ({exc}); "
            "give the .duckdb file of an existing study, or a new path with create=True "
            "(cohort load --create) to create one"
        ) from None


def _apply_schema(con: duckdb.DuckDBPyConnection) -> None:
    files = sorted(resource_dir("sql").joinpath("schema").glob("*.sql"))
    con.execute("begin transaction")
    try:
        for file in files:
            con.execute(file.read_text(encoding="utf-8"))
        con.execute(
            "insert into schema_version (version, description) values (?, ?)",
            [SCHEMA_VERSION, "canonical cohort schema"],
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def _schema_version(con: duckdb.DuckDBPyConnection, path: Path) -> int | None:
    tables = {r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema = 'main'"
    ).fetchall()}
    if not tables:
        return None
    if "schema_version" not in tables:
        raise SchemaError(
            f"{path}: this DuckDB file has tables ({', '.join(sorted(tables)[:5])}) but no cohort "
            "schema_version table; it is not a cohort study. Use a new file name to create a study."
        )
    return scalar(con, "select max(version) from schema_version")


def _known_table(name: str) -> None:
    from cohort.tables import table_columns

    try:
        table_columns(name)
    except KeyError as exc:
        raise UserError(str(exc.args[0])) from None


def _configure(con: duckdb.DuckDBPyConnection, path: Path, settings: Settings) -> None:
    """Bounded memory (spilling to a folder beside the study), no progress printing.

    ``[database] memory_limit`` and ``threads`` of the study's checked ``settings``
    (cohort.toml) override the defaults (DEFAULT_MEMORY_LIMIT; DuckDB's own thread count).
    """
    try:
        con.execute("set memory_limit = ?", [settings.memory_limit])
        con.execute("set temp_directory = ?", [str(path.parent / f".{path.stem}.tmp")])
        if settings.threads is not None:
            con.execute("set threads = ?", [settings.threads])
    except duckdb.Error as exc:
        raise ConfigError(f"{settings.file}: [database] settings not accepted by DuckDB: "
                          f"{str(exc).splitlines()[0]}") from None
    con.execute("set enable_progress_bar = false")


def _clear_staging(con: duckdb.DuckDBPyConnection) -> None:
    """Drop what a load killed mid-way left in the staging schema (never canonical data)."""
    con.execute("drop schema if exists staging cascade")
    con.execute("create schema staging")


class Study:
    """A study database: canonical tables, uploads, quarantine and analyses.

    Use :func:`cohort.open` to open one (``create=True`` to create it). A study is a context manager; closing
    it releases the file lock.

    Examples
    --------
    >>> import cohort, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "study.duckdb"
    >>> with cohort.open(path, create=True) as study:
    ...     study.schema_version
    1
    """

    def __init__(self, path: Path, con: duckdb.DuckDBPyConnection, *, read_only: bool,
                 settings: Settings | None = None) -> None:
        self.path = path
        self.con = con
        self.read_only = read_only
        self._settings = settings

    @property
    def settings(self) -> Settings:
        """The study's checked settings (cohort.toml beside it): read once, and again only
        if the file changed since (``[database]`` settings apply when the study is opened)."""
        if self._settings is None or self._settings.changed:
            self._settings = load_settings(self.path.parent)
        return self._settings

    @property
    def schema_version(self) -> int:
        return int(scalar(self.con, "select max(version) from schema_version"))

    # -- study settings beside the database -----------------------------------
    @property
    def settings_file(self) -> Path:
        """``cohort.toml`` beside the study file: the study's settings (:mod:`cohort.settings`)."""
        return self.settings.file

    @property
    def suites_dir(self) -> Path:
        """``expectations/`` beside the study file: the study's own validation suites."""
        return self.path.parent / "expectations"

    @property
    def input_root(self) -> Path | None:
        """The folder loads must come from: the administrator's COHORT_INPUT_ROOT, narrowed
        by ``[load] input_root`` in cohort.toml (relative to the study folder; it must lie
        inside COHORT_INPUT_ROOT when that is set); None: anywhere."""
        return self.settings.input_root_in(os.environ.get(INPUT_ROOT_VARIABLE))

    def validation_options(self) -> dict[str, Any]:
        """Config and extra suite folders for :func:`cohort.validate.validate_relation`."""
        dirs = [self.suites_dir] if self.suites_dir.is_dir() else None
        return {"config": self.settings.validation, "suites_dirs": dirs}

    # -- context management -------------------------------------------------
    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Study:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Study({str(self.path)!r})"

    # -- queries ---------------------------------------------------------------
    def query(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
        """Run a read-only SQL query on the study and return a polars DataFrame."""
        return frame(self.con, sql, params)

    def table(self, name: str) -> pl.DataFrame:
        """Return a canonical table (rows of batches in force) as a polars DataFrame."""
        _known_table(name)
        return frame(self.con, f"select * from {quote_ident(name)}")

    def counts(self) -> dict[str, int]:
        """Rows in force per canonical table."""
        from cohort.tables import TABLES

        return {
            name: int(scalar(self.con, f"select count(*) from {quote_ident(name)}"))
            for name in TABLES
        }

    def as_of(self, table: str, batch: int) -> pl.DataFrame:
        """Rows of ``table`` as they were in force right after ``batch`` was loaded.

        A batch counts from its load until it was rolled back, and is out of force while a
        correction of it (``replaces``) that was not rejected counts; a rolled-back correction
        gives the batch it replaced back. So any past state of the study can be queried again.
        """
        _known_table(table)
        batch_table(self.con, batch)
        moment = scalar(self.con, "select loaded_at from uploads where batch_id = ?", [batch])
        return frame(self.con, f"""
            with batches as (
                select * from uploads where batch_id <= $batch and status <> 'rejected'),
            counting as (  -- not rolled back by then
                select * from batches
                where not (status = 'rolled_back' and ended_at <= $moment)),
            in_force as (
                select batch_id from counting
                where batch_id not in (
                    select replaces from counting where replaces is not null))
            select t.* from store.{quote_ident(table)} t join in_force using (batch_id)
            order by t.batch_id, t.source_line""", {"batch": batch, "moment": moment})

    def uploads(self) -> pl.DataFrame:
        """All upload batches with their provenance and counts."""
        return frame(self.con, "select * exclude (mapping) from uploads order by batch_id")

    def quarantine(self, *, batch: int | None = None) -> pl.DataFrame:
        """Rejected rows, with file, line, column, value, rule and message.

        Raises :class:`cohort.errors.NoSuchBatchError` if ``batch`` does not exist.
        """
        if batch is None:
            return frame(self.con, "select * from quarantine order by batch_id, source_line")
        batch_table(self.con, batch)
        return frame(
            self.con, "select * from quarantine where batch_id = ? order by source_line", [batch]
        )

    # -- the pipeline ----------------------------------------------------------
    def load(
        self,
        paths: str | os.PathLike[str] | list[str | os.PathLike[str]],
        *,
        site: str | None = None,
        table: str,
        mapping: str | os.PathLike[str] | None = None,
        replaces: int | None = None,
        loaded_by: str | None = None,
        validate: bool = True,
        force: bool = False,
        skip_loaded: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> list[LoadResult]:
        """Load site files into ``table``: stage, coerce, validate, promote.

        The same load again (same file, table and mapping as a batch before) raises
        :class:`cohort.errors.AlreadyLoadedError` unless ``force`` (load it again) or
        ``skip_loaded`` (its result has status ``skipped`` and the earlier batch's id; the
        other files load). See :func:`cohort.ingest.load_files` for the details.
        """
        from cohort.ingest import load_files

        return load_files(
            self, paths, site=site, table=table, mapping=mapping, replaces=replaces,
            loaded_by=loaded_by, validate=validate, force=force, skip_loaded=skip_loaded,
            progress=progress,
        )

    def rollback(self, batch: int, *, force: bool = False) -> RollbackResult:
        """Take a batch out of force (its rows stay in the history); a rolled-back correction
        puts the batch it replaced back in force.

        Raises :class:`cohort.errors.OrphanRowsError` if rows in force of other tables would
        lose their participants, unless ``force``. See :func:`cohort.ingest.rollback_batch`.
        """
        from cohort.ingest import rollback_batch

        return rollback_batch(self, batch, force=force)

    def validate(self, *, table: str | None = None,
                 batch: int | None = None) -> dict[str, ValidationReport]:
        """Validate loaded rows with the study suites: one batch, one table, or all in force;
        a table with no rows yet has no report (an empty study gives ``{}``)."""
        from cohort.ingest import validate_loaded

        return validate_loaded(self, table=table, batch=batch)

    def derive(self, name: str, **params: Any) -> pl.DataFrame:
        """Run the derivation ``sql/derive/<name>.sql`` with bound parameters, checked first
        (:class:`cohort.errors.ParameterError`); no rows or no events warns
        (:class:`cohort.errors.EmptyResultWarning`). See :func:`cohort.derive.derive`."""
        from cohort.derive import derive

        return derive(self.con, name, **params)


_CREATE_HINT = "create a new study with cohort.open(path, create=True) or `cohort load --create`"


def _not_found(path: Path) -> StudyNotFoundError:
    """No study at ``path``: name the studies of its folder, the closest name first."""
    folder = path.parent
    if not folder.is_dir():
        return StudyNotFoundError(f"{path}: no such study: the folder {folder} does not exist; "
                                  f"check the path, or {_CREATE_HINT}")
    studies = sorted(p.name for p in folder.glob("*.duckdb") if p.is_file())
    if not studies:
        return StudyNotFoundError(f"{path}: no such study, and no study (*.duckdb) in {folder}; "
                                  f"check the path, or {_CREATE_HINT}")
    studies.sort(key=lambda n: -difflib.SequenceMatcher(None, path.name, n).ratio())
    return StudyNotFoundError(f"{path}: no such study; studies in {folder} (closest first): "
                              f"{', '.join(studies)}; open one of them, or {_CREATE_HINT}")


def open_study(
    path: str | os.PathLike[str], *, create: bool = False, read_only: bool = False
) -> Study:
    """Open the study database at ``path``; with ``create``, create it first if it is new.

    Parameters
    ----------
    path
        The study's DuckDB file.
    create
        Create the study (the file, its folder and the canonical schema) when there is
        none at ``path``. An existing study is opened as it is, never emptied, so a script
        may always pass ``create=True``. Without it a missing file is an error: a
        mistyped path never makes a new, empty study.
    read_only
        Open without write access (several readers may share the file).

    Raises
    ------
    StudyNotFoundError
        No file at ``path`` and not ``create``: the message lists the studies
        (``*.duckdb``) of the folder, the closest name first.
    SchemaError
        The file is not a cohort study, or was written by a newer cohort.
    DatabaseLockedError
        Another process is writing to the study.

    Examples
    --------
    >>> import cohort, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> cohort.open(folder / "study.duckdb", create=True).close()
    >>> cohort.open(folder / "studdy.duckdb")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cohort.errors.StudyNotFoundError: ...studdy.duckdb: no such study; studies in ...: study.duckdb; ...
    """
    path = Path(path)
    exists = path.exists()
    if not exists and not create:
        raise _not_found(path)
    if not exists and read_only:
        raise UserError(f"{path}: a new study cannot be created read-only; leave out read_only")
    if not exists:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = _connect(path, read_only=read_only and exists)
    try:
        version = _schema_version(con, path)
        if version is None:
            if read_only or not create:
                raise SchemaError(f"{path}: an empty DuckDB database, not a study yet; "
                                  "open it with create=True (cohort load --create) to make "
                                  "it a study")
            _apply_schema(con)
        elif version not in _KNOWN_VERSIONS:
            raise SchemaError(
                f"{path}: schema version {version} is not known to this cohort "
                f"(knows {sorted(_KNOWN_VERSIONS)}); upgrade cohort to open it"
            )
        settings = load_settings(path.parent)
        _configure(con, path, settings)
        if not read_only:
            _clear_staging(con)
    except BaseException:
        con.close()
        raise
    return Study(path, con, read_only=read_only, settings=settings)
