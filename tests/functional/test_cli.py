"""The `cohort` command end to end, as a user runs it (a real process, real files)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

COHORT = [sys.executable, "-m", "cohort"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COHORT, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("demo")
    return out, run("demo", "--participants", "400", "--out", str(out), "--seed", "7")


def test_demo_writes_everything_a_user_needs(demo_out) -> None:
    out, proc = demo_out
    assert proc.returncode == 0, proc.stderr
    for stage in ("simulate", "site files", "load", "validate", "derive", "fit", "report"):
        assert f"done {stage}" in proc.stdout
    assert (out / "study.duckdb").stat().st_size > 0
    assert sorted(p.name for p in (out / "sites").iterdir()) == ["leeds", "lyon", "oslo"]
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 2          # KM and trajectory plots, embedded
    assert "http://" not in html and "https://" not in html    # self-contained: no network
    for words in ("Kaplan-Meier", "Cox model of relapse", "MoCA", "Uploads"):
        assert words in html
    results = json.loads((out / "results.json").read_text())
    assert {"uploads", "validation", "kaplan_meier", "cox", "lmm", "truth"} <= set(results)
    assert results["counts"]["participants"] > 0
    uploads = results["uploads"]
    # the released counts are rounded (disclosure control): the identity holds in the study
    assert all(u["rows_read"] is None or u["rows_read"] % 5 == 0 for u in uploads)
    import duckdb

    with duckdb.connect(str(out / "study.duckdb"), read_only=True) as con:
        stored = con.execute("select rows_read, rows_loaded, rows_quarantined from uploads").fetchall()
    assert stored and all(read == loaded + quarantined for read, loaded, quarantined in stored)
    assert sum(q for _, _, q in stored) > 0                    # the seeded defects were caught
    assert all(u["status"] == "loaded" for u in uploads)
    assert (out / "validation").is_dir()


def test_cli_on_the_demo_study(demo_out, tmp_path: Path) -> None:
    out, proc = demo_out
    assert proc.returncode == 0, proc.stderr
    db = tmp_path / "copy.duckdb"
    shutil.copy(out / "study.duckdb", db)
    up = run("uploads", "--db", str(db))
    assert up.returncode == 0 and "assessments" in up.stdout and "loaded" in up.stdout
    export = tmp_path / "q.csv"
    q = run("quarantine", "--db", str(db), "--export", str(export))
    assert q.returncode == 0 and export.read_text().startswith("batch_id,")
    tte = tmp_path / "tte.parquet"
    d = run("derive", "time_to_event", "--db", str(db), "--param", "event_type=relapse",
            "--out", str(tte))
    assert d.returncode == 0, d.stderr
    assert tte.stat().st_size > 0


def test_user_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    proc = run("load", str(tmp_path / "missing.csv"), "--table", "assessments",
               "--db", str(tmp_path / "s.duckdb"), "--create")
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error:") and "missing.csv: no such file" in proc.stderr
    proc = run("load", str(tmp_path), "--table", "visits", "--db", str(tmp_path / "s.duckdb"))
    assert proc.returncode == 3 and "unknown table 'visits'" in proc.stderr


def test_load_exit_codes_and_messages(tmp_path: Path, corpus: Path) -> None:
    db = str(tmp_path / "s.duckdb")
    ok = run("load", str(corpus / "participants.csv"), "--table", "participants", "--site", "S1",
             "--db", db, "--create")
    assert ok.returncode == 0, ok.stderr + ok.stdout
    again = run("load", str(corpus / "participants.csv"), "--table", "participants", "--db", db)
    assert again.returncode == 3 and "batch 1 (status loaded)" in again.stderr
    bad = run("load", str(corpus / "mixed_dates.csv"), "--table", "assessments", "--db", db)
    assert bad.returncode == 2 and "rejected" in bad.stdout


def test_every_command_has_help() -> None:
    for cmd in ("demo", "load", "validate", "uploads", "quarantine", "rollback", "derive",
                "mapping"):
        proc = run(cmd, "--help")
        assert proc.returncode == 0 and "Usage" in proc.stdout, cmd


def test_mapping_suggest_drafts_a_spec(tmp_path: Path) -> None:
    f = tmp_path / "site.csv"
    f.write_text("patient,visit_date,scale,value,initials\nA1,2020-01-01,MADRS,20,AB\n"
                 "A2,2020-01-02,moca,27,CD\n")
    proc = run("mapping", "suggest", str(f), "--table", "assessments", "--site", "XYZ")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert 'participant_id = "patient"' in text and 'assessed_on = "visit_date"' in text
    assert 'score = "value"' in text and '"moca" = "?"' in text
    assert 'columns = ["initials"]' in text


def test_validate_gates_a_pipeline_with_its_exit_code(tmp_path: Path, corpus: Path) -> None:
    import cohort

    db = tmp_path / "s.duckdb"
    with cohort.open(db, create=True) as study:
        study.load(corpus / "participants.csv", site="S1", table="participants")
        [ok] = study.load(corpus / "assessments_ok.csv", table="assessments")
        more = tmp_path / "more.csv"
        more.write_text("participant_id,assessed_on,instrument,score\n"
                        + "".join(f"P3,2021-01-{d:02d},MADRS,{d}\n" for d in range(1, 11)))
        study.load(more, table="assessments")
        orphan = tmp_path / "orphans.csv"
        orphan.write_text("participant_id,assessed_on,instrument,score\nNOBODY,2020-02-01,MADRS,30\n")
        [bad] = study.load(orphan, table="assessments", validate=False)  # slipped past the rules
    clean = run("validate", "--db", str(db), "--batch", str(ok.batch_id), "--out", str(tmp_path / "v"))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert (tmp_path / "v" / "validation_assessments.json").exists()
    dirty = run("validate", "--db", str(db), "--table", "assessments")
    assert dirty.returncode == 1, dirty.stdout + dirty.stderr
    assert "orphan" in dirty.stdout
    wrong = run("validate", "--db", str(db), "--batch", str(bad.batch_id), "--table", "exits")
    assert wrong.returncode == 3 and "holds assessments, not exits" in wrong.stderr


def test_a_site_folder_loads_table_by_table_from_its_mapping(tmp_path: Path) -> None:
    from cohort.simulate import simulate

    files = simulate(150, seed=3).write_site_files(tmp_path / "sites")
    db = tmp_path / "s.duckdb"
    proc = run("load", str(files.site_dirs["LDS"]), "--mapping", str(files.specs["LDS"]),
               "--db", str(db), "--create")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    loaded_tables = [line.split(" -> ")[1].split()[0] for line in proc.stdout.splitlines()
                     if " -> " in line]
    assert loaded_tables == ["participants", "exits", "treatment_sessions", "assessments", "events"]
    missing = run("load", str(files.site_dirs["LDS"]), "--db", str(db))
    assert missing.returncode == 3 and "give --table" in missing.stderr


def test_load_shows_a_progress_bar_on_a_terminal(tmp_path: Path, corpus: Path) -> None:
    db = str(tmp_path / "s.duckdb")
    env = {**os.environ, "TTY_COMPATIBLE": "1"}  # what rich takes for a terminal
    shown = subprocess.run([*COHORT, "load", str(corpus / "assessments_ok.csv"), "--table",
                            "assessments", "--db", db, "--create"], capture_output=True, text=True, env=env,
                           timeout=600)
    assert "assessments_ok.csv: 3 rows; validating" in shown.stdout and "━" in shown.stdout
    piped = run("load", str(corpus / "participants.csv"), "--table", "participants", "--site", "S1",
                "--db", db)
    assert "━" not in piped.stdout and "validating" not in piped.stdout
