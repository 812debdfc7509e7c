"""The ready analysis scripts in analyses/ run end to end on a small demo study.

One demo study (400 participants) is built once for the module; each script runs as an
epidemiologist runs it (a subprocess) and must exit 0 and write a self-contained HTML
report with at least one embedded plot and a JSON with the expected keys and redacted
counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SCRIPTS = ROOT / "analyses"

EXPECTED_KEYS = {
    "relapse": {"attrition", "table1", "follow_up", "kaplan_meier", "logrank", "cox",
                "andersen_gill", "disclosure"},
    "cognition": {"instruments", "formula", "disclosure"},
    "tolerance": {"dose_trajectory", "escalation", "parameters", "disclosure"},
    "harms": {"incidence", "competing_risks", "dose_bands_g", "disclosure"},
}


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rich.console import Console

    from cohort.pipeline import run_demo

    out = tmp_path_factory.mktemp("demo")
    result = run_demo(n_participants=400, out=out, console=Console(quiet=True))
    return result.database


def _run(script: str, db: Path, out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / f"{script}.py"), "--db", str(db), "--out", str(out)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>")
    assert "data:image/png;base64," in html            # at least one embedded plot
    assert "http://" not in html and "https://" not in html   # self-contained
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert EXPECTED_KEYS[script] <= set(results)
    assert results["analysis"] == script
    assert results["disclosure"] == {"threshold": 7, "rounding": 5, "enabled": True}
    return results


def _counts_redacted(values: list) -> None:
    """Every count is None (redacted), zero, or a multiple of 5 above 7."""
    for v in values:
        assert v is None or v == 0 or (v > 7 and v % 5 == 0), v


def test_relapse(demo_db: Path, tmp_path: Path) -> None:
    res = _run("relapse", demo_db, tmp_path / "relapse")
    terms = [row["term"] for row in res["cox"]["summary"]]
    assert "age_per_10y" in terms and "C(route)[T.iv]" in terms
    assert res["cox"]["proportional_hazards"][-1]["term"] == "GLOBAL"
    assert "robust_std_error" in res["andersen_gill"]["summary"][0]
    assert res["andersen_gill"]["events"] > res["cox"]["events"]     # recurrent > first relapses
    _counts_redacted([r["n"] for r in res["attrition"]["summary"]])
    _counts_redacted([c["count"] for c in res["table1"]["cells"]])
    _counts_redacted([r["n_risk"] for r in res["kaplan_meier"]["at_years"]])
    _counts_redacted([r["participants"] for r in res["follow_up"]["summary"]])
    assert res["table1"]["redaction"] == {"threshold": 7, "rounding": 5}


def test_cognition(demo_db: Path, tmp_path: Path) -> None:
    res = _run("cognition", demo_db, tmp_path / "cognition")
    assert set(res["instruments"]) == {"MoCA", "DSST"}
    for inst in res["instruments"].values():
        terms = [row["term"] for row in inst["lmm"]["summary"]]
        assert "years:cumulative_dose_g" in terms
        changes = {row["change"] for row in inst["reliable_change"]["summary"]}
        assert changes <= {"decline", "improvement", "no reliable change"}
        _counts_redacted([row["n"] for row in inst["reliable_change"]["summary"]])


def test_tolerance(demo_db: Path, tmp_path: Path) -> None:
    res = _run("tolerance", demo_db, tmp_path / "tolerance")
    terms = [row["term"] for row in res["dose_trajectory"]["summary"]]
    assert "years" in terms
    assert res["escalation"]["logrank"]["df"] == 1
    _counts_redacted([row["escalated"] for row in res["escalation"]["counts"]])


def test_harms(demo_db: Path, tmp_path: Path) -> None:
    res = _run("harms", demo_db, tmp_path / "harms")
    assert {"ketamine use disorder", "cystitis", "hypertension"} <= set(res["incidence"])
    for rows in res["incidence"].values():
        _counts_redacted([r["events"] and int(r["events"]) for r in rows])
        for r in rows:
            if r["events"] is None:
                assert r["rate"] is None and r["rate_ratio"] is None
    gray = res["competing_risks"]["cumulative_incidence"]["ketamine_use_disorder"]["gray_test"]
    assert [g["cause"] for g in gray] == [1, 2, 3]
    _counts_redacted([c["n"] for c in res["competing_risks"]["counts"]])
