"""Nothing released by the demo or an analysis script gives a count from 1 to 7 back.

One demo study (500 participants) is built for the module; every analysis script runs on
it (in this process, as ``python analyses/<name>.py`` would); the scanner of
disclosure_scan.py then reads every released file they wrote (HTML text and tables,
JSON, CSV; the plots are drawn from the CSV/JSON curve tables) and tries to back out
small counts, with the small counts that really exist in the study's data as a key.
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import polars as pl
import pytest
from disclosure_scan import RealSmallCounts, Scanner, real_small_counts

import cohort
from cohort.report import NOT_FOR_RELEASE

ROOT = Path(__file__).parents[2]
SCRIPTS = ("relapse", "cognition", "tolerance", "harms")
GRIDS = (1 / 12,)          # the grid of the released curves (years), as the scripts use
CAUSES = ["ketamine_use_disorder", "death", "withdrawal"]
#: Folders of the demo's output that hold row-level data and are not released.
INSIDE_THE_STUDY = {"sites", "validation", "study.duckdb", "study.duckdb.wal"}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rich.console import Console

    from cohort.pipeline import run_demo

    out = tmp_path_factory.mktemp("disclosure")
    run_demo(n_participants=500, out=out / "demo", console=Console(quiet=True))
    for script in SCRIPTS:
        _run_script(script, out / "demo" / "study.duckdb", out / script)
    return out


def _run_script(script: str, db: Path, out: Path, *extra: str) -> None:
    argv = sys.argv
    sys.argv = [f"{script}.py", "--db", str(db), "--out", str(out), *extra]
    try:
        runpy.run_path(str(ROOT / "analyses" / f"{script}.py"), run_name="__main__")
    finally:
        sys.argv = argv


@pytest.fixture(scope="module")
def real(outputs: Path) -> dict[str, RealSmallCounts]:
    """Per output, the small counts that exist in the data its curves come from."""
    from cohort import longitudinal as lg

    with cohort.open(outputs / "demo" / "study.duckdb", read_only=True) as study:
        tte = study.derive("time_to_event", event_type="relapse").filter(pl.col("time_days") > 0)
        competing = study.derive("competing_risks", causes=CAUSES)
        sessions = study.table("treatment_sessions")
        people = study.derive("follow_up").select("participant_id", "origin_date", "route")
    sessions = (sessions.filter(pl.col("dose_mg_per_kg").is_not_null())
                .join(people, on="participant_id")
                .with_columns(years=(pl.col("session_date") - pl.col("origin_date"))
                              .dt.total_days() / 365.25).filter(pl.col("years") >= 0))
    escalation = lg.dose_escalation(sessions, participant="participant_id", time="session_date",
                                    dose="dose_mg_per_kg", threshold=0.25, baseline_sessions=3)
    escalation = escalation.join(people.select("participant_id", "route"), on="participant_id",
                                 how="left").with_columns(years=pl.col("time") / 365.25,
                                                          escalated=pl.col("event"))
    relapse = real_small_counts(tte, time="time_years", status="event", by="route", grids=GRIDS)
    return {
        "demo": relapse, "relapse": relapse, "cognition": RealSmallCounts(),
        "tolerance": real_small_counts(escalation, time="years", status="escalated", by="route",
                                       grids=GRIDS),
        "harms": real_small_counts(competing, time="time_years", status="cause", by="route",
                                   grids=GRIDS),
    }


@pytest.mark.parametrize("output", ["demo", *SCRIPTS])
def test_no_small_count_can_be_backed_out(outputs: Path, real: dict, output: str) -> None:
    scanner = Scanner(real=real[output])
    scanner.scan_folder(outputs / output, skip=INSIDE_THE_STUDY)
    assert {"report.html", "results.json"} <= set(scanner.files)
    assert scanner.numbers > 100
    assert not scanner.findings, "\n".join(map(str, scanner.findings[:20]))


def test_the_real_data_have_small_counts_to_hide(real: dict) -> None:
    """The scan is not vacuous: the study's curves have steps of 1-7 events."""
    for output in ("relapse", "tolerance", "harms"):
        assert sum(rows.shape[0] for rows in real[output].steps.values()) > 10


@pytest.mark.parametrize("output", ["demo", "relapse", "tolerance"])
def test_curves_are_written_as_the_released_table(outputs: Path, output: str) -> None:
    name = "km_escalation.csv" if output == "tolerance" else "km_relapse.csv"
    curve = pl.read_csv(outputs / output / name)
    assert curve.height > 10
    events = curve["n_event"].drop_nulls()
    assert ((events == 0) | ((events >= 8) & (events % 5 == 0))).all()
    results = json.loads((outputs / output / "results.json").read_text(encoding="utf-8"))
    released = (results["kaplan_meier"]["summary"] if output == "demo" else
                (results["escalation"] if output == "tolerance" else
                 results["kaplan_meier"])["curve"])
    assert pl.DataFrame(released)["survival"].to_list() == curve["survival"].to_list()


