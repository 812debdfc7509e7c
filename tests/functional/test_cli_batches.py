"""`cohort load` and `cohort rollback` on batches: exit codes and what they say."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import cohort as cohort_study
from cohort.cli import app

PARTICIPANTS = ("participant_id,site_id,sex,birth_year,enrolled_on,diagnosis\n"
                "P1,S1,female,1980,2020-01-10,TRD\nP2,S1,male,1975,2020-02-01,MDD\n")


def cohort(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def db(tmp_path: Path) -> Path:
    db = tmp_path / "study.duckdb"
    (tmp_path / "p.csv").write_text(PARTICIPANTS)
    r = cohort("load", tmp_path / "p.csv", "--table", "participants", "--site", "S1", "--db", db,
               "--create")
    assert r.exit_code == 0, r.output
    return db


def _assessments(folder: Path, name: str, *rows: str) -> Path:
    path = folder / name
    path.write_text("participant_id,assessed_on,instrument,score\n" + "".join(f"{r}\n" for r in rows))
    return path


def test_load_help_documents_the_exit_codes() -> None:
    r = cohort("load", "--help")
    assert r.exit_code == 0
    text = " ".join(r.output.split())
    for words in ("0 every row loaded", "1 some rows quarantined", "2 a batch rejected",
                  "3 a user error", "--force"):
        assert words in text, words


def test_load_exit_codes(db: Path, tmp_path: Path) -> None:
    ok = _assessments(tmp_path, "ok.csv", "P1,2020-02-01,MADRS,30", "P2,2020-03-01,MoCA,27")
    assert cohort("load", ok, "--table", "assessments", "--db", db).exit_code == 0
    some = _assessments(tmp_path, "some.csv", *[f"P1,2021-01-{d:02d},MADRS,{d}" for d in range(1, 10)],
                        "P2,2021-13-01,MoCA,25")
    r = cohort("load", some, "--table", "assessments", "--db", db)
    assert r.exit_code == 1 and "quarantined 1" in r.stdout, r.output
    bad = _assessments(tmp_path, "bad.csv", "P1,2022-02-01,MADRS,30", "P1,03/01/2022,MADRS,31",
                       "P2,2022-13-01,MoCA,20")
    r = cohort("load", bad, "--table", "assessments", "--db", db)
    assert r.exit_code == 2 and "rejected" in r.stdout, r.output


def test_the_same_load_again_exits_3_unless_force(db: Path, tmp_path: Path) -> None:
    ok = _assessments(tmp_path, "ok.csv", "P1,2020-02-01,MADRS,30", "P2,2020-03-01,MoCA,27")
    assert cohort("load", ok, "--table", "assessments", "--db", db).exit_code == 0
    r = cohort("load", ok, "--table", "assessments", "--db", db)
    assert r.exit_code == 3 and "batch 2 (status loaded)" in r.stderr and "--force" in r.stderr
    assert "Traceback" not in r.output
    assert cohort("rollback", "2", "--db", db).exit_code == 0
    r = cohort("load", ok, "--table", "assessments", "--db", db)
    assert r.exit_code == 3 and "batch 2 (status rolled_back)" in r.stderr
    r = cohort("load", ok, "--table", "assessments", "--db", db, "--force")
    assert r.exit_code == 0 and "batch 3" in r.stdout, r.output


def test_a_rejected_correction_says_the_batch_stays_in_force(db: Path, tmp_path: Path) -> None:
    ok = _assessments(tmp_path, "ok.csv", "P1,2020-02-01,MADRS,30")
    assert cohort("load", ok, "--table", "assessments", "--site", "S1", "--db", db).exit_code == 0
    bad = _assessments(tmp_path, "bad.csv", "P1,2022-02-01,MADRS,30", "P1,03/01/2022,MADRS,31",
                       "P2,2022-13-01,MoCA,20")
    r = cohort("load", bad, "--table", "assessments", "--replaces", "2", "--db", db)
    assert r.exit_code == 2 and "batch 2 stays in force" in r.stdout, r.output
    r = cohort("load", ok, "--table", "participants", "--replaces", "2", "--db", db)
    assert r.exit_code == 3 and "batch 2 holds assessments of site S1, this load is " \
                                "participants of site S1" in " ".join(r.stderr.split())


def test_site_and_mapping_must_agree(db: Path, tmp_path: Path) -> None:
    spec = tmp_path / "m.toml"
    spec.write_text('site_id = "S1"\n[tables.assessments.columns]\nparticipant_id = "participant_id"\n'
                    'assessed_on = "assessed_on"\ninstrument = "instrument"\nscore = "score"\n')
    ok = _assessments(tmp_path, "ok.csv", "P1,2020-02-01,MADRS,30")
    r = cohort("load", ok, "--table", "assessments", "--mapping", spec, "--site", "S2", "--db", db)
    assert r.exit_code == 3 and "--site S2 and the mapping's site_id 'S1'" in r.stderr


def test_rollback_of_a_correction_and_of_participants_with_rows(db: Path, tmp_path: Path) -> None:
    a = _assessments(tmp_path, "a.csv", "P1,2020-02-01,MADRS,30")
    b = _assessments(tmp_path, "b.csv", "P1,2020-02-01,MADRS,31")
    assert cohort("load", a, "--table", "assessments", "--db", db).exit_code == 0
    assert cohort("load", b, "--table", "assessments", "--replaces", "2", "--db", db).exit_code == 0
    r = cohort("rollback", "3", "--db", db)
    assert r.exit_code == 0 and "batch 2, which it replaced, is in force again" in r.stdout
    r = cohort("rollback", "1", "--db", db)
    assert r.exit_code == 3 and "assessments 1" in r.stderr and "--force" in r.stderr
    r = cohort("rollback", "1", "--db", db, "--force")
    assert r.exit_code == 0 and "warning" in r.stderr and "assessments 1" in r.stderr, r.output


def _site_folder(tmp_path: Path) -> tuple[Path, Path]:
    """sites/oslo with three monthly visit files, and the site's mapping (files by pattern)."""
    folder = tmp_path / "sites" / "oslo"
    folder.mkdir(parents=True)
    for month, score in (("07", 30), ("08", 31), ("09", 32)):
        _assessments(folder, f"visits_2026-{month}.csv", f"P1,2026-{month}-01,MADRS,{score}")
    mapping = tmp_path / "m.toml"
    mapping.write_text('site_id = "S1"\n[tables.assessments]\nfile = "visits_*.csv"\n'
                       "[tables.assessments.columns]\n" + "".join(
                           f'{c} = "{c}"\n' for c in ("participant_id", "assessed_on",
                                                      "instrument", "score")))
    return folder, mapping


