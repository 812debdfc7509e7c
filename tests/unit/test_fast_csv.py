"""The fast path for delimited text (DuckDB reads and types the file in one pass; only
rejected and suspect rows go through the exact coercion) must give exactly what the
exact path gives on the whole file: the same rows, values, lines and quarantine.

Each case writes one file twice: as is (fast path) and with a blank line added at the
end, which sends the load down the careful path (every record as text, then the exact
coercion). The two studies must then hold the same rows and the same quarantine.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import cohort
import cohort.coerce
import cohort.delimited
import cohort.ingest
import cohort.sourcefile

PARTICIPANTS_MAPPING = """
site_id = "S1"
[read]
encoding = "{encoding}"
delimiter = ";"
decimal_comma = true
date_format = "%d.%m.%Y"
[tables.participants.columns]
participant_id = "pid"
sex = "sex"
birth_year = "born"
enrolled_on = "enrolled"
diagnosis = "dx"
baseline_weight_kg = "weight"
prior_episodes = "episodes"
concomitant_antidepressant = "on_ad"
"""

SESSIONS_MAPPING = """
site_id = "S2"
[tables.treatment_sessions.columns]
participant_id = "pid"
session_date = "date"
drug = { from = "drug", recode = { ket = "racemic_ketamine", esk = "esketamine" } }
route = "route"
dose_mg = { from = "dose", unit = "mg/kg" }
weight_kg = "weight"
setting = "setting"
"""

# values of each source column: well-formed ones first, then every kind of trouble
PARTICIPANTS = {
    "pid": ["P{i}", "Ø{i}", " P{i} ", "", '"P;{i}"', "p{i}", "\u00a0P{i}", "É{i}"],
    "sex": ["female", "male", "MALE", " female ", "Female", "", "f", "other"],
    "born": ["1980", "1975", " 1990 ", "1980.0", "1980.5", "", "abc", "32767", "1850", "1e3", "inf"],
    "enrolled": ["01.02.2020", "15.06.2021", "2020-02-01", "2020-02-01 10:00:00", " 01.03.2020 ",
                 "31.02.2020", "", "x", "2020/02/01"],
    "dx": ["TRD", "MDD", "mdd", "PTSD ", "bipolar", "other", ""],
    "weight": ["70,5", "82", "", "70.5", "-1", "1e9", "nan", "abc", "1.234,5", "0,0"],
    "episodes": ["0", "3", "", "-1", "2.5", " 4 ", "x"],
    "on_ad": ["yes", "no", "ja", "", "maybe", "TRUE", " Nein "],
}
SESSIONS = {
    "pid": ["P1", "P2", "", " P3", '"P""4"', '"P,5"'],
    "date": ["2021-03-04", "2021-03-05", "", "04.03.2021", "2021-02-30", "2021-03-04T10:00:00"],
    "drug": ["ket", "esk", "racemic_ketamine", "ESKETAMINE", "xyz", ""],
    "route": ["iv", "intranasal", "IV", "nasal", ""],
    "dose": ["0.5", "0.75", "", "-0.5", "abc", "inf", "1e-3", " 0.4 "],
    "weight": ["70", "81.5", "", "0", "abc", "-3", "1000"],
    "setting": ["clinic", "home", "", "Clinic", "ward"],
}


def _write(path: Path, values: dict[str, list[str]], *, delimiter: str, n: int, seed: int,
           encoding: str = "utf-8") -> None:
    rng = random.Random(seed)
    names = list(values)
    lines = [delimiter.join(names)]
    for i in range(n):
        # mostly well-formed rows, so that rejects and suspects come alone and in runs
        clean = rng.random() < 0.88
        row = [rng.choice(values[c][:2] if clean else values[c]).format(i=i) for c in names]
        shape = rng.random()
        if not clean and shape < 0.05:
            row.append("extra")  # too many fields
        elif not clean and shape < 0.08:
            row = row[:-1]  # too few fields
        lines.append(delimiter.join(row))
    # the first and last records are rejected (a date nobody can read), two in a row at the end
    bad_first = [values[c][0].format(i="x") for c in names]
    bad_first[names.index("enrolled" if "enrolled" in names else "date")] = "never"
    lines.insert(1, delimiter.join(bad_first))
    lines += [delimiter.join(bad_first).replace("x", "y"), delimiter.join(bad_first).replace("x", "z")]
    # the last line without a newline (as some exports end), for one seed
    path.write_text("\n".join(lines) + ("\n" if seed % 2 else ""), encoding=encoding)


_COERCE_CSV = cohort.ingest.coerce_csv


def _load(tmp_path: Path, name: str, csv: Path, mapping: Path, table: str, monkeypatch):
    taken: list[bool] = []

    def observed(*args, **kwargs):
        result = _COERCE_CSV(*args, **kwargs)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(cohort.ingest, "coerce_csv", observed)
    study = cohort.open(tmp_path / f"{name}.duckdb", create=True)
    [r] = study.load(csv, table=table, mapping=mapping, validate=False)
    rows = study.query(f"select * exclude (batch_id) from store.{table} order by source_line")
    quarantine = study.query(
        "select source_line, column_name, value, rule, message, raw_record from quarantine "
        "order by source_line, rule, column_name")
    study.close()
    return r, rows, quarantine, taken


@pytest.mark.parametrize(("table", "values", "mapping", "delimiter", "encoding"), [
    ("participants", PARTICIPANTS, PARTICIPANTS_MAPPING, ";", "latin-1"),
    ("participants", PARTICIPANTS, PARTICIPANTS_MAPPING, ";", "cp1252"),  # read from a UTF-8 copy
    ("treatment_sessions", SESSIONS, SESSIONS_MAPPING, ",", "utf-8"),
])
@pytest.mark.parametrize("block", [None, 257])
@pytest.mark.parametrize("seed", [1, 2])
def test_fast_path_gives_what_the_exact_path_gives(tmp_path, monkeypatch, table, values, mapping,
                                                   delimiter, encoding, block, seed):
    if block:  # lines to read again then lie in many blocks of the newline index, some across
        # two, and rejects in many blocks of kept rows
        monkeypatch.setattr(cohort.sourcefile, "BLOCK", block)
        monkeypatch.setattr(cohort.coerce, "_LINE_BLOCK", 7)
    if encoding == "cp1252":  # characters Latin-1 does not have
        values = {**values, "pid": [*values["pid"], "€{i}", "‘{i}’"]}
    spec = tmp_path / "site.toml"
    spec.write_text(mapping.replace("{encoding}", encoding))
    fast_csv = tmp_path / "fast.csv"
    _write(fast_csv, values, delimiter=delimiter, n=600, seed=seed, encoding=encoding)
    exact_csv = tmp_path / "exact.csv"
    text = fast_csv.read_bytes()
    # a blank line at the end: records no longer = lines, so the careful path reads it
    exact_csv.write_bytes(text + (b"\n" if text.endswith(b"\n") else b"\n\n"))

    fast = _load(tmp_path, "fast", fast_csv, spec, table, monkeypatch)
    exact = _load(tmp_path, "exact", exact_csv, spec, table, monkeypatch)
    assert fast[3] == [True] and exact[3] == [False]
    (r_fast, rows_fast, q_fast, _), (r_exact, rows_exact, q_exact, _) = fast, exact
    assert (r_fast.rows_read, r_fast.rows_loaded, r_fast.rows_quarantined) == (
        r_exact.rows_read, r_exact.rows_loaded, r_exact.rows_quarantined)
    assert r_fast.status == "loaded" and r_fast.rows_read == 603 and 0 < r_fast.rows_quarantined < r_fast.rows_read
    assert rows_fast.equals(rows_exact, null_equal=True)
    assert q_fast.equals(q_exact, null_equal=True)
    # the rejected first and last records are where they are in the file
    lines = set(q_fast["source_line"].to_list())
    assert {2, 603, 604} <= lines


def test_a_quoted_newline_takes_the_careful_path_and_keeps_true_lines(study, tmp_path):
    good = "".join(f"P{i},2020-01-{i:02d},MoCA,25\n" for i in range(4, 20))
    csv = tmp_path / "a.csv"
    csv.write_text('participant_id,assessed_on,instrument,score\nP1,2020-01-01,MADRS,10\n'
                   'P2,2020-01-02,"MoCA\n",20\nP3,2020-01-03,bad,5\n' + good)
    [r] = study.load(csv, table="assessments", validate=False)
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (19, 17, 2)
    q = study.quarantine(batch=r.batch_id)
    assert q["source_line"].to_list() == [3, 5]
    loaded = study.query("select source_line from store.assessments order by 1")
    assert loaded["source_line"].to_list() == [2] + list(range(6, 22))


def test_many_lines_to_read_again_are_read_by_duckdb_with_the_same_result(tmp_path, monkeypatch):
    spec = tmp_path / "site.toml"
    spec.write_text(SESSIONS_MAPPING)
    csv = tmp_path / "fast.csv"
    _write(csv, SESSIONS, delimiter=",", n=300, seed=3)
    few = _load(tmp_path, "few", csv, spec, "treatment_sessions", monkeypatch)
    monkeypatch.setattr(cohort.delimited, "_MANY_LINES", 3)  # every problem line now counts as many
    many = _load(tmp_path, "many", csv, spec, "treatment_sessions", monkeypatch)
    assert few[3] == many[3] == [True]
    assert few[0].rows_quarantined > 3
    assert few[1].equals(many[1], null_equal=True) and few[2].equals(many[2], null_equal=True)


@pytest.mark.parametrize("block", [None, 257])  # (257: the sample is of lines at block starts)
def test_a_typed_read_out_of_file_order_is_found_and_the_exact_path_takes_over(tmp_path, monkeypatch,
                                                                              block):
    if block:
        monkeypatch.setattr(cohort.sourcefile, "BLOCK", block)
    spec = tmp_path / "site.toml"
    spec.write_text(SESSIONS_MAPPING)
    csv = tmp_path / "fast.csv"
    _write(csv, SESSIONS, delimiter=",", n=3000, seed=4)
    in_order = _load(tmp_path, "in_order", csv, spec, "treatment_sessions", monkeypatch)
    assert in_order[3] == [True]
    # a read that gives the rows in another order, and a plan check that lets it through:
    # the lines read again no longer hold what the rows claiming them hold
    scan = cohort.coerce.csv_scan
    monkeypatch.setattr(cohort.coerce, "csv_scan", lambda *a, **k: f"select * from ({scan(*a, **k)}) "
                        "order by hash(pid, date, drug, dose)")
    monkeypatch.setattr(cohort.coerce, "_keeps_order", lambda *a: True)
    shuffled = _load(tmp_path, "shuffled", csv, spec, "treatment_sessions", monkeypatch)
    assert shuffled[3] == [False]
    assert shuffled[1].equals(in_order[1], null_equal=True)
    assert shuffled[2].equals(in_order[2], null_equal=True)


@pytest.mark.parametrize(("expression", "keeps"), [
    ("case c when 'a' then c when 'b' then c end", True),
    ("c in ('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j')", False),  # a MARK join
    ("list_contains(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'], c)", False),
])
def test_the_plan_of_a_typed_read_must_keep_the_file_order(tmp_path, expression, keeps):
    import duckdb

    csv = tmp_path / "a.csv"
    csv.write_text("c\na\nb\n")
    con = duckdb.connect()
    query = f"select {expression} as x from read_csv('{csv}', header = true)"
    assert cohort.coerce._keeps_order(con, query, {}) is keeps
