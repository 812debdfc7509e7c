"""Validation speed: full assessments suites on a big staged batch.

Cases (each ratio measured in the same run):

* ``full_suites``: :func:`cohort.validate.validate_relation` (GX on DuckDB, every
  shipped assessments rule incl. cross-table and longitudinal ones, plus the
  row-level query of every failing rule) against ONE hand-written DuckDB query
  counting the same failures. The counts must agree (``counts_match``).
* ``gx_table_suite_duckdb_vs_pandas``: the single-table assessments suite run by
  GX on DuckDB (our shim) against GX on pandas (1M rows at most; the pandas
  frame is loaded before timing, its load time is reported apart).
"""

from __future__ import annotations

import datetime as dt
import gc
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from cohort.resources import resource_dir
from cohort.tables import INSTRUMENT_RANGES
from cohort.validate import ValidationConfig, load_suites, validate_relation
from cohort.validate.suites import suite_parameters

TODAY = dt.date(2026, 11, 1)
INSTRUMENTS = list(INSTRUMENT_RANGES)


def _build(path: Path, n: int) -> str:
    """A study file with participants, exits, loaded assessments and a staged batch of n rows."""
    con = duckdb.connect(str(path))
    for f in sorted(resource_dir("sql").joinpath("schema").glob("*.sql")):
        con.execute(f.read_text(encoding="utf-8"))
    n_people = max(1000, n // 50)
    con.execute("create schema staging")
    con.execute(f"""
        insert into store.participants
        select 'P' || lpad(i::varchar, 7, '0'), 'S' || (i % 12), 'female', 1970 + i % 30,
               date '2020-01-01' + (i % 700)::int, 'TRD', 70.0, 1, true, 1, i + 2
        from range({n_people}) t(i)""")
    con.execute(f"""
        insert into store.exits
        select 'P' || lpad(i::varchar, 7, '0'), date '2025-06-01',
               case when i % 2 = 0 then 'died' else 'withdrew' end, 2, i + 2
        from range(0, {n_people}, 10) t(i)""")
    inst = "[" + ", ".join(f"'{k}'" for k in INSTRUMENTS) + "]"
    pick = f"list_extract({inst}, (i // {n_people}) % 9 + 1)"
    top = "case " + pick + " " + " ".join(
        f"when '{k}' then {hi}" for k, (_, hi) in INSTRUMENT_RANGES.items()) + " end"
    # k-th visit of participant p: unique (participant, instrument, day) unless seeded
    body = f"""
        select 'P' || lpad((i % {n_people})::varchar, 7, '0') as participant_id,
               date '2020-01-01' + ((i % {n_people}) % 700)::int + (i // {n_people})::int * 3 as assessed_on,
               {pick} as instrument,
               floor(random() * 0.99 * {top})::double as score,
               i
        from range({{start}}, {{stop}}) t(i)"""
    loaded = n // 10
    con.execute(f"insert into store.assessments select participant_id, assessed_on, instrument, "
                f"score, 3, i + 2 from ({body.format(start=n, stop=n + loaded)})")
    con.execute("insert into uploads (batch_id, table_name, site_id, file_name, file_path, sha256,"
                " size_bytes, rows_read, rows_loaded, rows_quarantined, loaded_by, status) values "
                "(1, 'participants', 'S', 'p', 'p', repeat('0', 64), 1, 0, 0, 0, 'b', 'loaded'),"
                "(2, 'exits', 'S', 'x', 'x', repeat('0', 64), 1, 0, 0, 0, 'b', 'loaded'),"
                "(3, 'assessments', 'S', 'a', 'a', repeat('0', 64), 1, 0, 0, 0, 'b', 'loaded')")
    # staged batch with seeded defects (about 2% of rows)
    con.execute(f"""
        create table staging.batch_9 as
        select case when i % 997 = 0 then 'X' || i else participant_id end as participant_id,
               case when i % 1009 = 0 then date '2019-01-01'
                    when i % 1013 = 0 then date '2027-01-01' else assessed_on end as assessed_on,
               case when i % 1019 = 0 then 'HAMD' else instrument end as instrument,
               case when i % 211 = 0 then score + 200 when i % 1021 = 0 then null
                    when i % 1031 = 0 and instrument = 'MoCA' then 0 else score end as score,
               9::bigint as batch_id, (i + 2)::bigint as source_line
        from ({body.format(start=0, stop=n)})""")
    con.close()
    return "staging.batch_9"


def _handwritten(con: duckdb.DuckDBPyConnection, rel: str) -> dict[str, int]:
    """One DuckDB query counting the failing rows of every assessments rule."""
    params = suite_parameters(today=TODAY)
    ranges = " or ".join(
        f"(instrument = '{k}' and not (score between {lo} and {hi}))"
        for k, (lo, hi) in INSTRUMENT_RANGES.items())
    inst = ", ".join(f"'{k}'" for k in INSTRUMENTS)
    sql = f"""
    with b as (select * from {rel}),
    p as (select participant_id, min(enrolled_on) as enrolled_on from participants group by 1),
    x as (select participant_id, max(exit_date) filter (where reason = 'died') as died,
                 max(exit_date) filter (where reason <> 'died') as exited from exits group by 1),
    d as (select *, count(distinct coalesce(score, 'nan'::double)) over
                 (partition by participant_id, instrument, assessed_on) as n_scores,
                 row_number() over (partition by participant_id, instrument, assessed_on, score
                                    order by source_line) as copy_no
          from b),
    m as (select participant_id, assessed_on, score, source_line, staged,
                 lag(score) over w as ps, lag(assessed_on) over w as pd,
                 lead(score) over w as ns, lead(assessed_on) over w as nd,
                 lead(staged) over w as nstaged
          from (select participant_id, assessed_on, score, source_line, true as staged
                from b where instrument = 'MoCA'
                union all select participant_id, assessed_on, score, null, false
                from assessments where instrument = 'MoCA' and batch_id <> 9
                  and participant_id in (select participant_id from b))
          window w as (partition by participant_id order by assessed_on, source_line)),
    l as (select distinct participant_id, instrument, assessed_on from assessments
          where batch_id <> 9)
    select
      count(*) filter (where d.participant_id is null) as required_participant_id,
      count(*) filter (where d.assessed_on is null) as required_assessed_on,
      count(*) filter (where d.instrument is null) as required_instrument,
      count(*) filter (where d.score is null) as required_score,
      count(*) filter (where d.instrument not in ({inst})) as instrument_allowed,
      count(*) filter (where not regexp_matches(d.participant_id, '^[A-Za-z0-9][A-Za-z0-9_.-]{{0,63}}$')) as id_format,
      count(*) filter (where d.assessed_on > date '{params['today']}') as future,
      count(*) filter (where d.assessed_on < date '1990-01-01') as too_early,
      count(*) filter (where {ranges}) as score_ranges,
      count(*) filter (where d.n_scores > 1 and d.participant_id is not null
                       and d.instrument is not null and d.assessed_on is not null) as unique_per_day,
      count(*) filter (where d.copy_no > 1 and d.participant_id is not null
                       and d.instrument is not null and d.assessed_on is not null) as duplicate_record,
      count(*) filter (where d.participant_id is not null and p.participant_id is null) as orphan,
      count(*) filter (where d.assessed_on < p.enrolled_on) as before_enrolment,
      count(*) filter (where d.assessed_on > x.died) as after_death,
      count(*) filter (where d.assessed_on > x.exited) as after_exit,
      (select count(*) from b semi join l using (participant_id, instrument, assessed_on))
        as already_loaded,
      (select count(*) from m where staged and ((ps - score > 10 and assessed_on <= pd + to_months(3))
        or (not nstaged and score - ns > 10 and nd <= assessed_on + to_months(3)))) as moca_drop
    from d left join p using (participant_id) left join x using (participant_id)
    """
    cur = con.execute(sql)
    names = [c[0] for c in cur.description]
    return dict(zip(names, cur.fetchall()[0], strict=True))


_OURS = {  # hand-written count -> rule ids of the suites
    "required_participant_id": ["assessments.participant_id.required"],
    "required_assessed_on": ["assessments.assessed_on.required"],
    "required_instrument": ["assessments.instrument.required"],
    "required_score": ["assessments.score.required"],
    "instrument_allowed": ["assessments.instrument.allowed"],
    "id_format": ["assessments.participant_id.format"],
    "future": ["assessments.assessed_on.future"],
    "too_early": ["assessments.assessed_on.too_early"],
    "score_ranges": [f"assessments.score.range.{k}" for k in INSTRUMENTS],
    "unique_per_day": ["assessments.unique_per_day"],
    "duplicate_record": ["assessments.duplicate_record"],
    "orphan": ["assessments.participant.orphan"],
    "before_enrolment": ["assessments.assessed_on.before_enrolment"],
    "after_death": ["assessments.assessed_on.after_death"],
    "after_exit": ["assessments.assessed_on.after_exit"],
    "already_loaded": ["assessments.already_loaded"],
    "moca_drop": ["assessments.moca.drop"],
}


def _gx_table_suite(con: duckdb.DuckDBPyConnection, rel: str, *, pandas_df: Any | None) -> float:
    import great_expectations as gx

    from cohort.validate.gx_duckdb import DuckDBDatasource, gx_context, make_engine
    from cohort.validate.run import _gx_suite

    suite = load_suites("assessments", params=suite_parameters(today=TODAY))
    table_only = type(suite)(table=suite.table, files=suite.files, rules=tuple(
        r for r in suite.rules if r.suite_file.name == "assessments.json"))
    ctx = gx_context()
    gx_suite = _gx_suite(table_only)
    if pandas_df is None:
        schema, name = rel.split(".")
        ds = ctx.data_sources.add_duckdb(DuckDBDatasource(name="d").attach(make_engine(con)))
        batch = (ds.add_table_asset("a", table_name=name, schema_name=schema)
                 .add_batch_definition_whole_table("w").get_batch())
    else:
        ds = ctx.data_sources.add_pandas("pd")
        batch = (ds.add_dataframe_asset("a").add_batch_definition_whole_dataframe("w")
                 .get_batch(batch_parameters={"dataframe": pandas_df}))
    started = time.perf_counter()
    result = batch.validate(gx_suite, result_format="SUMMARY")
    elapsed = time.perf_counter() - started
    assert all(not r.exception_info.get("raised_exception") for r in result.results), [
        r.exception_info for r in result.results if r.exception_info.get("raised_exception")]
    if pandas_df is None:
        ds.get_execution_engine().close()
    del gx
    return elapsed


def run(*, quick: bool) -> list[dict]:
    n = 1_000_000 if quick else 10_000_000
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        t0 = time.perf_counter()
        rel = _build(path, n)
        build_s = time.perf_counter() - t0
        con = duckdb.connect(str(path))
        con.execute("set enable_progress_bar = false")
        cfg = ValidationConfig(today=TODAY, fatal_error_fraction=1.0)
        validate_relation(con, rel, "assessments", config=cfg)  # warm-up (imports, GX registry)
        gc.collect()
        t0 = time.perf_counter()
        report = validate_relation(con, rel, "assessments", config=cfg)
        ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        counts = _handwritten(con, rel)
        base = time.perf_counter() - t0
        by_rule = dict(report.summary.select("rule", "n_failing").iter_rows())
        mismatches = {k: (v, sum(by_rule.get(r, 0) for r in _OURS[k]))
                      for k, v in counts.items() if v != sum(by_rule.get(r, 0) for r in _OURS[k])}
        rows.append({
            "case": f"full_suites_{n // 1_000_000}M", "ours_s": round(ours, 3),
            "baseline": "one hand-written DuckDB query", "baseline_s": round(base, 3),
            "ratio": round(ours / base, 2), "rows": n, "rules": report.summary.height,
            "findings": report.findings.height, "rows_to_quarantine": len(report.rows_to_quarantine),
            "gx_s": round(report.timings["gx_s"], 3),
            "row_level_s": round(report.timings["row_level_s"], 3),
            "counts_match": not mismatches, "mismatches": mismatches, "build_s": round(build_s, 1),
        })
        # GX on DuckDB vs GX on pandas, same single-table suite, at most 1M rows
        m = min(n, 1_000_000)
        sub = "staging.batch_9_1m"
        con.execute(f"create or replace table {sub} as select * from {rel} where source_line < {m + 2}")
        duck_s = _gx_table_suite(con, sub, pandas_df=None)
        t0 = time.perf_counter()
        frame = con.sql(f"select * from {sub}").pl().to_pandas()
        load_s = time.perf_counter() - t0
        pandas_s = _gx_table_suite(con, sub, pandas_df=frame)
        rows.append({
            "case": "gx_table_suite_1M", "ours_s": round(duck_s, 3), "baseline": "GX on pandas",
            "baseline_s": round(pandas_s, 3), "ratio": round(duck_s / pandas_s, 2),
            "rows": m, "pandas_load_s": round(load_s, 2),
        })
        con.close()
        del frame
        pl.DataFrame()
    return rows