def test_a_monthly_rerun_of_a_site_folder_with_skip_loaded(db: Path, tmp_path: Path) -> None:
    folder, mapping = _site_folder(tmp_path)
    r = cohort("load", folder, "--mapping", mapping, "--db", db)
    assert r.exit_code == 0 and "batch 4" in r.stdout, r.output
    _assessments(folder, "visits_2026-10.csv", "P2,2026-10-01,MADRS,20")
    r = cohort("load", folder, "--mapping", mapping, "--db", db)
    assert r.exit_code == 3 and "Traceback" not in r.output, r.output
    err = " ".join(r.stderr.split())
    for month, batch in (("07", 2), ("08", 3), ("09", 4)):
        assert f"visits_2026-{month}.csv is already loaded into assessments with the same " \
               f"mapping as batch {batch} (status loaded)" in err, err
    assert "10.csv" not in err and "--skip-loaded" in err and "nothing was loaded" in err
    r = cohort("load", folder, "--mapping", mapping, "--db", db, "--skip-loaded")
    assert r.exit_code == 0, r.output
    out = [" ".join(line.split()) for line in r.stdout.splitlines()]
    for month, batch in (("07", 2), ("08", 3), ("09", 4)):
        assert f"{folder / f'visits_2026-{month}.csv'}: already loaded as batch {batch}, skipped" in out
    assert any(line.startswith(f"loaded {folder / 'visits_2026-10.csv'} -> assessments batch 5")
               for line in out), out
    r = cohort("load", folder, "--mapping", mapping, "--db", db, "--skip-loaded")
    assert r.exit_code == 0 and r.stdout.count("skipped") == 4 and "batch 6" not in r.stdout
    with cohort_study.open(db) as study:
        assert study.uploads()["batch_id"].to_list() == [1, 2, 3, 4, 5]


def test_load_help_documents_skip_loaded() -> None:
    text = " ".join(cohort("load", "--help").output.split())
    assert "--skip-loaded" in text and "files skipped by --skip-loaded included" in text
