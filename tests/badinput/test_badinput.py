"""The bad-input corpus: each file gets its exact error or quarantine reason,
and every batch keeps rows_read = rows_loaded + rows_quarantined.

These run the loader without the validation suites so that each case shows
what ingest itself does; tests/unit/validate covers the rules.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cohort.errors import AlreadyLoadedError, InputFileError, MappingError


@pytest.fixture
def loaded(study, corpus: Path):
    [r] = study.load(corpus / "participants.csv", site="S1", table="participants", validate=False)
    assert r.status == "loaded" and r.rows_loaded == 3
    return study


def _identity(study) -> None:
    bad = study.query("select * from uploads where rows_read <> rows_loaded + rows_quarantined")
    assert bad.height == 0
    per_batch = study.query(
        "select u.batch_id, u.rows_loaded, count(t.source_line) as n from uploads u "
        "left join (select batch_id, source_line from store.assessments union all "
        "select batch_id, source_line from store.treatment_sessions union all "
        "select batch_id, source_line from store.participants) t using (batch_id) "
        "group by all having u.rows_loaded <> n")
    assert per_batch.height == 0


def _load(study, corpus: Path, name: str, table: str = "assessments", **kw):
    [r] = study.load(corpus / name, table=table, validate=False, **kw)
    _identity(study)
    return r


@pytest.mark.parametrize(("name", "error", "match"), [
    ("empty.csv", InputFileError, r"empty.csv: the file is empty \(0 bytes\)"),
    ("header_only.csv", InputFileError, "header_only.csv: has a header but no data rows"),
    ("duplicated_header.csv", MappingError, "duplicated column name.*: score"),
    ("missing_required.csv", MappingError, "required column 'instrument' is not mapped"),
    ("extra_column.csv", MappingError, r"neither mapped nor dropped: 'comment'"),
    ("non_utf8.csv", InputFileError, r"line 3: bytes that are not UTF-8 \(b'\\xe9'\).*latin-1"),
    ("zero_bytes.parquet", InputFileError, r"zero_bytes.parquet: the file is empty"),
    ("fake.parquet", InputFileError, "is not a valid parquet file"),
])
def test_refused_files_name_the_problem_and_load_nothing(loaded, corpus, name, error, match):
    before = loaded.counts()
    with pytest.raises(error, match=match):
        _load(loaded, corpus, name)
    assert loaded.counts() == before
    assert loaded.uploads().height == 1


def test_wrong_delimiter_is_named(loaded, corpus):
    with pytest.raises(MappingError, match="header is a single column.*is the delimiter right"):
        _load(loaded, corpus, "wrong_delimiter.csv", mapping=corpus / "wrong_delimiter.toml")


def test_clean_file_loads_every_row_with_provenance(loaded, corpus):
    r = _load(loaded, corpus, "assessments_ok.csv")
    assert (r.status, r.rows_read, r.rows_loaded, r.rows_quarantined) == ("loaded", 3, 3, 0)
    rows = loaded.query("select source_line, batch_id from store.assessments order by source_line")
    assert rows["source_line"].to_list() == [2, 3, 4]
    assert set(rows["batch_id"]) == {r.batch_id}
    up = loaded.uploads().filter(batch_id=r.batch_id).row(0, named=True)
    assert len(up["sha256"]) == 64 and up["size_bytes"] == (corpus / "assessments_ok.csv").stat().st_size


def test_same_file_twice_is_refused(loaded, corpus):
    first = _load(loaded, corpus, "assessments_ok.csv")
    with pytest.raises(AlreadyLoadedError, match=f"batch {first.batch_id} \\(status loaded\\)"):
        _load(loaded, corpus, "assessments_ok.csv")
    assert loaded.counts()["assessments"] == 3


def _quarantine(study, batch):
    return [tuple(r) for r in study.quarantine(batch=batch).select(
        "source_line", "column_name", "value", "rule").iter_rows()]


def test_mixed_date_formats_are_quarantined_per_row(loaded, corpus):
    r = _load(loaded, corpus, "mixed_dates.csv")
    assert _quarantine(loaded, r.batch_id) == [
        (3, "assessed_on", "03/01/2020", "coerce.assessed_on"),
        (4, "assessed_on", "2020-13-01", "coerce.assessed_on"),
    ]
    assert r.rows_read == 3
    msg = loaded.quarantine(batch=r.batch_id)["message"][0]
    assert "expected yyyy-mm-dd" in msg and "date_format" in msg


def test_thousands_separator_needs_the_mapping_option(loaded, corpus, tmp_path):
    r = _load(loaded, corpus, "thousands_separator.csv", table="treatment_sessions")
    assert _quarantine(loaded, r.batch_id) == [(2, "dose_mg", "1,035", "coerce.dose_mg")]
    spec = tmp_path / "m.toml"
    spec.write_text('[read]\nthousands = ","\n[tables.treatment_sessions.columns]\n'
                    + "".join(f'{c} = "{c}"\n' for c in
                              ("participant_id", "session_date", "drug", "route", "dose_mg", "weight_kg")))
    copy = tmp_path / "thousands_separator_fixed.csv"
    copy.write_text((corpus / "thousands_separator.csv").read_text() + "\n")
    r2 = _load(loaded, corpus, str(copy), table="treatment_sessions", mapping=spec)
    assert r2.rows_quarantined == 0
    assert sorted(loaded.query(f"select dose_mg from store.treatment_sessions where batch_id = {r2.batch_id}")
                  ["dose_mg"]) == [35.0, 1035.0]


def test_negative_and_non_finite_doses(loaded, corpus):
    r = _load(loaded, corpus, "negative_dose.csv", table="treatment_sessions")
    assert _quarantine(loaded, r.batch_id) == [
        (2, "dose_mg", "-35", "domain.dose_mg"),
        (4, "dose_mg", "inf", "coerce.dose_mg"),
    ]


def test_truncated_file_keeps_its_last_record_in_quarantine(loaded, corpus):
    r = _load(loaded, corpus, "truncated.csv")
    assert r.rows_read == 2
    q = loaded.quarantine(batch=r.batch_id)
    assert q["source_line"].to_list() == [3] and q["rule"].to_list() == ["parse.record"]
    # the message names the line, the problem and the column, never the record's text
    assert "may be truncated" in q["message"][0] and "field 3 ('instrument')" in q["message"][0]
    assert "MADRS" not in q["message"][0]


def test_wrong_field_count_is_quarantined_with_its_line(loaded, tmp_path):
    f = tmp_path / "ragged.csv"
    good = "".join(f"P3,2021-01-{d:02d},MADRS,{d}\n" for d in range(1, 10))
    f.write_text("participant_id,assessed_on,instrument,score\nP1,2020-02-01,MADRS,30\n"
                 "P1,2020-03-01,MADRS,30,extra\n\nP2,\"2020-03-01\",\"Mo\nCA\",27\n" + good)
    [r] = loaded.load(f, table="assessments", validate=False)
    assert (r.rows_read, r.rows_loaded, r.status) == (12, 10, "loaded")
    q = loaded.quarantine(batch=r.batch_id).sort("source_line")
    assert list(zip(q["source_line"], q["rule"], strict=True)) == [
        (3, "parse.record"), (5, "allowed.instrument")]
    assert "line 3: 5 fields where the header has 4" in q["message"][0]
    assert loaded.query(f"select source_line from store.assessments where batch_id={r.batch_id} "
                        "order by 1")["source_line"].to_list() == [2, *range(7, 16)]


def test_parquet_with_wrong_types(loaded, corpus):
    r = _load(loaded, corpus, "wrong_types.parquet")
    assert _quarantine(loaded, r.batch_id) == [
        (2, "assessed_on", "20200201", "coerce.assessed_on"),
        (3, "assessed_on", "20200301", "coerce.assessed_on"),
        (3, "score", "x", "coerce.score"),
    ]
    assert r.status == "rejected" and r.rows_quarantined == 2


def test_excel_serial_and_true_dates(loaded, corpus):
    r = _load(loaded, corpus, "excel_serial_dates.xlsx")
    assert r.rows_loaded == 2
    dates = loaded.query(f"select assessed_on::varchar as d from store.assessments "
                         f"where batch_id = {r.batch_id} order by source_line")["d"].to_list()
    assert dates == ["2020-02-01", "2020-03-01"]


def test_bom_and_crlf_and_quotes(loaded, corpus):
    assert _load(loaded, corpus, "bom.csv").rows_loaded == 1
    assert _load(loaded, corpus, "crlf_quoted.csv").rows_loaded == 2


def test_symlink_loop_and_missing_file(loaded, tmp_path):
    loop = tmp_path / "loop.csv"
    loop.symlink_to(tmp_path / "loop2.csv")
    (tmp_path / "loop2.csv").symlink_to(loop)
    with pytest.raises(InputFileError, match="symbolic link loop|no such file"):
        loaded.load(loop, table="assessments", validate=False)
    with pytest.raises(InputFileError, match="no such file"):
        loaded.load(tmp_path / "nope.csv", table="assessments", validate=False)


def test_latin1_with_mapping_recodes_and_units(loaded, tmp_path):
    f = tmp_path / "osl.csv"
    f.write_bytes("pid;dato;dose;vekt;medikament;vei\nP1;01.02.2020;0,5;70;ketamin;IV\n"
                  "P2;02.02.2020;0,4;80,5;ketamin;iv\nP3;03.02.2020;0,5;;ketamin;IV\n".encode("latin-1")
                  + "".join(f"P3;{d:02d}.03.2020;0,5;60;ketamin;IV\n" for d in range(1, 6)).encode())
    spec = tmp_path / "osl.toml"
    spec.write_text('''
site_id = "OSL"
[read]
delimiter = ";"
decimal_comma = true
encoding = "latin-1"
date_format = "%d.%m.%Y"
[tables.treatment_sessions.columns]
participant_id = "pid"
session_date = "dato"
dose_mg = { from = "dose", unit = "mg/kg" }
weight_kg = "vekt"
drug = { from = "medikament", recode = { ketamin = "racemic_ketamine" } }
route = "vei"
''')
    [r] = loaded.load(f, table="treatment_sessions", mapping=spec, validate=False)
    assert (r.rows_read, r.rows_loaded) == (8, 7)
    rows = loaded.query("select participant_id, dose_mg, dose_mg_per_kg, route, drug from "
                        "treatment_sessions order by 1, session_date limit 2").rows()
    assert rows == [("P1", 35.0, 0.5, "iv", "racemic_ketamine"),
                    ("P2", 32.2, 0.4, "iv", "racemic_ketamine")]
    assert _quarantine(loaded, r.batch_id) == [(4, "dose_mg", "0,5", "unit.dose_mg")]


def test_replaces_and_rollback_keep_history(loaded, corpus, tmp_path):
    first = _load(loaded, corpus, "assessments_ok.csv")
    fixed = tmp_path / "assessments_fixed.csv"
    shutil.copy(corpus / "assessments_ok.csv", fixed)
    with fixed.open("a") as fh:
        fh.write("P3,2020-05-01,MoCA,29\n")
    second = _load(loaded, corpus, str(fixed), replaces=first.batch_id)
    assert loaded.counts()["assessments"] == 4
    statuses = dict(loaded.uploads().select("batch_id", "status").rows())
    assert statuses[first.batch_id] == "superseded" and statuses[second.batch_id] == "loaded"
    assert loaded.query("select count(*) as n from store.assessments")["n"][0] == 7
    from cohort.ingest import rollback_batch

    rollback_batch(loaded, second.batch_id)  # the batch it corrected is in force again
    assert loaded.counts()["assessments"] == 3
    assert loaded.query("select count(*) as n from store.assessments")["n"][0] == 7
    # every past state can be asked for again
    assert loaded.as_of("assessments", first.batch_id).height == 3
    assert loaded.as_of("assessments", second.batch_id).height == 4
    assert set(loaded.as_of("assessments", second.batch_id)["batch_id"]) == {second.batch_id}


def test_spss_stata_and_tsv_files_load(loaded, tmp_path):
    import pandas as pd
    import pyreadstat

    df = pd.DataFrame({"participant_id": ["P1", "P2"], "assessed_on": ["2020-02-01", "2020-03-01"],
                       "instrument": ["MADRS", "MoCA"], "score": [30.0, 27.0]})
    pyreadstat.write_sav(df, str(tmp_path / "a.sav"))
    pyreadstat.write_dta(df.assign(score=[31.0, 26.0]), str(tmp_path / "a.dta"))
    (tmp_path / "a.tsv").write_text("participant_id\tassessed_on\tinstrument\tscore\n"
                                    "P3\t2020-04-01\tMADRS\t12\n")
    for name in ("a.sav", "a.dta", "a.tsv"):
        [r] = loaded.load(tmp_path / name, table="assessments", validate=False)
        assert r.status == "loaded" and r.rows_quarantined == 0, (name, r.message)
    _identity(loaded)
    assert loaded.counts()["assessments"] == 5


def test_a_folder_loads_each_file_as_its_own_batch(loaded, corpus, tmp_path):
    folder = tmp_path / "delivery"
    folder.mkdir()
    for i in range(3):
        (folder / f"part{i}.csv").write_text(
            f"participant_id,assessed_on,instrument,score\nP1,2020-0{i + 2}-01,MADRS,{20 + i}\n")
    results = loaded.load(folder, table="assessments", validate=False)
    assert [r.rows_loaded for r in results] == [1, 1, 1]
    assert len({r.batch_id for r in results}) == 3


def test_csv_row_order_is_kept_on_the_fast_path(loaded, tmp_path):
    n = 120_000
    f = tmp_path / "big.csv"
    with f.open("w") as fh:
        fh.write("participant_id,assessed_on,instrument,score\n")
        for i in range(n):
            fh.write(f"P{i},2020-01-01,MADRS,{i % 61}\n")
    [r] = loaded.load(f, table="assessments", validate=False)
    assert r.rows_loaded == n
    bad = loaded.query("select count(*) as n from store.assessments where batch_id = ? "
                       "and participant_id <> 'P' || (source_line - 2)", [r.batch_id])
    assert bad["n"][0] == 0


def test_a_corrected_redelivery_is_not_a_duplicate_of_what_it_replaces(loaded, corpus, tmp_path):
    [first] = loaded.load(corpus / "assessments_ok.csv", table="assessments")
    fixed = tmp_path / "fixed.csv"
    fixed.write_text((corpus / "assessments_ok.csv").read_text().replace("P2,2020-03-01,MoCA,27",
                                                                         "P2,2020-03-01,MoCA,28"))
    [dup] = loaded.load(fixed, table="assessments")          # without --replaces: duplicates
    assert dup.status == "rejected"
    [second] = loaded.load(fixed, table="assessments", replaces=first.batch_id)
    assert (second.status, second.rows_loaded) == ("loaded", 3)
    assert loaded.table("assessments")["score"].sort().to_list() == [12.0, 28.0, 30.0]


def test_study_settings_and_suites_beside_the_database(loaded, corpus, tmp_path):
    folder = loaded.path.parent
    (folder / "cohort.toml").write_text("[validation]\nfatal_error_fraction = 0.9\n")
    (folder / "expectations").mkdir()
    (folder / "expectations" / "assessments.study.json").write_text('''{
      "name": "study_rules", "meta": {"cohort": {"table": "assessments"}},
      "expectations": [{"type": "expect_column_values_to_be_between",
        "kwargs": {"column": "score", "min_value": 0, "max_value": 25},
        "meta": {"rule": "study.madrs.cap", "severity": "error",
                 "message": "This study caps scores at 25."}}]}''')
    [r] = loaded.load(corpus / "assessments_ok.csv", table="assessments")
    # 2 of 3 rows break the study's own rule; the study allows up to 90% before rejecting
    assert (r.status, r.rows_loaded, r.rows_quarantined) == ("loaded", 1, 2)
    assert set(loaded.quarantine(batch=r.batch_id)["rule"]) == {"study.madrs.cap"}


def test_recodes_apply_to_every_type(study, tmp_path):
    f = tmp_path / "p.csv"
    f.write_text("pid,kjonn,aar,dato,dx,ad\n" + "".join(
        f"P{i},K,1980,2020-01-0{i},depr,{'ja' if i % 2 else 'nei'}\n" for i in range(1, 6)))
    spec = tmp_path / "m.toml"
    spec.write_text('''site_id = "S"
[tables.participants.columns]
participant_id = "pid"
sex = { from = "kjonn", recode = { K = "female", M = "male" } }
birth_year = "aar"
enrolled_on = "dato"
diagnosis = { from = "dx", recode = { depr = "MDD" } }
concomitant_antidepressant = { from = "ad", recode = { ja = true, nei = false } }
''')
    [r] = study.load(f, table="participants", mapping=spec, validate=False)
    assert r.rows_loaded == 5
    got = study.table("participants").sort("participant_id")
    assert got["concomitant_antidepressant"].to_list() == [True, False, True, False, True]
    assert set(got["sex"]) == {"female"} and set(got["diagnosis"]) == {"MDD"}


def test_files_outside_the_input_root_are_refused(loaded, corpus, tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (loaded.path.parent / "cohort.toml").write_text(f'[load]\ninput_root = "{inbox}"\n')
    with pytest.raises(InputFileError, match="outside the allowed input folder"):
        loaded.load(corpus / "assessments_ok.csv", table="assessments", validate=False)
    sneaky = inbox / "link.csv"
    sneaky.symlink_to(corpus / "assessments_ok.csv")     # a link out of the inbox
    with pytest.raises(InputFileError, match="resolves to"):
        loaded.load(sneaky, table="assessments", validate=False)
    shutil.copy(corpus / "assessments_ok.csv", inbox / "a.csv")
    [r] = loaded.load(inbox / "a.csv", table="assessments", validate=False)
    assert r.rows_loaded == 3


def test_a_duplicated_participant_without_validation_is_a_clear_error(study, tmp_path):
    csv = tmp_path / "participants.csv"
    others = "".join(f"P{i},S1,male,1980,2020-01-01,TRD,70,0,no\n" for i in range(2, 10))
    row = "P1,S1,female,1980,2020-01-01,TRD,70,0,no\n"
    csv.write_text("participant_id,site_id,sex,birth_year,enrolled_on,diagnosis,baseline_weight_kg,"
                   "prior_episodes,concomitant_antidepressant\n" + row + others + row)
    with pytest.raises(InputFileError, match=r"participants.csv: .*duplicate key \"P1, 1\".*validation"):
        study.load(csv, table="participants", validate=False)
    assert study.counts()["participants"] == 0 and study.uploads().height == 0
    [r] = study.load(csv, table="participants")  # with validation: both P1 rows are quarantined
    assert (r.rows_loaded, r.rows_quarantined) == (8, 2)
    assert set(study.quarantine(batch=r.batch_id)["rule"]) == {"participants.participant_id.unique"}


def _encoded(tmp_path: Path, table: str, columns: list[str], rows: list[str],
             encoding: str) -> tuple[Path, Path]:
    """A `;` file of ``rows`` in ``encoding`` and a mapping that names its encoding."""
    csv = tmp_path / f"{table}.csv"
    csv.write_bytes((";".join(columns) + "\n" + "\n".join(rows) + "\n").encode(encoding))
    spec = tmp_path / "m.toml"
    spec.write_text(f'[read]\nencoding = "{encoding}"\n[tables.{table}.columns]\n'
                    + "".join(f'{c} = "{c}"\n' for c in columns))
    return csv, spec


def test_windows_1252_bytes_in_a_latin_1_file_load(loaded, tmp_path):
    # bytes 0x80-0x9f (the euro sign, curly quotes in Windows-1252) are refused by DuckDB's
    # Latin-1 reader: the careful path reads the file, the sample included
    rows = [f"P{i % 3 + 1};2020-03-{i % 28 + 1:02d};MADRS;{i % 50}" for i in range(40)]
    rows[5] = "P1;2020-02-01;MADRS;12 \x80"
    csv, spec = _encoded(tmp_path, "assessments", ["participant_id", "assessed_on", "instrument",
                                                   "score"], rows, "latin-1")
    [r] = loaded.load(csv, table="assessments", mapping=spec, validate=False)
    assert (r.status, r.rows_read, r.rows_loaded, r.rows_quarantined) == ("loaded", 40, 39, 1)
    assert loaded.quarantine(batch=r.batch_id)["source_line"].to_list() == [7]
    _identity(loaded)


def test_a_windows_1252_file_is_read_as_such(loaded, tmp_path):
    # "Ã©" in Windows-1252 is also valid UTF-8 (for "é"): only Python's decoder reads it right
    rows = [f"P{i % 3 + 1};2020-03-{i % 28 + 1:02d};hospitalisation;Ã© {i}" for i in range(20)]
    csv, spec = _encoded(tmp_path, "events", ["participant_id", "event_date", "event_type", "term"],
                         rows, "cp1252")
    [r] = loaded.load(csv, table="events", mapping=spec, validate=False)
    assert (r.rows_read, r.rows_loaded) == (20, 20)
    terms = loaded.query("select term from store.events order by source_line")["term"]
    assert terms.to_list() == [f"Ã© {i}" for i in range(20)]
