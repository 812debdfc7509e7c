"""SQL derivations at scale: the counting process with 4 time-varying covariates.

A simulated cohort of 1,000,000 participants over 5 years (quick: 100,000) is
streamed to Parquet (``simulate_to_parquet``) and loaded into a study file (one
batch in force). Each case then runs in a fresh process (so its peak resident
memory is its own) on the study opened read-only, with a DuckDB
``memory_limit`` (default 4GB, ``COHORT_BENCH_MEMORY_LIMIT``) and 2 threads,
writing its rows to Parquet with ``COPY`` (the derived rows never sit in Python):

- counting_process: sql/derive/counting_process.sql with its declared defaults
  (current dose per kg, cumulative dose, sessions in the last 90 days, latest
  MADRS; concomitant treatment fixed), recurrent=False and recurrent=True;
- person_time: sql/derive/person_time.sql (split by year, age and dose bands);
- baseline (same run, same settings): a plain scan and aggregate of
  treatment_sessions (per participant: sessions, total dose, first and last
  date) written the same way.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

MEMORY_LIMIT = os.environ.get("COHORT_BENCH_MEMORY_LIMIT", "4GB")
THREADS = 2

BASELINE_SQL = """
select participant_id, count(*) as sessions, sum(dose_mg) as dose_mg,
       min(session_date) as first_session, max(session_date) as last_session
from treatment_sessions
group by participant_id
"""


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _build(n: int, folder: str) -> dict:
    """Simulate ``n`` participants to Parquet and load them into ``folder``/study.duckdb."""
    import cohort
    from cohort.simulate import simulate_to_parquet
    from cohort.tables import TABLES

    out = Path(folder)
    t0 = time.perf_counter()
    dirs = simulate_to_parquet(out / "parquet", n_participants=n, seed=1, threads=THREADS)
    simulated = time.perf_counter() - t0
    t0 = time.perf_counter()
    study = cohort.open(out / "study.duckdb", create=True)
    con = study.con
    con.execute(f"set memory_limit = '{MEMORY_LIMIT}'; set threads = {THREADS}; "
                "set enable_progress_bar = false")
    con.execute("insert into uploads (batch_id, table_name, site_id, file_name, file_path, sha256, "
                "size_bytes, rows_read, rows_loaded, rows_quarantined, loaded_by, status) "
                "values (1, 'participants', 'S', 'sim', 'sim', ?, 0, 0, 0, 0, 'bench', 'loaded')",
                ["0" * 64])
    rows = {}
    for table, columns in TABLES.items():
        cols = ", ".join(c.name for c in columns)
        con.execute(f"insert into store.{table} ({cols}, batch_id, source_line) "
                    f"select {cols}, 1, row_number() over () + 1 "
                    f"from read_parquet(?)", [str(dirs[table] / "*.parquet")])
        rows[table] = con.sql(f"select count(*) from store.{table}").fetchall()[0][0]
    study.close()
    return {"simulate_s": simulated, "load_s": time.perf_counter() - t0, "rows": rows}


def _run_case(path: str, case: str, params: dict) -> dict:
    import cohort
    from cohort.derive import compile_derivation

    study = cohort.open(path, read_only=True)
    con = study.con
    con.execute(f"set memory_limit = '{MEMORY_LIMIT}'; set threads = {THREADS}; "
                "set enable_progress_bar = false")
    con.execute("set temp_directory = ?", [str(Path(path).parent / "spill")])
    if case == "baseline":
        sql, values = BASELINE_SQL, None
    else:
        sql, values = compile_derivation(case, **params)
    target = Path(path).parent / f"{case}.parquet"
    t0 = time.perf_counter()
    con.execute(f"copy ({sql}) to '{target}' (format parquet)", values)
    seconds = time.perf_counter() - t0
    out_rows = con.sql(f"select count(*) from read_parquet('{target}')").fetchall()[0][0]
    study.close()
    target.unlink()
    return {"seconds": seconds, "rows_out": out_rows, "peak_rss_mb": _peak_mb()}


def _fresh(fn, *args) -> dict:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as ex:
        return ex.submit(fn, *args).result()


def run(*, quick: bool) -> list[dict]:
    n = 100_000 if quick else 1_000_000
    results = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("COHORT_BENCH_TMP")) as tmp:
        built = _fresh(_build, n, tmp)
        path = str(Path(tmp) / "study.duckdb")
        size_mb = Path(path).stat().st_size / 2**20
        base = _fresh(_run_case, path, "baseline", {})
        cases = [("counting_process", "counting_process", {}),
                 ("counting_process_recurrent", "counting_process", {"recurrent": True}),
                 ("person_time", "person_time", {})]
        for label, name, params in cases:
            ours = _fresh(_run_case, path, name, params)
            results.append({
                "case": f"{label}_{n}", "ours_s": ours["seconds"],
                "baseline": "scan_aggregate_treatment_sessions", "baseline_s": base["seconds"],
                "ratio": ours["seconds"] / base["seconds"], "rows_out": ours["rows_out"],
                "rows_out_per_s": ours["rows_out"] / ours["seconds"],
                "peak_rss_mb": ours["peak_rss_mb"], "baseline_peak_rss_mb": base["peak_rss_mb"],
                "memory_limit": MEMORY_LIMIT, "threads": THREADS,
                "session_rows": built["rows"]["treatment_sessions"],
                "assessment_rows": built["rows"]["assessments"],
                "study_mb": size_mb, "simulate_s": built["simulate_s"], "load_s": built["load_s"],
            })
    return results
