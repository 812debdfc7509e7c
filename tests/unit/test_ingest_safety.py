"""A load killed at any moment leaves the study exactly as before."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl

import cohort


def _big_csv(path: Path, n: int) -> None:
    pl.DataFrame({
        "participant_id": ["P1"] * n,
        "assessed_on": pl.date_range(pl.date(1900, 1, 1), pl.date(1900, 1, 1) + pl.duration(days=n - 1),
                                     eager=True).cast(pl.String),
        "instrument": ["MADRS"] * n,
        "score": [float(i % 60) for i in range(n)],
    }).write_csv(path)


def _snapshot(db: Path) -> tuple:
    cohort.open(db, create=False).close()  # opening clears what a killed load staged
    with cohort.open(db, create=False, read_only=True) as s:
        tables = s.query("select table_schema, table_name from information_schema.tables "
                         "order by all").rows()
        return (tables, s.counts(), s.uploads().height,
                s.query("select count(*) from quarantine").item(),
                s.query("select count(*) from store.assessments").item())


def test_kill_during_load_leaves_database_unchanged(tmp_path: Path) -> None:
    db = tmp_path / "study.duckdb"
    small = tmp_path / "first.csv"
    _big_csv(small, 50)
    with cohort.open(db, create=True) as s:
        s.load(small, table="assessments", validate=False)
    before = _snapshot(db)
    big = tmp_path / "big.csv"
    _big_csv(big, 400_000)
    script = textwrap.dedent(f"""
        import cohort
        s = cohort.open({str(db)!r})
        print("loading", flush=True)
        s.load({str(big)!r}, table="assessments", validate=False)
        print("done", flush=True)
    """)
    killed = 0
    for delay in (0.05, 0.3, 0.8, 1.5):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "loading"
        time.sleep(delay)
        if proc.poll() is not None:
            break  # finished before the kill: the database now holds the load legitimately
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        now = _snapshot(db)
        if now != before:  # the kill came after the commit: the whole batch, nothing less
            tables, counts, uploads, quarantined, stored = now
            assert (counts["assessments"], uploads, stored) == (400_050, 2, 400_050)
            break
        killed += 1
    assert killed >= 1, "no kill landed during the load; make the file bigger"
