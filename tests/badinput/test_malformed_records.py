"""Nothing lost in delimited text: whatever malformed records a file holds, every record
is loaded or quarantined with its true line, ``rows_read`` is the file's record count,
and no message or raw record quotes the text of a malformed line (which may hold a
dropped identifier).

Each file is built here from pieces whose fate the test knows (a good record, a malformed
one, a blank line); a piece's line is counted from the bytes written before it (line
feeds only), independently of the loader. Loads run on a real study with the validation
suites. Files whose records are one per line go through the fast path first (DuckDB
rejects the malformed line, which is read again); the others through the careful reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from cohort.delimited import MAX_RECORD_CHARS, MAX_RECORD_LINES
from cohort.errors import InputFileError

HEADER = "participant_id,assessed_on,instrument,score,email"
N_PARTICIPANTS = 400
MAPPING = """site_id = "S1"
[read]
encoding = "{encoding}"
[tables.assessments.columns]
participant_id = "participant_id"
assessed_on = "assessed_on"
instrument = "instrument"
score = "score"
[tables.assessments.drop]
columns = ["email"]
"""


def secret(k: int) -> str:
    """The dropped column's value of piece k: an e-mail that must never be stored."""
    return f"kari.nordmann{k}@hospital.example.org"


@dataclass
class Piece:
    text: str  # with its line end(s)
    fate: str  # "load", "parse" (quarantined, parse.record), "blank"
    pid: str | None = None


def good(k: int, *, email: str | None = None, quoted: bool = False, end: str = "\n") -> Piece:
    day = f"2020-{k // 28 % 12 + 1:02d}-{k % 28 + 1:02d}"
    instrument = '"MADRS"' if quoted else "MADRS"
    value = secret(k) if email is None else email
    return Piece(f"P{k},{day},{instrument},{k % 60},{value}{end}", "load", f"P{k}")


def bad(text: str) -> Piece:
    return Piece(text, "parse")


def blank(text: str = "\n") -> Piece:
    return Piece(text, "blank")


def goods(start: int, n: int, **kw) -> list[Piece]:
    return [good(k, **kw) for k in range(start, start + n)]


@pytest.fixture
def site(study, tmp_path: Path):
    """A study with participants P0-P399 loaded (assessments of others are orphans)."""
    people = tmp_path / "participants.csv"
    people.write_text(
        "participant_id,site_id,sex,birth_year,enrolled_on,diagnosis,baseline_weight_kg,"
        "prior_episodes,concomitant_antidepressant\n"
        + "".join(f"P{k},S1,female,1980,2019-01-01,TRD,70,0,no\n" for k in range(N_PARTICIPANTS)))
    [r] = study.load(people, table="participants", site="S1")
    assert r.rows_loaded == N_PARTICIPANTS, r.message
    return study


def write(tmp_path: Path, pieces: list[Piece], *, name: str = "a.csv", header_end: str = "\n",
          bom: bool = False, encoding: str = "utf-8") -> tuple[Path, Path, dict[int, Piece]]:
    """The file of ``pieces`` and its mapping; the first line of each record piece."""
    data = ("\ufeff" if bom else "") + HEADER + header_end
    at: dict[int, Piece] = {}
    for piece in pieces:
        line = data.count("\n") + 1
        if piece.fate != "blank":
            at[line] = piece
        data += piece.text
    path = tmp_path / name
    path.write_bytes(data.encode(encoding))
    mapping = tmp_path / "m.toml"
    mapping.write_text(MAPPING.format(encoding=encoding))
    return path, mapping, at


