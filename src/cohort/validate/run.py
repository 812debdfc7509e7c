"""Validate one relation (a staged batch or loaded data) of a canonical table."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from cohort.db import quote_ident
from cohort.errors import UserError
from cohort.tables import TABLES
from cohort.validate.config import ValidationConfig
from cohort.validate.report import FINDINGS_SCHEMA, SUMMARY_SCHEMA, ValidationReport
from cohort.validate.rowlevel import condition_sql, failing_rows_sql
from cohort.validate.suites import (
    SQL_RULE_TYPE,
    TABLE_LEVEL_TYPES,
    Rule,
    Suite,
    SuiteError,
    load_suites,
    suite_parameters,
)

__all__ = ["validate_relation"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_N_EXAMPLES = 5


def _split_relation(relation: str) -> tuple[str | None, str]:
    parts = relation.split(".")
    if len(parts) not in (1, 2) or not all(_IDENT.fullmatch(p) for p in parts):
        raise UserError(
            f"relation {relation!r} must be 'name' or 'schema.name' (letters, digits, _)"
        )
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def _relation_columns(cur: duckdb.DuckDBPyConnection, relation_sql: str, relation: str) -> list[str]:
    try:
        cur.execute(f"select * from {relation_sql} limit 0")
    except duckdb.Error as exc:
        raise UserError(f"cannot read relation {relation!r}: {exc}") from None
    return [d[0] for d in cur.description]


def _check_rules(cur: duckdb.DuckDBPyConnection, suite: Suite, columns: Sequence[str],
                 relation_sql: str) -> None:
    """Fail early, naming the suite file and expectation, on rules that cannot run."""
    have = {c.lower() for c in columns}
    for rule in suite.rules:
        missing = [c for c in rule.columns if c.lower() not in have]
        if missing:
            raise SuiteError(
                f"{rule.where}: column(s) {', '.join(missing)} do not exist in the batch; "
                f"columns are: {', '.join(columns)}. Fix the suite file."
            )
        if rule.expectation_type == SQL_RULE_TYPE:
            query = str(rule.kwargs["unexpected_rows_query"]).rstrip("; \t\r\n")
            try:
                cur.execute(f"select * from ({query.format(batch=relation_sql)}) as q limit 0")
            except (duckdb.Error, KeyError, IndexError, ValueError) as exc:
                raise SuiteError(f"{rule.where}: its SQL does not run: {exc}") from None
            out = {d[0].lower() for d in cur.description}
            if "source_line" not in out:
                raise SuiteError(f"{rule.where}: its SQL must select source_line of the failing "
                                 "rows (e.g. 'select b.* from {batch} b where ...')")
            if rule.column and rule.column.lower() not in out:
                raise SuiteError(f"{rule.where}: its SQL does not select meta.column "
                                 f"{rule.column!r}")


def _gx_suite(suite: Suite) -> Any:
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    configs = []
    for rule in suite.rules:
        raw = rule.raw
        try:
            configs.append(ExpectationConfiguration(
                type=rule.expectation_type,
                kwargs=dict(rule.kwargs),
                meta=dict(raw.get("meta") or {}),
                severity=raw.get("severity", "critical"),
            ).to_domain_obj())
        except Exception as exc:  # GX raises pydantic or its own errors here
            raise SuiteError(f"{rule.where}: not a valid {rule.expectation_type}: "
                             f"{' '.join(str(exc).split())}") from None
    return gx.ExpectationSuite(name=f"cohort.{suite.table}", expectations=configs)


def _raised(exception_info: Any) -> str | None:
    if not isinstance(exception_info, dict):
        return None
    if exception_info.get("raised_exception"):
        return str(exception_info.get("exception_message"))
    for value in exception_info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


def _gx_count(rule: Rule, result: dict[str, Any]) -> int | None:
    if rule.expectation_type == SQL_RULE_TYPE:
        return result.get("observed_value")
    return result.get("unexpected_count")


def _site_missingness(cur: duckdb.DuckDBPyConnection, relation_sql: str, table: str,
                      config: ValidationConfig) -> tuple[list[dict], list[dict]]:
    findings: list[dict] = []
    summary: list[dict] = []
    for key, share in config.site_missingness.items():
        t, _, column = key.partition(".")
        if t != table:
            continue
        col = quote_ident(column)
        if table == "participants":
            sql = (f"select coalesce(site_id, '(unknown)') as site, count(*) as n, "
                   f"count(*) filter (where {col} is null) as n_missing "
                   f"from {relation_sql} group by 1 order by 1")
        else:
            sql = (f"select coalesce(p.site_id, '(unknown)') as site, count(*) as n, "
                   f"count(*) filter (where b.{col} is null) as n_missing from {relation_sql} b "
                   f"left join (select participant_id, any_value(site_id) as site_id "
                   f"from participants group by participant_id) p using (participant_id) "
                   f"group by 1 order by 1")
        rule = f"{table}.{column}.site_missingness"
        message = (f"More than {share:.0%} of {column} missing at this site: check the site's "
                   "export or mapping.")
        bad = []
        for site, n, n_missing in cur.execute(sql).fetchall():
            if n and n_missing / n > share:
                value = f"{site}: {n_missing}/{n} missing ({n_missing / n:.0%})"
                bad.append(value)
                findings.append({"source_line": None, "participant_id": None,
                                 "column_name": column, "value": value, "rule": rule,
                                 "severity": "warning", "message": message})
        summary.append({"rule": rule, "severity": "warning",
                        "expectation_type": "cohort_site_missingness", "column": column,
                        "n_failing": len(bad), "examples": bad[:_N_EXAMPLES],
                        "suite_file": "ValidationConfig.site_missingness", "message": message})
    return findings, summary


def validate_relation(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    table: str,
    *,
    config: ValidationConfig | None = None,
    suites_dirs: Iterable[str | Path] | None = None,
    replaces: Sequence[int] = (),
) -> ValidationReport:
    """Run every suite of ``table`` on ``relation`` inside DuckDB, with row-level results.

    Parameters
    ----------
    con
        Open connection to the study database (left open; nothing is written).
    relation
        ``schema.name`` of the batch, e.g. ``"staging.batch_7"``: the canonical
        columns of ``table`` plus ``batch_id`` and ``source_line``.
    table
        The canonical table whose suites apply.
    config
        Study thresholds; defaults to :class:`ValidationConfig()`.
    suites_dirs
        Study folders of extra suite files (added to, or overriding, the
        shipped ``expectations/``).
    replaces
        Batch ids this batch replaces: their rows are ignored by the
        "already loaded" and longitudinal rules.

    Examples
    --------
    >>> import duckdb
    >>> con = duckdb.connect()
    >>> from cohort.resources import resource_dir
    >>> for f in sorted(resource_dir("sql").joinpath("schema").glob("*.sql")):
    ...     _ = con.execute(f.read_text())
    >>> _ = con.execute("create schema staging; create table staging.batch_1 as "
    ...     "select 'P1' participant_id, 'S1' site_id, 'female' sex, 1980::smallint birth_year, "
    ...     "date '2021-03-01' enrolled_on, 'TRD' diagnosis, 70.0 baseline_weight_kg, "
    ...     "2::smallint prior_episodes, true concomitant_antidepressant, 1::bigint batch_id, "
    ...     "2::bigint source_line")
    >>> report = validate_relation(con, "staging.batch_1", "participants")
    >>> report.status
    'pass'
    """
    started = time.perf_counter()
    config = config or ValidationConfig()
    if table not in TABLES:
        raise UserError(f"unknown table {table!r}; known tables: {', '.join(TABLES)}")
    schema, name = _split_relation(relation)
    relation_sql = ".".join(quote_ident(p) for p in (schema, name) if p)
    cur = con.cursor()
    cur.execute("set enable_progress_bar = false")
    try:
        columns = _relation_columns(cur, relation_sql, relation)
        lower = {c.lower() for c in columns}
        for needed in ("source_line", "batch_id", "participant_id"):
            if needed not in lower:
                raise UserError(f"relation {relation!r} has no {needed} column; the loader "
                                "stages the canonical columns plus batch_id and source_line")
        params = suite_parameters(
            today=config.today, replaced_batches=replaces,
            moca_drop_points=config.moca_drop_points,
            moca_drop_months=config.moca_drop_months, dose_ratio=config.dose_ratio,
        )
        suite = load_suites(table, suites_dirs=suites_dirs, params=params)
        _check_rules(cur, suite, columns, relation_sql)
        n_rows = cur.execute(f"select count(*) from {relation_sql}").fetchall()[0][0]
        t_gx = time.perf_counter()
        gx_result, engine = _run_gx(con, suite, schema, name)
        t_rows = time.perf_counter()
        try:
            findings, summary, fatal, notes = _row_level(
                cur, suite, gx_result, engine, relation_sql)
        finally:
            engine.close()
        t_done = time.perf_counter()
        extra_findings, extra_summary = _site_missingness(cur, relation_sql, table, config)
    finally:
        cur.close()

    frames = [f for f in findings if f.height] + (
        [pl.DataFrame(extra_findings, schema=FINDINGS_SCHEMA)] if extra_findings else [])
    all_findings = (pl.concat(frames, how="vertical") if frames
                    else pl.DataFrame(schema=FINDINGS_SCHEMA))
    all_findings = all_findings.sort(["source_line", "rule"], nulls_last=True)
    summary_df = pl.DataFrame(summary + extra_summary, schema=SUMMARY_SCHEMA)
    summary_df = summary_df.with_columns(
        pl.col("severity").replace_strict({"fatal": 0, "error": 1, "warning": 2},
                                          return_dtype=pl.Int8).alias("_o")
    ).sort(["_o", "n_failing", "rule"], descending=[False, True, False]).drop("_o")

    bounds = config.row_count_ranges.get(table)
    if bounds:
        lo, hi = bounds
        if (lo is not None and n_rows < lo) or (hi is not None and n_rows > hi):
            fatal.append(f"row count {n_rows} outside the expected range "
                         f"{lo if lo is not None else '-'}..{hi if hi is not None else '-'} "
                         f"for {table} (ValidationConfig.row_count_ranges)")
    n_error_rows = all_findings.filter(
        (pl.col("severity") == "error") & pl.col("source_line").is_not_null()
    ).get_column("source_line").n_unique()
    if n_rows and n_error_rows / n_rows > config.fatal_error_fraction:
        fatal.append(f"{n_error_rows} of {n_rows} rows ({n_error_rows / n_rows:.1%}) have errors, "
                     f"more than fatal_error_fraction {config.fatal_error_fraction:.0%}: "
                     "check the mapping or the file before loading")
    return ValidationReport(
        table=table, relation=relation, n_rows=n_rows, findings=all_findings,
        summary=summary_df, fatal_reasons=tuple(fatal), gx_results=gx_result,
        config=config.to_dict(), elapsed_s=time.perf_counter() - started,
        warnings=tuple(notes),
        timings={"setup_s": t_gx - started, "gx_s": t_rows - t_gx, "row_level_s": t_done - t_rows,
                 "total_s": time.perf_counter() - started},
    )


def _run_gx(con: duckdb.DuckDBPyConnection, suite: Suite, schema: str | None,
            name: str) -> tuple[dict[str, Any], Any]:
    from cohort.validate.gx_duckdb import DuckDBDatasource, gx_context, make_engine

    ctx = gx_context()
    ds = ctx.data_sources.add_duckdb(DuckDBDatasource(name="study").attach(make_engine(con)))
    asset = ds.add_table_asset("batch", table_name=name, schema_name=schema)
    batch = asset.add_batch_definition_whole_table("whole").get_batch()
    engine = ds.get_execution_engine()
    try:
        result = batch.validate(
            _gx_suite(suite),
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 20,
                           "return_unexpected_index_query": False},
        )
    except Exception:
        engine.close()
        raise
    return result.to_json_dict(), engine


def _row_level(cur: duckdb.DuckDBPyConnection, suite: Suite, gx_result: dict[str, Any],
               engine: Any, relation_sql: str
               ) -> tuple[list[pl.DataFrame], list[dict], list[str], list[str]]:
    by_rule = suite.by_rule()
    findings: list[pl.DataFrame] = []
    summary: list[dict] = []
    fatal: list[str] = []
    notes: list[str] = []
    for res in gx_result.get("results", []):
        cfg = res.get("expectation_config") or {}
        rule = by_rule[(cfg.get("meta") or {})["rule"]]
        raised = _raised(res.get("exception_info"))
        if raised:
            raise SuiteError(f"{rule.where}: Great Expectations could not run it: {raised}")
        result = res.get("result") or {}
        frame = pl.DataFrame(schema=FINDINGS_SCHEMA)
        if not res.get("success"):
            if rule.expectation_type in TABLE_LEVEL_TYPES:
                observed = result.get("observed_value")
                frame = pl.DataFrame([{
                    "source_line": None, "participant_id": None, "column_name": rule.column,
                    "value": None if observed is None else str(observed), "rule": rule.rule,
                    "severity": rule.severity, "message": rule.message}], schema=FINDINGS_SCHEMA)
            else:
                cond = condition_sql(rule.kwargs.get("row_condition"), engine)
                sql = failing_rows_sql(rule, relation_sql, condition=cond)
                rows = cur.sql(sql).pl()
                frame = rows.with_columns(
                    pl.lit(rule.rule).alias("rule"), pl.lit(rule.severity).alias("severity"),
                    pl.lit(rule.message).alias("message"),
                ).cast(FINDINGS_SCHEMA).select(list(FINDINGS_SCHEMA))
                expected = _gx_count(rule, result)
                if expected is not None and expected != frame.height:
                    msg = (f"rule {rule.rule}: the row-level query found {frame.height} rows but "
                           f"Great Expectations counted {expected}; results are not trustworthy")
                    fatal.append(msg)
                    notes.append(msg)
            if rule.severity == "fatal" and frame.height:
                fatal.append(f"fatal rule {rule.rule} failed: {rule.message}")
        examples = (frame.get_column("value").drop_nulls().unique(maintain_order=True)
                    .head(_N_EXAMPLES).to_list())
        summary.append({"rule": rule.rule, "severity": rule.severity,
                        "expectation_type": rule.expectation_type, "column": rule.column,
                        "n_failing": frame.height, "examples": examples,
                        "suite_file": str(rule.suite_file), "message": rule.message})
        findings.append(frame)
    return findings, summary, fatal, notes
