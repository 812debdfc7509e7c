"""Batches as a careful data manager expects them: corrections, rollbacks, the same load
again, and the site of a batch. Real study files, real loads of small CSV files."""

from __future__ import annotations

from pathlib import Path

import pytest

from cohort.errors import (
    AlreadyLoadedError,
    InputFileError,
    MappingError,
    NoSuchBatchError,
    OrphanRowsError,
    UserError,
)

PARTICIPANTS = ("participant_id,site_id,sex,birth_year,enrolled_on,diagnosis\n"
                "P1,S1,female,1980,2020-01-10,TRD\nP2,S1,male,1975,2020-02-01,MDD\n"
                "P3,S1,female,1990,2020-03-15,PTSD\n")
ASSESSMENTS = "participant_id,assessed_on,instrument,score\n"


def _csv(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def _assessments(folder: Path, name: str, *rows: str) -> Path:
    return _csv(folder, name, ASSESSMENTS + "".join(r + "\n" for r in rows))


def _load(study, path: Path, table: str = "assessments", **kw):
    [r] = study.load(path, table=table, validate=False, **kw)
    return r


def _upload(study, batch: int) -> dict:
    return study.query("select * from uploads where batch_id = ?", [batch]).row(0, named=True)


def _in_force(study) -> set[int]:
    return set(study.query("select batch_id from uploads where status = 'loaded'")["batch_id"])


@pytest.fixture
def enrolled(study, tmp_path):
    """A study with participants P1-P3 of site S1 (batch 1)."""
    r = _load(study, _csv(tmp_path, "participants.csv", PARTICIPANTS), "participants", site="S1")
    assert (r.status, r.batch_id) == ("loaded", 1)
    return study


# -- corrections (--replaces) ---------------------------------------------------------------

def test_a_rejected_correction_supersedes_nothing(enrolled, tmp_path):
    first = _load(enrolled, _assessments(tmp_path, "a.csv", "P1,2020-02-01,MADRS,30",
                                         "P2,2020-03-01,MoCA,27"))
    # two of three rows cannot be read: more than the 20% allowed, the batch is rejected
    bad = _load(enrolled, _assessments(tmp_path, "a_fixed.csv", "P1,2020-02-01,MADRS,31",
                                       "P2,03/01/2020,MoCA,27", "P3,2020-13-01,MoCA,20"),
                replaces=first.batch_id)
    assert bad.status == "rejected" and f"batch {first.batch_id} stays in force" in bad.message
    old = _upload(enrolled, first.batch_id)
    assert (old["status"], old["ended_at"]) == ("loaded", None)
    assert _upload(enrolled, bad.batch_id)["replaces"] == first.batch_id
    assert enrolled.counts()["assessments"] == 2
    assert enrolled.as_of("assessments", bad.batch_id).height == 2
    # the batch can still be corrected afterwards
    good = _load(enrolled, _assessments(tmp_path, "a_fixed2.csv", "P1,2020-02-01,MADRS,31"),
                 replaces=first.batch_id)
    assert good.status == "loaded" and _upload(enrolled, first.batch_id)["status"] == "superseded"
    assert enrolled.counts()["assessments"] == 1


def test_replaces_takes_only_a_batch_of_the_same_table(enrolled, tmp_path):
    before = enrolled.uploads().height
    f = _assessments(tmp_path, "a.csv", "P1,2020-02-01,MADRS,30")
    with pytest.raises(UserError, match="batch 1 holds participants of site S1, this load is "
                                        "assessments of site S1"):
        _load(enrolled, f, replaces=1)
    assert enrolled.uploads().height == before and _in_force(enrolled) == {1}


def test_replaces_takes_only_a_batch_of_the_same_site(enrolled, tmp_path):
    other = _csv(tmp_path, "p_s2.csv", PARTICIPANTS.replace(",S1,", ",S2,"))
    with pytest.raises(UserError, match="batch 1 holds participants of site S1, this load is "
                                        "participants of site S2"):
        _load(enrolled, other, "participants", site="S2", replaces=1)
    a = _load(enrolled, _assessments(tmp_path, "a.csv", "P1,2020-02-01,MADRS,30"), site="S1")
    with pytest.raises(UserError, match=f"batch {a.batch_id} holds assessments of site S1, "
                                        "this load is assessments of site S2"):
        _load(enrolled, _assessments(tmp_path, "b.csv", "P1,2020-02-01,MADRS,31"), site="S2",
              replaces=a.batch_id)
    assert _in_force(enrolled) == {1, a.batch_id}


def test_a_correction_without_a_site_is_of_the_site_it_corrects(enrolled, tmp_path):
    a = _load(enrolled, _assessments(tmp_path, "a.csv", "P1,2020-02-01,MADRS,30"), site="S1")
    b = _load(enrolled, _assessments(tmp_path, "b.csv", "P1,2020-02-01,MADRS,31"),
              replaces=a.batch_id)
    assert b.status == "loaded" and _upload(enrolled, b.batch_id)["site_id"] == "S1"
    assert "replaces batch" in b.message


def test_replaces_takes_only_a_batch_in_force(enrolled, tmp_path):
    a = _load(enrolled, _assessments(tmp_path, "a.csv", "P1,2020-02-01,MADRS,30"))
    _load(enrolled, _assessments(tmp_path, "b.csv", "P1,2020-02-01,MADRS,31"), replaces=a.batch_id)
    with pytest.raises(UserError, match="status: superseded"):
        _load(enrolled, _assessments(tmp_path, "c.csv", "P1,2020-02-01,MADRS,32"),
              replaces=a.batch_id)
    with pytest.raises(NoSuchBatchError, match="no batch 99: the study has batches 1 to "):
        _load(enrolled, _assessments(tmp_path, "d.csv", "P1,2020-02-01,MADRS,33"), replaces=99)


# -- rollbacks ------------------------------------------------------------------------------

def test_rolling_back_a_correction_puts_what_it_replaced_back_in_force(enrolled, tmp_path):
    a = _load(enrolled, _assessments(tmp_path, "a.csv", "P1,2020-02-01,MADRS,30",
                                     "P2,2020-03-01,MoCA,27"))
    b = _load(enrolled, _assessments(tmp_path, "b.csv", "P1,2020-02-01,MADRS,31"),
              replaces=a.batch_id)
    assert _upload(enrolled, a.batch_id)["ended_at"] is not None
    result = enrolled.rollback(b.batch_id)
    assert (result.batch_id, result.restored, result.orphans) == (b.batch_id, a.batch_id, {})
    assert f"batch {a.batch_id}, which it replaced, is in force again" in result.message
    restored = _upload(enrolled, a.batch_id)
    assert (restored["status"], restored["ended_at"]) == ("loaded", None)
    assert _upload(enrolled, b.batch_id)["status"] == "rolled_back"
    assert sorted(enrolled.table("assessments")["score"]) == [27.0, 30.0]
    c = _load(enrolled, _assessments(tmp_path, "c.csv", "P3,2020-04-01,MoCA,22"))
    # every past state can be asked for again
    assert sorted(enrolled.as_of("assessments", a.batch_id)["score"]) == [27.0, 30.0]
    assert sorted(enrolled.as_of("assessments", b.batch_id)["score"]) == [31.0]
    assert sorted(enrolled.as_of("assessments", c.batch_id)["score"]) == [22.0, 27.0, 30.0]


def test_a_correction_of_a_correction_rolls_back_one_step(enrolled, tmp_path):
    a = _load(enrolled, _assessments(tmp_path, "a.csv", "P1,2020-02-01,MADRS,30"))
    b = _load(enrolled, _assessments(tmp_path, "b.csv", "P1,2020-02-01,MADRS,31"), replaces=a.batch_id)
    c = _load(enrolled, _assessments(tmp_path, "c.csv", "P1,2020-02-01,MADRS,32"), replaces=b.batch_id)
    assert enrolled.rollback(c.batch_id).restored == b.batch_id
    assert _in_force(enrolled) == {1, b.batch_id}
    assert enrolled.rollback(b.batch_id).restored == a.batch_id
    assert _in_force(enrolled) == {1, a.batch_id}
    for batch, score in ((a, 30.0), (b, 31.0), (c, 32.0)):
        assert enrolled.as_of("assessments", batch.batch_id)["score"].to_list() == [score]


def test_a_rollback_that_would_orphan_rows_is_refused_naming_the_counts(enrolled, tmp_path):
    _load(enrolled, _assessments(tmp_path, "a.csv", "P1,2020-02-01,MADRS,30",
                                 "P2,2020-03-01,MoCA,27", "P2,2020-04-01,MoCA,26"))
    _load(enrolled, _csv(tmp_path, "x.csv", "participant_id,exit_date,reason\nP3,2021-01-01,withdrew\n"),
          "exits")
    # P1 is also held by a second participants batch in force: its rows are not orphaned
    _load(enrolled, _csv(tmp_path, "p1.csv", PARTICIPANTS.splitlines()[0] + "\n"
                         + PARTICIPANTS.splitlines()[1] + "\n"), "participants")
    with pytest.raises(OrphanRowsError, match=r"assessments 2, exits 1\).*--force"):
        enrolled.rollback(1)
    assert 1 in _in_force(enrolled)
    result = enrolled.rollback(1, force=True)
    assert result.orphans == {"assessments": 2, "exits": 1}
    assert "assessments 2, exits 1" in result.message
    assert 1 not in _in_force(enrolled)


def test_rolling_back_a_participants_correction_keeps_what_it_restores(enrolled, tmp_path):
    _load(enrolled, _assessments(tmp_path, "a.csv", "P1,2020-02-01,MADRS,30"))
    fixed = _load(enrolled, _csv(tmp_path, "p_fixed.csv", PARTICIPANTS.replace("1980", "1981")),
                  "participants", replaces=1)
    result = enrolled.rollback(fixed.batch_id)  # batch 1 comes back: P1 keeps its participant
    assert (result.restored, result.orphans) == (1, {})


def test_rollback_of_a_batch_not_in_force(enrolled):
    enrolled.rollback(1)
    with pytest.raises(UserError, match="batch 1 is not in force \\(status: rolled_back\\)"):
        enrolled.rollback(1)
    with pytest.raises(NoSuchBatchError, match="no batch 42: the study has batch"):
        enrolled.rollback(42)


# -- the same load again ----------------------------------------------------------------------

def test_the_same_load_again_is_refused_whatever_the_status(enrolled, tmp_path):
    f = _assessments(tmp_path, "a.csv", "P1,2020-02-01,MADRS,30")
    a = _load(enrolled, f)
    with pytest.raises(AlreadyLoadedError, match=f"batch {a.batch_id} \\(status loaded\\)"):
        _load(enrolled, f)
    b = _load(enrolled, _assessments(tmp_path, "b.csv", "P1,2020-02-01,MADRS,31"), replaces=a.batch_id)
    with pytest.raises(AlreadyLoadedError, match=f"batch {a.batch_id} \\(status superseded\\)"):
        _load(enrolled, f)
    enrolled.rollback(b.batch_id)
    with pytest.raises(AlreadyLoadedError, match=f"batch {b.batch_id} \\(status rolled_back\\)"):
        _load(enrolled, tmp_path / "b.csv")
    copy = _csv(tmp_path, "b_again.csv", (tmp_path / "b.csv").read_text())  # by content, not name
    with pytest.raises(AlreadyLoadedError, match="b_again.csv is already loaded"):
        _load(enrolled, copy)
    assert enrolled.uploads().height == 3
    again = _load(enrolled, copy, force=True)
    assert again.status == "loaded" and again.batch_id == 4
    assert sorted(enrolled.table("assessments")["score"]) == [30.0, 31.0]


def test_a_rejected_batch_can_be_loaded_again(enrolled, tmp_path):
    f = _assessments(tmp_path, "bad.csv", "P1,2020-02-01,MADRS,30", "P1,03/01/2020,MADRS,31",
                     "P1,2020-13-01,MADRS,32")
    assert _load(enrolled, f).status == "rejected"
    assert _load(enrolled, f).status == "rejected"  # judged again, not refused as a duplicate


def _two_table_mapping(path: Path, *, exit_reason: str = "completed", comment: str = "") -> Path:
    path.write_text(f'''{comment}
site_id = "S1"
[tables.exits.columns]
participant_id = "pid"
exit_date = "day"
reason = {{ from = "kind", recode = {{ x = "{exit_reason}" }} }}
[tables.events.columns]
participant_id = "pid"
event_date = "day"
event_type = {{ from = "kind", recode = {{ x = "relapse" }} }}
''')
    return path


def test_the_same_file_for_another_table_or_mapping_is_a_new_batch(enrolled, tmp_path):
    f = _csv(tmp_path, "site.csv", "pid,day,kind\nP1,2021-01-01,x\nP2,2021-02-01,x\n")
    spec = _two_table_mapping(tmp_path / "m.toml")
    exits = _load(enrolled, f, "exits", mapping=spec)
    events = _load(enrolled, f, "events", mapping=spec)
    assert (exits.status, events.status) == ("loaded", "loaded") and events.rows_loaded == 2
    assert enrolled.counts()["events"] == 2
    other = _load(enrolled, f, "exits", mapping=_two_table_mapping(tmp_path / "m2.toml",
                                                                    exit_reason="withdrew"))
    assert other.status == "loaded" and other.batch_id == exits.batch_id + 2
    # the same mapping written otherwise (a comment, another file) is the same load
    same = _two_table_mapping(tmp_path / "m3.toml", comment="# re-saved by the site")
    with pytest.raises(AlreadyLoadedError, match=f"batch {exits.batch_id} \\(status loaded\\)"):
        _load(enrolled, f, "exits", mapping=same)


def test_a_change_to_another_table_of_the_mapping_is_the_same_load(enrolled, tmp_path):
    f = _csv(tmp_path, "site.csv", "pid,day,kind\nP1,2021-01-01,x\n")
    a = _load(enrolled, f, "events", mapping=_two_table_mapping(tmp_path / "m.toml"))
    with pytest.raises(AlreadyLoadedError, match=f"batch {a.batch_id}"):
        _load(enrolled, f, "events", mapping=_two_table_mapping(tmp_path / "m2.toml",
                                                                exit_reason="withdrew"))


def test_two_files_of_one_delivery_with_the_same_content_load_nothing(enrolled, tmp_path):
    folder = tmp_path / "delivery"
    folder.mkdir()
    _assessments(folder, "a.csv", "P1,2020-02-01,MADRS,30")
    _assessments(folder, "b.csv", "P1,2020-02-01,MADRS,30")
    _assessments(folder, "c.csv", "P2,2020-02-01,MADRS,30")  # the same size, another content
    with pytest.raises(AlreadyLoadedError, match="b.csv has the same content as .*a.csv"):
        enrolled.load(folder, table="assessments", validate=False)
    assert enrolled.uploads().height == 1
    assert len(enrolled.load(folder, table="assessments", validate=False, force=True)) == 3


# -- the site of a batch ----------------------------------------------------------------------

def test_site_and_the_mappings_site_must_agree(enrolled, tmp_path):
    spec = tmp_path / "m.toml"
    spec.write_text('site_id = "S1"\n[tables.assessments.columns]\nparticipant_id = "participant_id"\n'
                    'assessed_on = "assessed_on"\ninstrument = "instrument"\nscore = "score"\n')
    f = _assessments(tmp_path, "a.csv", "P1,2020-02-01,MADRS,30")
    with pytest.raises(MappingError, match="--site S2 and the mapping's site_id 'S1'"):
        _load(enrolled, f, mapping=spec, site="S2")
    assert enrolled.uploads().height == 1
    r = _load(enrolled, f, mapping=spec, site="S1")
    assert _upload(enrolled, r.batch_id)["site_id"] == "S1"


def test_the_uploads_site_is_the_rows_site(study, tmp_path):
    f = _csv(tmp_path, "p.csv", PARTICIPANTS)
    with pytest.raises(InputFileError, match="p.csv: line 2, column site_id: 'S1' is not the "
                                             "site of this load \\('S2'"):
        _load(study, f, "participants", site="S2")
    assert study.uploads().height == 0
    r = _load(study, f, "participants")  # no site given: the rows'
    assert _upload(study, r.batch_id)["site_id"] == "S1"
    spec = tmp_path / "m.toml"  # a mapping site_id fills rows without one
    spec.write_text('site_id = "S9"\n[tables.participants.columns]\n' + "".join(
        f'{c} = "{c}"\n' for c in ("participant_id", "sex", "birth_year", "enrolled_on", "diagnosis")))
    g = _csv(tmp_path, "p9.csv", "participant_id,sex,birth_year,enrolled_on,diagnosis\n"
             "Q1,male,1970,2020-01-01,MDD\n")
    r9 = _load(study, g, "participants", mapping=spec)
    assert _upload(study, r9.batch_id)["site_id"] == "S9"
    assert study.query("select distinct site_id from participants where batch_id = ?",
                       [r9.batch_id])["site_id"].to_list() == ["S9"]


def test_rows_of_several_sites_without_a_site_are_refused(study, tmp_path):
    f = _csv(tmp_path, "p.csv", PARTICIPANTS.replace("P3,S1", "P3,S2"))
    with pytest.raises(InputFileError, match="2 sites \\('S1' from line 2, 'S2' from line 4\\)"):
        _load(study, f, "participants")


def test_every_batch_keeps_its_counts(enrolled, tmp_path):
    a = _load(enrolled, _assessments(tmp_path, "a.csv", "P1,2020-02-01,MADRS,30",
                                     "P1,2020-03-01,MADRS,x", *[f"P2,2020-0{m}-01,MoCA,2{m}"
                                                                for m in range(1, 8)]))
    assert (a.rows_read, a.rows_loaded, a.rows_quarantined) == (9, 8, 1)
    assert enrolled.query("select count(*) from uploads where rows_read <> rows_loaded + "
                          "rows_quarantined").item() == 0


def test_a_correction_validated_by_the_suites(enrolled, tmp_path):
    [a] = enrolled.load(_assessments(tmp_path, "a.csv", "P1,2020-02-01,MADRS,30"),
                        table="assessments")
    [b] = enrolled.load(_assessments(tmp_path, "b.csv", "P1,2020-02-01,MADRS,31"),
                        table="assessments", replaces=a.batch_id)
    assert b.status == "loaded" and _in_force(enrolled) == {1, b.batch_id}


# -- the monthly re-run of a site folder (skip_loaded) ---------------------------------------

def _month_folder(tmp_path: Path) -> Path:
    """A site folder of three monthly files (loaded below) and the path of a fourth."""
    folder = tmp_path / "oslo"
    folder.mkdir()
    for month, score in (("07", 30), ("08", 31), ("09", 32)):
        _assessments(folder, f"visits_2026-{month}.csv", f"P1,2026-{month}-01,MADRS,{score}")
    return folder


def test_skip_loaded_loads_only_the_new_file_and_names_the_skipped(enrolled, tmp_path):
    folder = _month_folder(tmp_path)
    first = enrolled.load(folder, table="assessments", validate=False)
    assert [r.batch_id for r in first] == [2, 3, 4]
    _assessments(folder, "visits_2026-10.csv", "P2,2026-10-01,MADRS,20")
    again = enrolled.load(folder, table="assessments", validate=False, skip_loaded=True)
    assert [(Path(r.file).name, r.status, r.batch_id, r.rows_loaded) for r in again] == [
        ("visits_2026-07.csv", "skipped", 2, 0), ("visits_2026-08.csv", "skipped", 3, 0),
        ("visits_2026-09.csv", "skipped", 4, 0), ("visits_2026-10.csv", "loaded", 5, 1)]
    assert again[0].message == "already loaded as batch 2, skipped"
    assert enrolled.uploads().height == 5
    assert sorted(enrolled.table("assessments")["score"]) == [20.0, 30.0, 31.0, 32.0]


def test_without_skip_loaded_the_refusal_lists_every_loaded_file_and_loads_nothing(enrolled, tmp_path):
    folder = _month_folder(tmp_path)
    enrolled.load(folder, table="assessments", validate=False)
    _assessments(folder, "visits_2026-10.csv", "P2,2026-10-01,MADRS,20")
    with pytest.raises(AlreadyLoadedError) as err:
        enrolled.load(folder, table="assessments", validate=False)
    message = str(err.value)
    for month, batch in (("07", 2), ("08", 3), ("09", 4)):
        assert f"visits_2026-{month}.csv is already loaded into assessments without a mapping " \
               f"as batch {batch} (status loaded)" in message
    assert "10.csv" not in message and "--skip-loaded" in message and "--force" in message
    assert enrolled.uploads().height == 4


def test_skip_loaded_skips_only_the_same_load(enrolled, tmp_path):
    folder = _month_folder(tmp_path)
    enrolled.load(folder, table="assessments", validate=False)
    changed = folder / "visits_2026-08.csv"
    changed.write_text(changed.read_text().replace("31", "34"))  # one byte, the same size
    again = enrolled.load(folder, table="assessments", validate=False, skip_loaded=True)
    assert [r.status for r in again] == ["skipped", "loaded", "skipped"]
    # the same file for another table is another load: it is not skipped
    f = _csv(tmp_path, "site.csv", "pid,day,kind\nP1,2021-01-01,x\n")
    spec = _two_table_mapping(tmp_path / "m.toml")
    exits = _load(enrolled, f, "exits", mapping=spec)
    events = _load(enrolled, f, "events", mapping=spec, skip_loaded=True)
    assert (events.status, events.rows_loaded) == ("loaded", 1)
    assert _load(enrolled, f, "exits", mapping=spec, skip_loaded=True).batch_id == exits.batch_id


def test_skip_loaded_names_an_earlier_batch_out_of_force_and_never_skips_a_copy(enrolled, tmp_path):
    f = _assessments(tmp_path, "a.csv", "P1,2020-02-01,MADRS,30")
    a = _load(enrolled, f)
    enrolled.rollback(a.batch_id)
    r = _load(enrolled, f, skip_loaded=True)  # rolled back on purpose: the re-run keeps it out
    assert (r.status, r.batch_id, r.message) == (
        "skipped", a.batch_id, f"already loaded as batch {a.batch_id} (status rolled_back), skipped")
    folder = tmp_path / "new"
    folder.mkdir()
    _assessments(folder, "b.csv", "P2,2020-02-01,MADRS,30")
    _assessments(folder, "b_copy.csv", "P2,2020-02-01,MADRS,30")  # neither was loaded before
    with pytest.raises(AlreadyLoadedError, match="b_copy.csv has the same content as .*b.csv"):
        enrolled.load(folder, table="assessments", validate=False, skip_loaded=True)
    with pytest.raises(UserError, match="give one of the two"):
        _load(enrolled, f, force=True, skip_loaded=True)
