"""Direct identifiers are refused, dropped without a trace, or pseudonymised."""

from __future__ import annotations

from pathlib import Path

import pytest

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