def test_demo_html_and_json_agree(outputs: Path) -> None:
    html = (outputs / "demo" / "report.html").read_text(encoding="utf-8")
    results = json.loads((outputs / "demo" / "results.json").read_text(encoding="utf-8"))
    for row in results["uploads"]:
        assert row["rows_read"] is None or row["rows_read"] % 5 == 0
    n = results["table1"]["cells"][0]["count"]
    assert f"<td>{n}</td>" in html
    assert "not_for_release" not in results and NOT_FOR_RELEASE not in html
    assert (outputs / "demo" / "validation" / "NOT_FOR_RELEASE.txt").exists()


def test_the_scanner_finds_main_s_leaks(tmp_path: Path) -> None:
    """What was released before: a KM step of 1 in 129, an exact expected count, raw uploads."""
    real = RealSmallCounts()
    real.add_steps("iv", *[pl.Series([0.5]).to_numpy(), pl.Series([129]).to_numpy(),
                           pl.Series([1]).to_numpy()], threshold=7)
    real.add_size(131, threshold=7)
    (tmp_path / "results.json").write_text(json.dumps({
        "kaplan_meier": {"summary": [{"group": "iv", "time": 0.5, "n_risk": 130, "n_event": 0,
                                      "survival": 128 / 129}]},
        "logrank": [{"group": "iv", "observed": 10, "expected": 12.34}],
        "cif": [{"group": "iv", "time": 1.0, "estimate": 1 / 131}],
        "uploads": [{"rows_read": 131, "rows_quarantined": 3}],
    }), encoding="utf-8")
    (tmp_path / "report.html").write_text(
        "<p>131 participants</p><table><tr><th>group</th><th>n</th><th>percent</th></tr>"
        "<tr><td>iv</td><td>20</td><td>15</td></tr></table>", encoding="utf-8")
    pl.DataFrame({"group": ["iv"], "n_event": [6]}).write_csv(tmp_path / "curve.csv")
    pl.DataFrame({"site": ["A"], "rows_warned": [12]}).write_excel(tmp_path / "uploads.xlsx")
    scanner = Scanner(real=real)
    scanner.scan_folder(tmp_path)
    reasons = "\n".join(map(str, scanner.findings))
    assert "curve.csv: csv row 1.n_event = 6" in reasons
    assert "uploads.xlsx" in reasons and "rows_warned = 12" in reasons
    assert "1/129" in reasons                          # the KM step
    assert "expected" in reasons                       # O + E
    assert "real small fraction 0.00763" in reasons    # 1/131
    assert "rows_read" in reasons and "rows_quarantined" in reasons
    assert "131 participants" in reasons
    assert "percent x n (20) gives 3" in reasons       # 15% of 20


def test_no_disclosure_control_stamps_every_output(outputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "harms"
    _run_script("harms", outputs / "demo" / "study.duckdb", out, "--no-disclosure-control")
    written = sorted(p.name for p in out.iterdir())
    assert {"report.html", "results.json", "cif_death.csv"} <= set(written)
    for path in out.iterdir():
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            results = json.loads(text)
            assert next(iter(results)) == "not_for_release"
            assert results["not_for_release"].startswith(NOT_FOR_RELEASE)
            assert results["disclosure"]["enabled"] is False
        elif path.suffix == ".csv":
            assert text.splitlines()[0].startswith(f"# {NOT_FOR_RELEASE}")
        else:
            assert f"class='not-for-release'>{NOT_FOR_RELEASE}" in text
    # and the counts are the data's own: the scanner sees unrounded counts
    scanner = Scanner()
    scanner.scan_folder(out)
    assert scanner.findings


def test_demo_command_takes_no_disclosure_control() -> None:
    from typer.testing import CliRunner

    from cohort.cli import app

    result = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--no-disclosure-control" in result.output


@pytest.mark.slow
def test_demo_without_disclosure_control_is_stamped(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cohort.cli import app

    result = CliRunner().invoke(app, ["demo", "--participants", "300", "--out",
                                      str(tmp_path), "--no-disclosure-control"])
    assert result.exit_code == 0, result.output
    assert NOT_FOR_RELEASE in (tmp_path / "report.html").read_text(encoding="utf-8")
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert results["not_for_release"].startswith(NOT_FOR_RELEASE)
    assert (tmp_path / "km_relapse.csv").read_text(encoding="utf-8").startswith(
        f"# {NOT_FOR_RELEASE}")
