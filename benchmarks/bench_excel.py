"""Reading a 100,000-row x 6-column worksheet as text: cohort's streaming reader
(:func:`cohort.excel.read_sheet`) against polars' calamine reader (``pl.read_excel(...,
infer_schema_length=0)``, what the loader used before) on the same workbook, in the same
run; 3 runs of each, each in its own process so that its peak memory is its own."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

_CHILD = r"""
import json, sys, time
mode, path = sys.argv[1:3]
import polars as pl
from cohort.excel import read_sheet
started = time.perf_counter()
if mode == "calamine":
    rows = pl.read_excel(path, sheet_id=1, infer_schema_length=0).height
else:
    rows = read_sheet(path).frame.height
seconds = time.perf_counter() - started
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status")
               if line.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "rows": rows, "max_rss_mb": peak_kb / 1024}))
"""


def _write_workbook(path: Path, n: int) -> None:
    """Assessments as a site keeps them: text ids, dates, instruments, scores, a weight, a flag."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(path, {"constant_memory": True})
    ws = wb.add_worksheet("assessments")
    day = wb.add_format({"num_format": "yyyy-mm-dd"})
    ws.write_row(0, 0, ["participant_id", "assessed_on", "instrument", "score", "weight_kg", "fasting"])
    start = datetime(2019, 1, 1)
    for i in range(n):
        ws.write_string(i + 1, 0, f"P{i // 10:07d}")
        ws.write_datetime(i + 1, 1, start + timedelta(days=i % 1800), day)
        ws.write_string(i + 1, 2, ("MADRS", "MoCA", "DSST", "PHQ-9")[i % 4])
        ws.write_number(i + 1, 3, i % 28)
        ws.write_number(i + 1, 4, 50 + (i % 500) / 10)
        ws.write_boolean(i + 1, 5, i % 3 == 0)
    wb.close()


def _child(mode: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD, mode, str(path)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(*, quick: bool) -> list[dict]:
    n = 10_000 if quick else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "assessments.xlsx"
        _write_workbook(path, n)
        runs: dict[str, list[dict]] = {"cohort": [], "calamine": []}
        for _ in range(3):
            for mode, out in runs.items():
                out.append(_child(mode, path))
        ours, base = ([r["seconds"] for r in runs[m]] for m in ("cohort", "calamine"))
        return [{
            "case": f"read a {n:,}-row x 6-column sheet as text",
            "ours_s": round(statistics.median(ours), 3),
            "ours_min_median_max_s": [round(f(ours), 3) for f in (min, statistics.median, max)],
            "baseline": "pl.read_excel (fastexcel/calamine), infer_schema_length=0",
            "baseline_s": round(statistics.median(base), 3),
            "baseline_min_median_max_s": [round(f(base), 3) for f in (min, statistics.median, max)],
            "ratio": round(statistics.median(ours) / statistics.median(base), 2),
            "ours_peak_mb": round(max(r["max_rss_mb"] for r in runs["cohort"])),
            "baseline_peak_mb": round(max(r["max_rss_mb"] for r in runs["calamine"])),
            "rows": runs["cohort"][0]["rows"], "file_mb": round(path.stat().st_size / 2**20, 1),
        }]


if __name__ == "__main__":
    started = time.perf_counter()
    for row in run(quick="--quick" in sys.argv):
        print(row)
    print(f"{time.perf_counter() - started:.1f} s")
