"""Direct identifiers are refused, dropped without a trace, or pseudonymised."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from cohort.db import quote_ident
from cohort.errors import MappingError
from cohort.identifiers import find_identifiers

HEADER = "participant_id,site_id,sex,birth_year,enrolled_on,diagnosis"


def _file(tmp_path: Path, extra_header: str, extra: list[str]) -> Path:
    f = tmp_path / "p.csv"
    rows = [f"P{i},S1,female,1980,2020-01-{i + 1:02d},TRD,{x}" for i, x in enumerate(extra)]
    f.write_text(f"{HEADER},{extra_header}\n" + "\n".join(rows) + "\n")
    return f


def _spec(tmp_path: Path, body: str) -> Path:
    spec = tmp_path / "m.toml"
    cols = "".join(f'{c} = "{c}"\n' for c in HEADER.split(",") if c != "participant_id")
    spec.write_text(f"[tables.participants.columns]\n{cols}{body}")
    return spec


EMAILS = ["kari@example.no", "ola@example.no", "per@example.fr", "ann@example.uk"]


def test_a_mapped_identifier_is_refused(study, tmp_path):
    f = _file(tmp_path, "contact", EMAILS)
    spec = _spec(tmp_path, 'participant_id = "contact"\n[tables.participants.drop]\ncolumns = ["participant_id"]\n')
    with pytest.raises(MappingError, match=r"'contact' \(mapped to participants.participant_id\) "
                                           r"looks like an e-mail address.*pseudonymise = true"):
        study.load(f, table="participants", mapping=spec, validate=False)
    assert study.counts()["participants"] == 0


def test_a_dropped_identifier_leaves_no_trace_even_in_quarantine(study, tmp_path):
    f = _file(tmp_path, "email", EMAILS)
    text = f.read_text().replace("P3,S1,female,1980", "P3,S1,female,19x0")  # one bad row
    f.write_text(text + "".join(f"Q{i},S1,male,1970,2020-02-01,MDD,q{i}@x.no\n" for i in range(8)))
    spec = _spec(tmp_path, 'participant_id = "participant_id"\n[tables.participants.drop]\ncolumns = ["email"]\n')
    [r] = study.load(f, table="participants", mapping=spec, validate=False)
    assert r.rows_quarantined == 1
    stored = study.query("select raw_record from quarantine")["raw_record"][0]
    assert "@" not in stored and "email" not in stored and "19x0" in stored


def test_pseudonymised_ids_are_keyed_hashes(study, tmp_path, monkeypatch):
    f = _file(tmp_path, "nhs_number", ["943 476 5919", "943 476 5870", "943 476 5811", "943 476 5829"])
    spec = _spec(tmp_path, 'participant_id = { from = "nhs_number", pseudonymise = true }\n'
                           '[tables.participants.drop]\ncolumns = ["participant_id"]\n')
    monkeypatch.delenv("COHORT_STUDY_SECRET", raising=False)
    with pytest.raises(MappingError, match="needs the study secret"):
        study.load(f, table="participants", mapping=spec, validate=False)
    monkeypatch.setenv("COHORT_STUDY_SECRET", "a-long-study-secret-kept-elsewhere")
    [r] = study.load(f, table="participants", mapping=spec, validate=False)
    ids = study.table("participants")["participant_id"].to_list()
    assert r.rows_loaded == 4 and all(i.startswith("ps-") and len(i) == 23 for i in ids)
    dump = "".join(str(v) for v in study.query("select * from quarantine union all "
                                               "select null,null,null,null,null,null,null,null,null,mapping "
                                               "from uploads").rows())
    assert "943 476" not in dump and "943 476" not in "".join(ids)


@pytest.mark.parametrize(("column", "values", "kind"), [
    ("surname", ["x"], "a person's name"),
    ("date_of_birth", ["1980-01-02"], "a full date of birth"),
    ("home", ["12 Baker Street", "3 High Road", "7b Church Lane"], "a street address"),
    ("code", ["010180 12345", "020290 23456", "030370 34567"], "a national identity number"),
    ("x", ["+47 912 34 567", "+33 6 12 34 56 78", "0161 496 0000"], "a phone number"),
])
def test_suspects_by_name_and_by_value(column, values, kind):
    [s] = find_identifiers([column], {column: values})
    assert s.kind == kind


def test_no_false_alarm_on_study_columns():
    header = ["participant_id", "visit_date", "score", "dose", "weight"]
    samples = {"participant_id": ["OSL-000123", "0047319"], "visit_date": ["2020-01-01", "01.02.2020"],
               "score": ["10.0", "27"], "dose": ["0,5", "56"], "weight": ["70", "80.5"]}
    assert find_identifiers(header, samples) == []



def test_a_column_empty_in_the_first_records_of_a_big_file_is_still_checked(study, tmp_path):
    # the sample of a big text file (its first records) holds no value of `note`; the rest does
    from cohort.ingest import _SAMPLE_ROWS

    n = _SAMPLE_ROWS + 600
    rows = [f"P{i},2020-01-01,relapse,{'' if i < _SAMPLE_ROWS else f'p{i}@example.org'}"
            for i in range(n)]
    csv = tmp_path / "events.csv"
    csv.write_text("participant_id,event_date,event_type,note\n" + "\n".join(rows) + "\n")
    spec = tmp_path / "m.toml"
    spec.write_text('[tables.events.columns]\nparticipant_id = "participant_id"\n'
                    'event_date = "event_date"\nevent_type = "event_type"\nterm = "note"\n')
    with pytest.raises(MappingError, match="'note' .*looks like"):
        study.load(csv, table="events", mapping=spec, validate=False)
    assert study.uploads().height == 0


# -- nothing identifying anywhere: a scan of the whole database ----------------------------
def planted_in(study, strings: Iterable[str]) -> list[str]:
    """Where any of ``strings`` (case-insensitive) occurs in the study: every column (as
    text) of every table and view of every schema, temporary ones too, and the bytes of
    the database file after a checkpoint. Returns 'schema.table.column: string' items."""
    wanted = [s.lower() for s in strings]
    con = study.con
    found: list[str] = []
    relations = con.execute(
        "select database_name, schema_name, table_name from duckdb_tables() union all "
        "select database_name, schema_name, view_name from duckdb_views() where not internal"
    ).fetchall()
    for database, schema, table in relations:
        name = f"{quote_ident(database)}.{quote_ident(schema)}.{quote_ident(table)}"
        columns = [r[0] for r in con.execute(f"describe {name}").fetchall()]
        for column in columns:
            text = f"lower({quote_ident(column)}::varchar)"
            hits = con.execute(
                f"select {', '.join(f'count_if(contains({text}, ?))' for _ in wanted)} from {name}",
                wanted).fetchall()[0]
            found += [f"{schema}.{table}.{column}: {s}" for s, n in zip(wanted, hits, strict=True)
                      if n]
    con.execute("checkpoint")
    data = study.path.read_bytes().lower()
    found += [f"{study.path.name} (bytes): {s}" for s in wanted if s.encode() in data]
    return found


@pytest.fixture
def planted() -> Callable[..., list[str]]:
    """``planted(study, strings)``: where the strings are found in the study (see
    :func:`planted_in`); an empty list when nothing leaked."""
    return planted_in


NAME, BIRTH, MAIL = "Kari Nordmann", "1981-07-14", "kari.nordmann@example.no"
PHONE, FNR = "+47 912 34 567", "14078112345"


def _events_spec(tmp_path: Path, *, drop: tuple[str, ...] = (), term: str = "term",
                 option: str = "") -> Path:
    spec = tmp_path / "events.toml"
    term_map = f'{{ from = "{term}", {option} }}' if option else f'"{term}"'
    spec.write_text('[tables.events.columns]\nparticipant_id = "participant_id"\n'
                    'event_date = "event_date"\nevent_type = "event_type"\n'
                    f"term = {term_map}\n"
                    f"[tables.events.drop]\ncolumns = {list(drop)!r}\n".replace("'", '"'))
    return spec


def _with_participants(study, tmp_path: Path, n: int = 3) -> None:
    f = tmp_path / "participants.csv"
    f.write_text(f"{HEADER}\n" + "".join(f"P{i},S1,female,1980,2020-01-01,TRD\n" for i in range(n)))
    [r] = study.load(f, table="participants", validate=False)
    assert r.rows_loaded == n


def test_a_dropped_column_leaves_no_trace_anywhere(study, tmp_path, planted):
    _with_participants(study, tmp_path)
    # names that say nothing, values too few or of no known shape: only the drop guards them
    rows = [f"P{i % 3},2020-03-{i % 28 + 1:02d},relapse,fine,{NAME},{BIRTH}," for i in range(40)]
    rows[5] = f"P1,2020-13-45,relapse,bad date,{NAME},{BIRTH},{MAIL}"  # quarantined
    rows[6] = f"P1,2020-03-02,relapsee,bad type,{NAME},{BIRTH},{MAIL}"  # quarantined
    f = tmp_path / "events.csv"
    f.write_text("participant_id,event_date,event_type,term,registrert_av,ref,kontakt\n"
                 + "\n".join(rows) + "\n")
    spec = _events_spec(tmp_path, drop=("registrert_av", "ref", "kontakt"))
    [r] = study.load(f, table="events", mapping=spec)  # with validation: findings too
    assert (r.rows_loaded, r.rows_quarantined) == (38, 2)
    assert planted(study, [NAME, BIRTH, MAIL, "nordmann"]) == []
    assert NAME not in r.message and MAIL not in r.message
    records = study.query("select raw_record from quarantine")["raw_record"].to_list()
    assert len(records) == 2 and all(
        set(__import__("json").loads(t)) == {"participant_id", "event_date", "event_type", "term"}
        for t in records)


@pytest.mark.parametrize("clean", [500, 10_000])
def test_an_identifier_column_is_judged_on_every_value(study, tmp_path, clean):
    # the first `clean` values are plausible terms; the e-mail addresses come after
    n = 2 * clean + 100
    rows = [f"P{i},2020-01-01,relapse,{'nausea' if i < clean else f'p{i}@example.org'}"
            for i in range(n)]
    f = tmp_path / "events.csv"
    f.write_text("participant_id,event_date,event_type,note\n" + "\n".join(rows) + "\n")
    with pytest.raises(MappingError, match=rf"'note' \(mapped to events.term\) looks like an "
                                           rf"e-mail address \({n - clean:,} of its {n:,} values\)"):
        study.load(f, table="events", mapping=_events_spec(tmp_path, term="note"), validate=False)
    assert study.uploads().height == 0


def test_one_e_mail_address_as_a_participant_id_after_row_10000_refuses_the_file(study, tmp_path):
    rows = [f"P{i},S1,female,1980,2020-01-01,TRD" for i in range(10_500)]
    rows[10_400] = f"{MAIL},S1,female,1980,2020-01-01,TRD"
    f = tmp_path / "participants.csv"
    f.write_text(f"{HEADER}\n" + "\n".join(rows) + "\n")
    with pytest.raises(MappingError, match=r"'participant_id' .*looks like an e-mail address "
                                           r"\(1 of its 10,500 values\).*pseudonymise = true"):
        study.load(f, table="participants", validate=False)
    assert study.uploads().height == 0


AE = f"pt {NAME} {MAIL} tel {PHONE}"
AE_MASKED = "pt [name removed] [e-mail removed] tel [phone number removed]"


def _free_text_file(tmp_path: Path, n: int, planted_at: dict[int, str]) -> Path:
    rows = [f"P{i % 3},2020-03-{i % 28 + 1:02d},adverse_event,"
            f"\"{planted_at.get(i, 'nausea grade 2, 56 mg on 2020-03-01')}\"" for i in range(n)]
    f = tmp_path / "events.csv"
    f.write_text("participant_id,event_date,event_type,term\n" + "\n".join(rows) + "\n")
    return f


def test_identifiers_in_free_text_are_masked_and_the_site_told(study, tmp_path, planted):
    _with_participants(study, tmp_path)
    # after row 10,000 of a big file, as in the sample the old check looked at
    planted_at = {10_200: AE, 10_300: f"SSN 123-45-6789, fnr {FNR}", 10_400: f"born {BIRTH}"}
    f = _free_text_file(tmp_path, 10_500, planted_at)
    [r] = study.load(f, table="events", mapping=_events_spec(tmp_path))
    assert (r.rows_loaded, r.rows_quarantined, r.rows_warned) == (10_500, 0, 3)
    terms = dict(study.query("select source_line, term from events where source_line in "
                             "(10202, 10302, 10402)").rows())
    assert terms == {10202: AE_MASKED, 10302: "SSN [national ID removed], fnr [national ID removed]",
                     10402: "born [date of birth removed]"}
    assert study.query("select count(*) from events where term = "
                       "'nausea grade 2, 56 mg on 2020-03-01'").item() == 10_497
    findings = study.query("select source_line, value, rule, message from validation_findings "
                           "where rule = 'identifier.term' order by source_line")
    assert findings["source_line"].to_list() == [10202, 10302, 10402]
    assert findings["value"].null_count() == 3
    assert "an e-mail address and a phone number and a person's name" in findings["message"][0] \
        or "a person's name" in findings["message"][0]
    assert planted(study, [NAME, MAIL, "912 34 567", FNR, "123-45-6789", BIRTH]) == []


def test_free_text_refused_by_the_mapping_goes_to_quarantine_masked(study, tmp_path, planted):
    _with_participants(study, tmp_path)
    f = _free_text_file(tmp_path, 30, {4: AE, 9: f"call {PHONE}"})
    spec = _events_spec(tmp_path, option='identifiers = "refuse"')
    [r] = study.load(f, table="events", mapping=spec, validate=False)
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (30, 28, 2)
    q = study.query("select source_line, value, rule, raw_record from quarantine order by 1")
    assert q["source_line"].to_list() == [6, 11] and set(q["rule"]) == {"identifier.term"}
    assert AE_MASKED in q["raw_record"][0] and q["value"].null_count() == 2
    assert planted(study, [NAME, MAIL, "912 34 567"]) == []


def test_an_unknown_free_text_option_is_a_mapping_error(study, tmp_path):
    f = _free_text_file(tmp_path, 3, {})
    with pytest.raises(MappingError, match=r"\] identifiers: expected one of \"mask\", \"refuse\", got \"drop\""):
        study.load(f, table="events", mapping=_events_spec(tmp_path, option='identifiers = "drop"'))


def test_a_malformed_record_with_an_e_mail_in_a_dropped_column(study, tmp_path, planted):
    # a quoted newline sends the file to the careful reader; line 4 has a field too many
    f = tmp_path / "events.csv"
    f.write_text("participant_id,event_date,event_type,term,email\n"
                 f"P0,2020-03-01,relapse,\"two\nlines\",{MAIL}\n"
                 f"P1,2020-03-02,relapse,fine,{MAIL},{MAIL}\n"
                 + "".join(f"P2,2020-03-{d:02d},relapse,fine,{MAIL}\n" for d in range(3, 13)))
    _with_participants(study, tmp_path)
    [r] = study.load(f, table="events", mapping=_events_spec(tmp_path, drop=("email",)),
                     validate=False)
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (12, 11, 1)
    assert planted(study, [MAIL, "kari.nordmann@"]) == []


def test_the_scan_finds_what_is_there(study, tmp_path, planted):
    # the scan itself: a planted string kept as data is found (the test above can fail)
    _with_participants(study, tmp_path)
    f = _free_text_file(tmp_path, 3, {1: "Nordmannsvei clinic"})
    study.load(f, table="events", mapping=_events_spec(tmp_path), validate=False)
    assert any("store.events.term" in hit for hit in planted(study, ["nordmannsvei"]))


# -- the free-text rules -------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    (AE, AE_MASKED),
    ("fnr 01018012345", "fnr [national ID removed]"),
    ("NHS 943 476 5919", "NHS [national ID removed]"),  # a valid check digit
    ("NHS 943 476 5918", "NHS [phone number removed]"),  # not an NHS number: 10 digits
    ("SSN 123-45-6789", "SSN [national ID removed]"),
    ("NIR 1 85 05 78 006 084 36", "NIR [national ID removed]"),
    ("DOB: 2 March 1980", "DOB: [date of birth removed]"),
    ("født 01.02.1980", "født [date of birth removed]"),
    ("onset 2020-01-02 91234567", "onset 2020-01-02 [phone number removed]"),
    ("Patient Ola Hansen fell", "Patient [name removed] fell"),
    ("Mr. O'Brien called 0161 496 0000", "Mr. [name removed] called [phone number removed]"),
])
def test_free_text_rules(text, expected):
    from cohort.identifiers import mask_identifiers

    assert mask_identifiers(text) == expected


@pytest.mark.parametrize("text", [
    "nausea grade 2 on 2020-03-01, dose 56 mg", "headache 2020-01-02 12:30",
    "patient reported dizziness", "0.5 mg/kg over 40 min", "20200201", "visit 3 of 12",
    "MADRS 34 at week 4", "OSL-000123",
])
def test_free_text_rules_leave_clinical_text_alone(text):
    from cohort.identifiers import mask_identifiers

    assert mask_identifiers(text) == text


# -- the study secret ----------------------------------------------------------------------
def _pseudonymised(tmp_path: Path) -> tuple[Path, Path]:
    f = _file(tmp_path, "nhs_number", ["943 476 5919", "943 476 5870", "943 476 5811"])
    spec = _spec(tmp_path, 'participant_id = { from = "nhs_number", pseudonymise = true }\n'
                           '[tables.participants.drop]\ncolumns = ["participant_id"]\n')
    return f, spec


@pytest.mark.parametrize("where", ["study.secret", "keys/study.secret"])
def test_a_secret_file_inside_the_study_folder_is_refused(study, tmp_path, monkeypatch, where):
    secret = tmp_path / where
    secret.parent.mkdir(exist_ok=True)
    secret.write_text("a-long-study-secret-kept-elsewhere\n")
    monkeypatch.delenv("COHORT_STUDY_SECRET", raising=False)
    monkeypatch.setenv("COHORT_STUDY_SECRET_FILE", str(secret))
    f, spec = _pseudonymised(tmp_path)
    with pytest.raises(MappingError, match=r"inside the study folder .*; keep it outside the "
                                           r"study folder") as info:
        study.load(f, table="participants", mapping=spec, validate=False)
    assert "\n" not in str(info.value) and study.uploads().height == 0


def test_a_secret_file_outside_the_study_folder_is_used(study, tmp_path, tmp_path_factory,
                                                       monkeypatch):
    secret = tmp_path_factory.mktemp("keys") / "study.secret"
    secret.write_text("a-long-study-secret-kept-elsewhere\n")
    monkeypatch.delenv("COHORT_STUDY_SECRET", raising=False)
    monkeypatch.setenv("COHORT_STUDY_SECRET_FILE", str(secret))
    f, spec = _pseudonymised(tmp_path)
    [r] = study.load(f, table="participants", mapping=spec, validate=False)
    assert r.rows_loaded == 3


_MASKED_CASES = [AE, "fnr 01018012345", "NHS 943 476 5919", "SSN 123-45-6789", "DOB: 2 March 1980",
                 "født 01.02.1980", "b. 3/4/1975", "Name: Ole", "Mr. O'Brien", "ring 0161 496 0000"]


def test_the_sql_prefilter_keeps_every_value_the_screen_masks():
    # DuckDB (RE2) sends a value to Python only if PREFILTER matches: it must match them all
    import duckdb
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from cohort.identifiers import PREFILTER, mask_identifiers

    con = duckdb.connect()

    def kept(text: str) -> bool:
        return con.execute("select regexp_matches(?, ?)", [text, PREFILTER]).fetchall()[0][0]

    assert all(kept(t) and mask_identifiers(t) != t for t in _MASKED_CASES)

    @settings(max_examples=400, deadline=None)
    @given(st.text(alphabet="0123456789 +-().@/:abcDMPtr", max_size=30))
    def check(text: str) -> None:
        if mask_identifiers(text) != text:
            assert kept(text)

    check()


# -- typed columns: judged on the typed values and on the text of the records that fail --
def _assessments(tmp_path: Path, scores: list[str], *, quoted_newline: bool = False) -> Path:
    rows = [f"P{i},2021-01-{i % 28 + 1:02d},MADRS,{s}" for i, s in enumerate(scores)]
    if quoted_newline:  # records not one per line: the exact (careful) path reads the file
        rows[1] = 'P1,2021-01-02,"MAD\nRS",12'
    f = tmp_path / f"assessments_{quoted_newline}.csv"
    f.write_text("participant_id,assessed_on,instrument,score\n" + "\n".join(rows) + "\n")
    return f


@pytest.mark.parametrize("quoted_newline", [False, True])
def test_phone_numbers_in_a_numeric_column_are_refused_on_both_paths(study, tmp_path,
                                                                     quoted_newline):
    phones = [f"{22334455 + 7919 * i}" for i in range(3_000)] + ["12"] * 100
    f = _assessments(tmp_path, phones, quoted_newline=quoted_newline)
    n = 2_999 if quoted_newline else 3_000  # (the record with a line break holds a score)
    with pytest.raises(MappingError, match=rf"'score' \(mapped to assessments.score\) looks like "
                                           rf"a phone number \({n:,} of its 3,100 values\)"):
        study.load(f, table="assessments", validate=False)
    assert study.uploads().height == 0 and study.quarantine().height == 0


def test_scores_are_not_phone_numbers(study, tmp_path):
    f = _assessments(tmp_path, [str(i % 60) for i in range(3_000)] + ["12345678.5", "1e9"])
    [r] = study.load(f, table="assessments", validate=False)
    assert r.rows_loaded == 3_002


def test_e_mail_addresses_in_a_date_column_are_refused_not_quarantined(study, tmp_path):
    f = _file(tmp_path, "contact", EMAILS)
    text = f.read_text().replace(",2020-01-", ",x").replace("enrolled_on,", "enrolled_old,")
    f.write_text(text)
    spec = _spec(tmp_path, 'participant_id = "participant_id"\n').read_text()
    spec = spec.replace('enrolled_on = "enrolled_on"', 'enrolled_on = "contact"') + (
        '[tables.participants.drop]\ncolumns = ["enrolled_old"]\n')
    (tmp_path / "m.toml").write_text(spec)
    with pytest.raises(MappingError, match=r"'contact' \(mapped to participants.enrolled_on\) "
                                           r"looks like an e-mail address \(4 of its 4 values\)"):
        study.load(f, table="participants", mapping=tmp_path / "m.toml", validate=False)
    assert study.uploads().height == 0 and study.quarantine().height == 0
