"""Loading a big assessments CSV: cohort's loader (without validation) against DuckDB's
own `create table as select * from read_csv(...)` on the same file, in the same run.
Each side runs in its own process so that its peak memory (max RSS) is its own."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

_CHILD = r"""
import json, sys, time
mode, csv, db = sys.argv[1:4]
import duckdb
if mode == "duckdb":
    started = time.perf_counter()
    con = duckdb.connect(db)
    con.execute("create table t as select * from read_csv(?)", [csv])
    rows = con.execute("select count(*) from t").fetchall()[0][0]
else:
    import cohort
    import cohort.ingest  # the loader's modules, as duckdb is imported before its timer
    started = time.perf_counter()
    s = cohort.open(db, create=True)
    [r] = s.load(csv, table="assessments", validate=(mode == "cohort_validated"))
    rows = r.rows_loaded
seconds = time.perf_counter() - started
# VmHWM is this process's own peak (ru_maxrss keeps the parent's across exec)
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status")
               if line.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "rows": rows, "max_rss_mb": peak_kb / 1024}))
"""


def _write_csv(path: Path, n: int, *, bad: float = 0.0) -> None:
    """Assessments; a fraction ``bad`` of rows gets an unreadable score or an unknown
    instrument (half each), as a site's file with a few mistakes would."""
    rng = np.random.default_rng(1)
    participants = 1 + rng.integers(0, max(n // 10, 1), n)
    days = rng.integers(0, 5 * 365, n)
    instruments = np.array(["MADRS", "MoCA", "DSST", "PHQ-9"])[rng.integers(0, 4, n)]
    scores = rng.integers(0, 28, n).astype(float).astype(str)
    broken = rng.random(n) < bad
    half = rng.random(n) < 0.5
    scores[broken & half] = "n/a"
    instruments = instruments.astype("<U8")
    instruments[broken & ~half] = "MOCA-X"
    pl.DataFrame({
        "participant_id": pl.Series(participants).cast(pl.String).str.zfill(7),
        "assessed_on": pl.Series(np.datetime64("2019-01-01") + days.astype("timedelta64[D]")),
        "instrument": instruments,
        "score": scores,
    }).write_csv(path)


def _child(mode: str, csv: Path, db: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, mode, str(csv), str(db)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(*, quick: bool) -> list[dict]:
    n = 1_000_000 if quick else 10_000_000
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        for bad in (0.0, 0.005):
            csv = tmpdir / "assessments.csv"
            _write_csv(csv, n, bad=bad)
            base = _child("duckdb", csv, tmpdir / f"baseline_{bad}.duckdb")
            ours = _child("cohort", csv, tmpdir / f"cohort_{bad}.duckdb")
            what = f", {bad:.1%} of rows bad" if bad else ""
            rows.append({
                "case": f"load {n:,}-row assessments CSV (no validation{what})",
                "ours_s": round(ours["seconds"], 2), "baseline": "duckdb CTAS read_csv",
                "baseline_s": round(base["seconds"], 2),
                "ratio": round(ours["seconds"] / base["seconds"], 2),
                "ours_peak_mb": round(ours["max_rss_mb"]), "baseline_peak_mb": round(base["max_rss_mb"]),
                "rows_loaded": ours["rows"], "file_mb": round(csv.stat().st_size / 2**20),
            })
    return rows


if __name__ == "__main__":
    started = time.perf_counter()
    for row in run(quick="--quick" in sys.argv):
        print(row)
    print(f"{time.perf_counter() - started:.1f} s")