def check_every_record(study, path: Path, mapping: Path, at: dict[int, Piece]):
    """Load ``path``: each record is where its piece says, and nothing leaks."""
    [r] = study.load(path, table="assessments", mapping=mapping)
    assert r.status == "loaded", r.message
    assert r.rows_read == len(at), (r.rows_read, len(at))
    assert r.rows_read == r.rows_loaded + r.rows_quarantined
    stored = dict(study.query("select source_line, participant_id from store.assessments "
                              "where batch_id = ?", [r.batch_id]).rows())
    assert stored == {line: p.pid for line, p in at.items() if p.fate == "load"}
    q = study.quarantine(batch=r.batch_id)
    parse = q.filter(rule="parse.record")
    assert sorted(parse["source_line"]) == sorted(line for line, p in at.items() if p.fate == "parse")
    assert set(q["source_line"]) == set(parse["source_line"])  # no other reason in these files
    for message, line in parse.select("message", "source_line").iter_rows():
        assert message.startswith(f"line {line}:") or message.startswith(f"lines {line}-"), message
    leaked = [t for t in q["message"].to_list() + q["raw_record"].to_list() + q["value"].to_list()
              if t and re.search(r"kari\.nordmann\d+@|@hospital", t)]
    assert leaked == []
    assert r.rows_quarantined == q["source_line"].n_unique()
    return r, q


