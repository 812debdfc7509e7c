"""The `cohort` command. User errors print one line and exit non-zero, never a traceback."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cohort.errors import EXIT_FATAL, EXIT_OK, EXIT_ROWS_QUARANTINED, UserError

app = typer.Typer(
    name="cohort",
    help="Longitudinal cohort studies: load site files, validate, derive, analyse, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
mapping_app = typer.Typer(help="Mapping specs: how a site's files map to canonical tables.",
                          no_args_is_help=True)
app.add_typer(mapping_app, name="mapping")

# piped output (files, CI logs) gets wide tables instead of folded cells
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)
F = TypeVar("F", bound=Callable[..., Any])

DbOption = Annotated[Path, typer.Option("--db", help="The study database file.",
                                        envvar="COHORT_DB")]


LimitOption = Annotated[int, typer.Option(
    "--limit", min=0, help="Rows to show (0: all); the listing says how many it left out.")]
LIMIT = 50


def say(message: object, *, label: str | None = None, style: str | None = None,
        err: bool = False) -> None:
    """Print ``message`` verbatim: its text (file names, values, fix instructions such as
    ``[read]``) is never read as rich markup nor highlighted; only ``label`` (e.g.
    ``"error:"``) is styled."""
    text = Text()
    if label:
        text.append(label, style=style or "bold")
        text.append(" ")
    text.append(str(message))
    (err_console if err else console).print(text, highlight=False, soft_wrap=True)


USAGE_EXIT = 3  # a mistyped option or argument is a user error, not click's 2 ("batch rejected")
_command_started = threading.Event()


def user_errors(func: F) -> F:
    """Turn a UserError into one red line on stderr and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _command_started.set()
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            say(exc, label="error:", style="bold red", err=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _listing(df: Any, *, limit: int, title: str | None = None, export_hint: bool = False) -> None:
    """Print ``df`` as a table of at most ``limit`` rows (0: all), cells verbatim, and say how
    many rows were left out and how to see them."""
    shown = df if limit == 0 else df.head(limit)
    table = Table(title=None if title is None else Text(title), show_lines=False)
    for c in df.columns:
        table.add_column(Text(str(c)), overflow="fold")
    for row in shown.iter_rows():
        table.add_row(*(Text("" if v is None else str(v)) for v in row))
    console.print(table)
    hidden = df.height - shown.height
    if hidden:
        how = "use --limit N (0: all)" + (" or --export FILE" if export_hint else "")
        say(f"… {hidden:,} more row{'s' if hidden != 1 else ''} not shown "
            f"({df.height:,} in all); {how}")


@app.command()
@user_errors
def demo(
    participants: Annotated[int, typer.Option(help="Participants to simulate.")] = 2000,
    out: Annotated[Path, typer.Option(help="Folder for the study, site files and report.")] = Path("out/demo"),
    seed: Annotated[int, typer.Option(help="Random seed of the simulation.")] = 2024,
    years: Annotated[float, typer.Option(help="Years of follow-up.")] = 5.0,
    no_disclosure_control: Annotated[bool, typer.Option(
        "--no-disclosure-control", help="Show small counts as they are in the report, JSON "
        "and CSV, and stamp each of them NOT FOR RELEASE.")] = False,
) -> None:
    """Simulate a cohort, load its site files, validate, derive, fit and report.

    Exit codes: 0 done; 3 a user error (e.g. the output folder cannot be written).
    """
    from cohort.export import output_folder
    from cohort.pipeline import run_demo
    from cohort.report import Disclosure

    output_folder(out, option="--out")
    result = run_demo(n_participants=participants, out=out, seed=seed, years=years, console=console,
                      disclosure=Disclosure(enabled=not no_disclosure_control))
    say(result.summary_text())


@app.command()
@user_errors
def load(
    files: Annotated[list[Path], typer.Argument(help="Files, folders or globs to load (a path that exists is taken literally; only one that does not is expanded as a glob).")],
    table: Annotated[str | None, typer.Option(
        "--table", help="Canonical table the files hold. Without it, a site folder is loaded "
        "table by table in dependency order, as its mapping's file patterns say.")] = None,
    db: DbOption = Path("study.duckdb"),
    site: Annotated[str | None, typer.Option(
        help="Site id (default: the mapping's; the two must agree).")] = None,
    mapping: Annotated[Path | None, typer.Option(help="The site's mapping spec (TOML).")] = None,
    replaces: Annotated[int | None, typer.Option(
        help="Batch in force (same table and site) this delivery corrects; a rejected "
        "correction replaces nothing.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Load a file again as a new batch although the same file was loaded "
        "into the same table with the same mapping before.")] = False,
    skip_loaded: Annotated[bool, typer.Option(
        "--skip-loaded", help="Skip each file loaded before into the same table with the same "
        "mapping (one line each, naming its batch) and load the others: the re-run of a site "
        "folder with new files.")] = False,
    create: Annotated[bool, typer.Option(
        "--create", help="Create the study database if there is none at --db yet (the first "
        "load); an existing study is loaded into as it is. Without it a missing --db is an "
        "error naming the folder's studies.")] = False,
) -> None:
    """Load site files into the study database (one batch per file).

    Exit codes: 0 every row loaded (files skipped by --skip-loaded included); 1 some rows
    quarantined (see `cohort quarantine`); 2 a batch rejected whole; 3 a user error,
    nothing loaded from that file (bad file or mapping, or the same load again: same file,
    table and mapping as an earlier batch, whatever its status, unless --skip-loaded or
    --force; the error lists every such file and its batch).
    """
    import cohort
    from cohort.mapping import load_mapping
    from cohort.tables import LOAD_ORDER

    if table is None:
        if mapping is None or replaces is not None:
            raise UserError("give --table, or a --mapping (without --replaces) to load a site "
                            "folder table by table")
        tables = [t for t in LOAD_ORDER if t in load_mapping(mapping).tables]
    else:
        tables = [table]
    results = []
    with cohort.open(db, create=create) as study, _progress_bar(study) as stage:
        try:
            for t in tables:
                results += study.load([str(f) for f in files], site=site, table=t,
                                      mapping=mapping, replaces=replaces, force=force,
                                      skip_loaded=skip_loaded, progress=stage)
        finally:  # what was loaded before an error is shown too
            worst = _print_results(results)
    raise typer.Exit(worst)


def _print_results(results: list[Any]) -> int:
    """Print one line per batch; return the load's exit code."""
    worst = EXIT_OK
    for r in results:
        if r.status == "skipped":
            say(f"{r.file}: {r.message}")  # "...: already loaded as batch 7, skipped"
            continue
        colour = {"loaded": "green", "rejected": "red"}[r.status]
        say(f"{r.file} -> {r.table} batch {r.batch_id}: read {r.rows_read}, loaded "
            f"{r.rows_loaded}, quarantined {r.rows_quarantined}, warnings {r.rows_warned}. "
            f"{r.message}", label=r.status, style=colour)
        if r.status == "rejected":
            worst = EXIT_FATAL
        elif r.rows_quarantined and worst == EXIT_OK:
            worst = EXIT_ROWS_QUARANTINED
    return worst


@contextlib.contextmanager
def _progress_bar(study: Any) -> Iterator[Callable[[str], None]]:
    """On a terminal, a bar for the stage a load is in (the loader names the stage);
    DuckDB measures the statement running: bytes of the file read, rows written."""
    if not console.is_terminal:
        yield lambda _: None
        return
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    study.con.execute("set enable_progress_bar = true")
    study.con.execute("set enable_progress_bar_print = false")
    done = threading.Event()
    with Progress(TextColumn("{task.description}", markup=False), BarColumn(), TaskProgressColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("loading", total=100)

        def poll() -> None:
            while not done.wait(0.2):
                percent = study.con.query_progress()
                if percent >= 0:
                    bar.update(task, completed=percent)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        try:
            yield lambda message: bar.update(task, description=message, completed=0)
        finally:
            done.set()
            poller.join()


@app.command()
@user_errors
def validate(
    db: DbOption = Path("study.duckdb"),
    batch: Annotated[int | None, typer.Option(help="Only the rows of this batch.")] = None,
    table: Annotated[str | None, typer.Option(help="Only this table.")] = None,
    all_tables: Annotated[bool, typer.Option("--all", help="Every table (the default).")] = False,
    out: Annotated[Path | None, typer.Option(
        help="Folder for Data Docs HTML and JSON (created if missing).")] = None,
) -> None:
    """Validate loaded rows (tables with no rows yet are skipped and said so).

    Exit codes: 0 every rule passes (or nothing is loaded yet); 1 errors; 2 a fatal
    finding; 3 a user error (e.g. no such batch or table).
    """
    import cohort
    from cohort.export import output_folder
    from cohort.tables import TABLES

    if all_tables and (batch is not None or table is not None):
        raise UserError("--all validates every table: leave out --batch and --table")
    if out is not None:
        output_folder(out, option="--out")
    with cohort.open(db, create=False) as study:
        reports = study.validate(table=table, batch=batch)
    if not reports and table is None and batch is None:
        say("the study has no rows yet: nothing to validate; load files with `cohort load`")
    elif batch is None:
        for name in [table] if table else TABLES:
            if name not in reports:
                say(f"{name}: no rows yet, skipped")
    worst = EXIT_OK
    for name, report in reports.items():
        failing = report.summary.filter(report.summary["n_failing"] > 0)
        if failing.height:
            _listing(failing.select("rule", "severity", "column", "n_failing", "examples",
                                    "message"), limit=0,
                     title=f"{name}: {report.status} ({report.summary.height} rules)")
        else:
            say(f"{name}: all {report.summary.height} rules pass")
        if out is not None:
            report.write_json(out / f"validation_{name}.json")
            report.write_data_docs(out / f"data_docs_{name}")
        if report.status == "fatal":
            worst = EXIT_FATAL
        elif report.status == "errors" and worst == EXIT_OK:
            worst = EXIT_ROWS_QUARANTINED
    raise typer.Exit(worst)


@app.command()
@user_errors
def uploads(db: DbOption = Path("study.duckdb"), limit: LimitOption = 1000) -> None:
    """List upload batches with provenance and counts.

    Exit codes: 0 listed; 3 a user error (e.g. no such study).
    """
    import cohort

    with cohort.open(db, create=False, read_only=True) as study:
        df = study.uploads().select("batch_id", "table_name", "site_id", "file_name", "rows_read",
                                    "rows_loaded", "rows_quarantined", "status", "loaded_at")
    _listing(df, limit=limit)


@app.command()
@user_errors
def quarantine(
    db: DbOption = Path("study.duckdb"),
    batch: Annotated[int | None, typer.Option(help="Only this batch.")] = None,
    export: Annotated[Path | None, typer.Option(
        help="Write every row to .csv, .xlsx or .parquet (folder created if missing; cells "
        "that start like a formula get a leading ').")] = None,
    limit: LimitOption = LIMIT,
) -> None:
    """List rejected rows; --export writes them for the site to fix.

    Exit codes: 0 listed or written; 3 a user error (e.g. no such batch, an output that
    cannot be written).
    """
    import cohort
    from cohort.export import table_path, write_table

    if export is not None:
        table_path(export, option="--export")
    with cohort.open(db, create=False, read_only=True) as study:
        df = study.quarantine(batch=batch)
    if export is not None:
        write_table(df, export, option="--export")
        say(f"{df.height:,} rows written to {export}")
        return
    _listing(df.select("batch_id", "source_file", "source_line", "column_name", "value", "rule",
                       "message"), limit=limit, export_hint=True)


@app.command()
@user_errors
def rollback(batch: Annotated[int, typer.Argument(help="Batch to take out of force.")],
             db: DbOption = Path("study.duckdb"),
             force: Annotated[bool, typer.Option(
                 "--force", help="Roll back participants although rows in force of other "
                 "tables are left without them.")] = False) -> None:
    """Undo a batch: its rows leave the tables in force but stay in the history.

    Rolling back a correction puts the batch it replaced back in force. Rolling back
    participants whose rows in other tables are still in force (and no other batch in
    force holds them) is refused, exit 3, naming the counts per table, unless --force.

    Exit codes: 0 rolled back; 3 a user error (no such batch, a batch not in force, rows
    of other tables left without their participants).
    """
    import cohort

    with cohort.open(db, create=False) as study:
        result = study.rollback(batch, force=force)
    if result.orphans:
        say(result.orphans_text, label="warning:", style="bold yellow", err=True)
    say(result.message)


@app.command()
@user_errors
def derive(
    name: Annotated[str, typer.Argument(help="Derivation name (sql/derive/NAME.sql).")],
    db: DbOption = Path("study.duckdb"),
    param: Annotated[list[str] | None, typer.Option("--param", help="k=v, repeatable.")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Write to .parquet, .csv or .xlsx (folder created if missing).")] = None,
    limit: LimitOption = LIMIT,
) -> None:
    """Run a derivation and print or save its rows.

    Values are checked before it runs (exit 3: a value not of its parameter's type, or an
    event type, term, origin, cause or instrument the study does not know, with the allowed
    values). No rows, or no events, is a warning on stderr (exit 0).

    Exit codes: 0 done (also with no rows); 3 a user error (unknown derivation, a wrong
    parameter value, an output that cannot be written).
    """
    import warnings

    import cohort
    from cohort.errors import EmptyResultWarning
    from cohort.export import table_path, write_table

    params: dict[str, Any] = {}
    for item in param or []:
        if "=" not in item:
            raise UserError(f"--param {item!r}: write it as name=value")
        k, v = item.split("=", 1)
        params[k.strip()] = v.strip()
    if out is not None:
        table_path(out, option="--out")
    with cohort.open(db, read_only=True) as study, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EmptyResultWarning)
        df = study.derive(name, **params)
    for warning in caught:
        say(warning.message, label="warning:", style="bold yellow", err=True)
    if out is None:
        _listing(df, limit=limit, title=f"{name}: {df.height:,} rows")
    else:
        write_table(df, out, option="--out")
        say(f"{df.height:,} rows written to {out}")


@mapping_app.command("suggest")
@user_errors
def mapping_suggest(
    file: Annotated[Path, typer.Argument(help="A site file.")],
    table: Annotated[str, typer.Option("--table", help="Canonical table it holds.")],
    site: Annotated[str | None, typer.Option(help="Site id.")] = None,
    delimiter: Annotated[str | None, typer.Option(help="CSV delimiter (default: sniffed).")] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding.")] = "utf-8",
) -> None:
    """Draft a mapping spec from a file's header and sample values.

    Exit codes: 0 drafted (on stdout); 3 a user error (e.g. a file that cannot be read).
    """
    from cohort.io import read_header_and_samples, value_labels
    from cohort.mapping import ReadOptions, suggest_mapping
    from cohort.tables import TABLES

    if table not in TABLES:
        raise UserError(f"--table {table}: not a canonical table; tables: {', '.join(TABLES)}")
    read = ReadOptions(delimiter=delimiter, encoding=encoding)
    header, samples = read_header_and_samples(file, read=read)
    opts = {k: v for k, v in {"delimiter": delimiter, "encoding": encoding}.items()
            if v and not (k == "encoding" and v == "utf-8")}
    sys.stdout.write(suggest_mapping(table, header, samples, site_id=site, file=file.name,
                                     read=opts, labels=value_labels(file)))


def main() -> None:  # pragma: no cover - console entry point
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        app()
    except SystemExit as exc:
        # typer exits 2 on a usage error, before any command runs; our 2 means "batch rejected"
        if exc.code == 2 and not _command_started.is_set():
            raise SystemExit(USAGE_EXIT) from None
        raise
