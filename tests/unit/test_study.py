"""The study database: creation, schema version, constraints, refusal of foreign files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

import cohort
from cohort.errors import DatabaseLockedError, SchemaError, StudyNotFoundError
from cohort.tables import TABLES


def test_new_study_has_every_canonical_table_and_system_table(tmp_path: Path) -> None:
    with cohort.open(tmp_path / "s.duckdb", create=True) as study:
        assert study.schema_version == cohort.SCHEMA_VERSION
        names = {r[0] for r in study.con.execute(
            "select table_schema || '.' || table_name from information_schema.tables").fetchall()}
    for table in TABLES:
        assert f"store.{table}" in names and f"main.{table}" in names
    assert {"main.uploads", "main.quarantine", "main.schema_version"} <= names


def test_reopen_keeps_data_and_version(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with cohort.open(path, create=True) as study:
        study.con.execute("insert into uploads values (1,'participants','S','f','f','" + "0" * 64
                          + "',1,null,0,0,0,0,now(),'me','loaded',null,null,null)")
    with cohort.open(path) as study:
        assert study.schema_version == 1
        assert study.uploads().height == 1
        assert study.con.execute("select count(*) from schema_version").fetchone() == (1,)


def test_columns_match_the_table_catalogue(study) -> None:
    for table, cols in TABLES.items():
        db_cols = [r[0] for r in study.con.execute(
            "select column_name from information_schema.columns where table_schema = 'store' "
            "and table_name = ? order by ordinal_position", [table]).fetchall()]
        expected = [c.name for c in cols]
        assert [c for c in db_cols if c in expected] == expected
        assert set(db_cols) - set(expected) <= {"batch_id", "source_line", "dose_mg_per_kg"}


def test_check_constraints_are_enforced(study) -> None:
    with pytest.raises(duckdb.ConstraintException):
        study.con.execute("insert into store.participants values "
                          "('P1','S','woman',1980,'2020-01-01','TRD',70,1,true,1,2)")
    with pytest.raises(duckdb.ConstraintException):
        study.con.execute("insert into store.treatment_sessions values "
                          "('P1','2020-01-01','racemic_ketamine','iv',-1,70,'clinic',1,2)")


def test_dose_per_kg_is_derived(study) -> None:
    study.con.execute("insert into store.treatment_sessions values "
                      "('P1','2020-01-01','racemic_ketamine','iv',35,70,'clinic',1,2)")
    assert study.con.execute("select dose_mg_per_kg from store.treatment_sessions").fetchone() == (0.5,)


def test_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with cohort.open(path, create=True) as study:
        study.con.execute("insert into schema_version values (99, now(), 'from the future')")
    with pytest.raises(SchemaError, match="schema version 99 is not known"):
        cohort.open(path)


def test_foreign_duckdb_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create table sales (x int)")
    con.close()
    with pytest.raises(SchemaError, match="no cohort schema_version table"):
        cohort.open(path)


def test_text_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.duckdb"
    path.write_text("hello")
    with pytest.raises(SchemaError, match="notes.duckdb"):
        cohort.open(path)


def test_a_missing_study_is_never_created_unless_asked(tmp_path: Path) -> None:
    with pytest.raises(StudyNotFoundError, match="missing.duckdb: no such study, and no study "
                       r"\(\*\.duckdb\) in .*create=True"):
        cohort.open(tmp_path / "missing.duckdb")
    with pytest.raises(StudyNotFoundError):
        cohort.open(tmp_path / "missing.duckdb", read_only=True)
    assert list(tmp_path.iterdir()) == []  # nothing made, not even the file


def test_a_typo_names_the_folders_studies_closest_first(tmp_path: Path) -> None:
    for name in ("archive.duckdb", "study.duckdb", "pilot.duckdb"):
        cohort.open(tmp_path / name, create=True).close()
    (tmp_path / "notes.txt").write_text("not a study")
    with pytest.raises(StudyNotFoundError) as info:
        cohort.open(tmp_path / "studdy.duckdb")
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "studdy.duckdb") in message
    listed = message.split("(closest first): ")[1].split("; ")[0]
    assert listed.split(", ")[0] == "study.duckdb"
    assert sorted(listed.split(", ")) == ["archive.duckdb", "pilot.duckdb", "study.duckdb"]
    assert "create=True" in message and "cohort load --create" in message
    assert not (tmp_path / "studdy.duckdb").exists()


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(StudyNotFoundError, match=r"the folder .*nowhere does not exist"):
        cohort.open(tmp_path / "nowhere" / "study.duckdb")
    assert not (tmp_path / "nowhere").exists()


def test_create_makes_the_folder_and_opens_an_existing_study_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "new" / "study.duckdb"
    with cohort.open(path, create=True) as study:
        study.con.execute("create table note as select 42 as x")
    with cohort.open(path, create=True) as study:  # not emptied, not refused
        assert study.query("select x from note")["x"].to_list() == [42]


def test_an_empty_duckdb_file_becomes_a_study_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(SchemaError, match="empty DuckDB database, not a study yet.*create=True"):
        cohort.open(path)
    with cohort.open(path, create=True) as study:
        assert study.schema_version == cohort.SCHEMA_VERSION


def test_the_cli_load_creates_a_study_only_with_create(tmp_path: Path, corpus: Path) -> None:
    from typer.testing import CliRunner

    from cohort.cli import app

    cohort.open(tmp_path / "study.duckdb", create=True).close()
    args = ["load", str(corpus / "participants.csv"), "--table", "participants", "--site", "S1"]
    typo = CliRunner().invoke(app, [*args, "--db", str(tmp_path / "studdy.duckdb")])
    assert typo.exit_code == 3, typo.output
    assert "no such study" in typo.output and "study.duckdb" in typo.output
    assert not (tmp_path / "studdy.duckdb").exists()
    new = CliRunner().invoke(app, [*args, "--db", str(tmp_path / "new.duckdb"), "--create"])
    assert new.exit_code == 0, new.output
    with cohort.open(tmp_path / "new.duckdb", read_only=True) as study:
        assert study.counts()["participants"] > 0


def test_second_writer_gets_a_clear_lock_error(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    cohort.open(path, create=True).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time, cohort
            s = cohort.open({str(path)!r})
            print("open", flush=True)
            time.sleep(30)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(DatabaseLockedError, match=rf"locked by another load \(pid {holder.pid}\)"):
            cohort.open(path)
    finally:
        holder.kill()
        holder.wait()