# Each case: pieces (with the malformed ones in known places).
CASES = {
    # fast path: DuckDB rejects the line, the line is read again
    "too_many_fields": [*goods(0, 30), bad(f"P30,2020-01-01,MADRS,3,{secret(30)},extra\n"),
                        *goods(31, 30)],
    "too_few_fields": [*goods(0, 30), bad(f"P30,{secret(30)}\n"), *goods(31, 30)],
    "quote_followed_by_text": [*goods(0, 30), bad(f'P30,"2020-01-01"x,MADRS,3,{secret(30)}\n'),
                               *goods(31, 30)],
    "truncated_last_record": [*goods(0, 40), bad(f'P40,2020-01-01,"MADRS,{secret(40)}\n')],
    "no_newline_at_end": [*goods(0, 40), good(40, end="")],
    "whitespace_line": [*goods(0, 30), bad("   \n"), *goods(31, 30)],
    # careful path: an unclosed quote (the rest of the file has no quote)
    "unclosed_quote_mid_file": [*goods(0, 30), bad(f'P30,"2020-01-01,MADRS,3,{secret(30)}\n'),
                                *goods(31, 60)],
    # an unclosed quote in a file with quoted fields after it: the next quote opens a field
    "unclosed_quote_then_quoted_fields": [
        *goods(0, 20), bad(f'P20,2020-01-01,MADRS,3,"{secret(20)}\n'), *goods(21, 5),
        *goods(26, 40, quoted=True)],
    # an unclosed quote whose next quote lies beyond any plausible record
    "unclosed_quote_over_max_lines": [
        *goods(0, 5), bad(f'P5,"2020-01-01,MADRS,3,{secret(5)}\n'),
        *goods(6, MAX_RECORD_LINES + 20), good(MAX_RECORD_LINES + 26, email='x"')],
    # quoted line breaks (in the dropped column) before and after a malformed record
    "quoted_newlines_around_malformed": [
        *goods(0, 10), good(10, email=f'"{secret(10)}\nsecond line\nthird"'), *goods(11, 10),
        bad(f'P21,"2020-01-01,MADRS,3,{secret(21)}\n'), *goods(22, 10),
        good(32, email=f'"{secret(32)}\r\nline two"'), bad(f"P33,2020-01-01,{secret(33)}\n"),
        *goods(34, 20)],
    "blank_lines_in_the_middle": [*goods(0, 10), blank(), *goods(10, 10), blank("\r\n"),
                                  bad(f"P20,2020-01-01,MADRS,{secret(20)}\n"), blank(),
                                  *goods(21, 20)],
    "lone_cr_inside_fields": [*goods(0, 10), good(10, email="a\rb"), *goods(11, 10),
                              good(21, email='"quoted\rcr"'),
                              bad(f'P22,"2020-01-01,MADRS\r,3,{secret(22)}\n'), *goods(23, 20)],
    "crlf_file": [*goods(0, 20, end="\r\n"), bad(f'P20,"2020-01-01,MADRS,{secret(20)}\r\n'),
                  good(21, email='"two\r\nlines"', end="\r\n"), *goods(22, 20, end="\r\n")],
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_record_is_loaded_or_quarantined_with_its_line(site, tmp_path, case):
    pieces = CASES[case]
    path, mapping, at = write(tmp_path, pieces, header_end="\r\n" if case == "crlf_file" else "\n")
    check_every_record(site, path, mapping, at)


def test_bom_and_malformed_records(site, tmp_path):
    pieces = [*goods(0, 20), bad(f'P20,"2020-01-01,MADRS,{secret(20)}\n'), *goods(21, 20)]
    path, mapping, at = write(tmp_path, pieces, bom=True)
    check_every_record(site, path, mapping, at)


def test_an_oversized_field_quarantines_its_record_only(site, tmp_path):
    huge = "x" * (MAX_RECORD_CHARS + 10)
    pieces = [*goods(0, 20), bad(f"P20,2020-01-01,MADRS,3,{huge}\n"), *goods(21, 20)]
    path, mapping, at = write(tmp_path, pieces)  # fast path: DuckDB rejects the long line
    _, q = check_every_record(site, path, mapping, at)
    assert "longer than 2,097,152 characters" in q["message"][0]
    # the same with a quoted line break elsewhere: the careful reader reads the file
    pieces2 = [*goods(100, 5), good(105, email='"a\nb"'), pieces[20], *goods(141, 20)]
    path2, mapping2, at2 = write(tmp_path, pieces2, name="b.csv")
    check_every_record(site, path2, mapping2, at2)


def test_an_oversized_quoted_field_spanning_lines_is_an_unclosed_quote(site, tmp_path):
    long_line = "y" * (MAX_RECORD_CHARS // 3)
    pieces = [*goods(0, 10), bad(f'P10,2020-01-01,MADRS,3,"{long_line}\n'),
              blank(long_line + "\n"), blank(long_line + "\n"), blank(long_line + '"\n'),
              *goods(14, 10)]
    # the three long lines are records of their own once the quote is taken as unclosed:
    # one field each, so malformed
    for p in pieces[11:14]:
        p.fate = "parse"
    path, mapping, at = write(tmp_path, pieces)
    _, q = check_every_record(site, path, mapping, at)
    first = q.filter(source_line=12)["message"][0]
    assert f"is not closed within {MAX_RECORD_CHARS:,} characters" in first
    assert "reading goes on at line 13" in first


def test_messages_name_line_problem_counts_and_columns(site, tmp_path):
    pieces = [*goods(0, 30), bad(f"P30,{secret(30)}\n"),
              bad(f'P31,2020-01-01,"MADRS,3,{secret(31)}\n'), *goods(32, 30)]
    path, mapping, at = write(tmp_path, pieces)
    _, q = check_every_record(site, path, mapping, at)
    messages = dict(q.select("source_line", "message").rows())
    assert messages[32] == ("line 32: 2 fields where the header has 5 (no value for 'instrument', "
                            "'score', 'email'); check the delimiter and quoting of this record")
    assert messages[33].startswith("line 33: a quote opens field 3 ('instrument') and is not closed")
    assert "reading goes on at line 34" in messages[33]


def _careful_count(data: bytes) -> int:
    """An independent count of the records of a file without quoted line breaks: its
    lines that are not blank, the header excepted."""
    return sum(1 for line in data.split(b"\n")[1:] if line.strip(b"\r"))


def test_rows_read_is_the_independent_count(site, tmp_path):
    pieces = [*goods(0, 50), bad(f'P50,"x,{secret(50)}\n'), blank(), *goods(51, 50),
              bad("P101,a,b,c,d,e,f\n"), good(102, end="")]
    path, mapping, at = write(tmp_path, pieces)
    r, _ = check_every_record(site, path, mapping, at)
    assert r.rows_read == _careful_count(path.read_bytes()) == 103


@pytest.mark.parametrize(("encoding", "byte"), [("cp1252", b"\x81"), ("cp1252", b"\x9d"),
                                                ("utf-8", b"\xe9")])
def test_bytes_that_do_not_decode_are_one_line_naming_file_line_and_encoding(
        site, tmp_path, encoding, byte):
    # a quoted line break sends the file to the careful reader; the bad byte is past it
    pieces = [*goods(0, 10), good(10, email='"a\nb"'), *goods(11, 10)]
    path, mapping, _ = write(tmp_path, pieces, encoding=encoding)
    data = path.read_bytes()
    lines = data.split(b"\n")
    lines[18] = lines[18].replace(b"MADRS", b"MAD" + byte + b"RS")
    path.write_bytes(b"\n".join(lines))
    before = site.counts()
    with pytest.raises(InputFileError) as info:
        site.load(path, table="assessments", mapping=mapping)
    message = str(info.value)
    assert "\n" not in message
    label = "UTF-8" if encoding == "utf-8" else encoding
    assert message.startswith(f"{path}: line 19: bytes that are not {label} ({byte!r})")
    assert site.counts() == before


def test_a_batch_rejected_by_the_fatal_fraction_accounts_for_every_record(site, tmp_path):
    pieces = [*goods(0, 10)]
    for k in range(10, 16):
        pieces.append(bad(f'P{k},"2020-01-01,MADRS,{secret(k)}\n'))
    path, mapping, at = write(tmp_path, pieces)
    [r] = site.load(path, table="assessments", mapping=mapping)
    assert (r.status, r.rows_read, r.rows_loaded, r.rows_quarantined) == ("rejected", 16, 0, 16)
    assert "6 of 16 records" in r.message and "20%" in r.message
    assert "none of its 16 records loaded" in r.message and "10 without a finding" in r.message
    q = site.quarantine(batch=r.batch_id)
    assert sorted(q["source_line"]) == list(range(12, 18))
    assert not any("@" in m for m in q["message"])


def _random_pieces(seed: int, n: int) -> list[Piece]:
    """Good and malformed records and blank lines in random order; every quote in them
    follows a delimiter and is followed by text, except the one closing a quoted field."""
    import random

    rng = random.Random(seed)
    makers = [
        lambda k: good(k),
        lambda k: good(k, email='"a\nb, c\nd"'),
        lambda k: good(k, email="lone\rcr"),
        lambda k: good(k, quoted=True),
        lambda k: bad(f"P{k},2020-01-01,MADRS,{secret(k)}\n"),
        lambda k: bad(f"P{k},2020-01-01,MADRS,3,{secret(k)},x\n"),
        lambda k: bad(f'P{k},"2020-01-01,MADRS,3,{secret(k)}\n'),
        lambda k: bad(f'P{k},"2020"x,MADRS,3,{secret(k)}\n'),
        lambda k: blank(),
        lambda k: blank("\r\n"),
    ]
    weights = [30, 3, 2, 5, 2, 2, 2, 1, 2, 1]
    pieces = [rng.choices(makers, weights)[0](k) for k in range(n)]
    if rng.random() < 0.5 and pieces[-1].text.endswith("\n") and pieces[-1].fate == "load":
        pieces[-1].text = pieces[-1].text[:-1]  # no line feed at the end
    return pieces


@pytest.mark.parametrize("seed", range(12))
def test_random_files_every_record_at_its_line(tmp_path, seed):
    """The staged records of random hostile files (no validation: many files, fast)."""
    import duckdb

    from cohort.io import stage_raw
    from cohort.mapping import ReadOptions
    from cohort.sourcefile import describe_file

    pieces = _random_pieces(seed, 300)
    path, _, at = write(tmp_path, pieces)
    con = duckdb.connect()
    _, rows = stage_raw(con, describe_file(path, digest=False), read=ReadOptions(), sheet=None,
                        target="raw")
    assert rows == len(at)
    staged = {line: (pid, error) for line, pid, error in con.execute(
        "select source_line, c0, _parse_error from raw").fetchall()}  # c0: participant_id
    assert {line for line, (_, e) in staged.items() if e is None} == {
        line for line, p in at.items() if p.fate == "load"}
    assert {line for line, (_, e) in staged.items() if e is not None} == {
        line for line, p in at.items() if p.fate == "parse"}
    assert all(staged[line][0] == p.pid for line, p in at.items() if p.fate == "load")
    assert not any("@" in e for _, e in staged.values() if e)
