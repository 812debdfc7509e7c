"""Excel workbooks as sites send them: any declared dimension or stray far cell (read with
bounded memory), hidden sheets, blank rows, every kind of cell, old .xls files.

Workbooks are written with xlsxwriter/openpyxl in tmp_path; the odd ones (a sheet that
declares A1:XFD1048576, a cell at XFD1048576) by editing the sheet's XML in the zip.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path

import openpyxl
import polars as pl
import pytest
import xlsxwriter

from cohort.errors import InputFileError, MappingError

HEADER = ["participant_id", "assessed_on", "instrument", "score"]
ROWS = [["P1", "2020-02-01", "MADRS", 30], ["P2", "2020-03-01", "MoCA", 27],
        ["P3", "2020-04-01", "MADRS", 12]]
SHEET = "xl/worksheets/sheet1.xml"
#: the address space the reading process may use: the old reader asked for ~512 GB
LIMIT_BYTES = 3 << 30


def _workbook(path: Path, rows: list[list[object]] | dict[int, list[object]], *,
              sheet: str = "visits") -> Path:
    """A workbook with HEADER in row 1 and ``rows`` below (a dict: sheet row -> row)."""
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet(sheet)
    ws.write_row(0, 0, HEADER)
    placed = rows if isinstance(rows, dict) else {i + 2: r for i, r in enumerate(rows)}
    for number, row in placed.items():
        ws.write_row(number - 1, 0, row)
    wb.close()
    return path


def _edit(path: Path, member: str, edit) -> Path:
    """Rewrite one part of the workbook's zip with ``edit(xml) -> xml``."""
    with zipfile.ZipFile(path) as zf:
        parts = {i.filename: zf.read(i) for i in zf.infolist()}
    parts[member] = edit(parts[member].decode()).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return path


def _load(study, path: Path, mapping: Path | None = None):
    [r] = study.load(path, table="assessments", validate=False, mapping=mapping)
    bad = study.query("select * from uploads where rows_read <> rows_loaded + rows_quarantined")
    assert bad.height == 0
    return r


def _lines(study, batch: int) -> list[int]:
    return study.query(f"select source_line from store.assessments where batch_id = {batch} "
                       "order by 1")["source_line"].to_list()


def _quarantined(study, batch: int) -> list[tuple[object, ...]]:
    return [tuple(r) for r in study.quarantine(batch=batch).select(
        "source_line", "column_name", "value", "rule").sort("source_line", "rule").iter_rows()]


# --- 1. bounded memory, whatever the sheet declares -------------------------------------

_READ_IN_A_BOUNDED_PROCESS = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
from pathlib import Path
import duckdb
from cohort.errors import UserError
from cohort.io import stage_raw
from cohort.mapping import ReadOptions
from cohort.sourcefile import describe_file
con = duckdb.connect()
try:
    header, n = stage_raw(con, describe_file(Path(sys.argv[1])), read=ReadOptions(), sheet=None,
                          target="raw")
    out = {{"header": header, "lines": [r[0] for r in con.execute(
        "select source_line from raw order by 1").fetchall()]}}
except UserError as exc:
    out = {{"error": str(exc)}}
# this process's own peak (ru_maxrss keeps the parent's across exec)
out["peak_rss_mb"] = next(int(line.split()[1]) for line in open("/proc/self/status")
                          if line.startswith("VmHWM:")) / 1024
print(json.dumps(out))
"""


def _read_bounded(path: Path) -> dict[str, object]:
    """Stage ``path`` in a child process whose address space is capped at LIMIT_BYTES (an
    unbounded reader fails there, cleanly, instead of taking the machine)."""
    done = subprocess.run([sys.executable, "-c", _READ_IN_A_BOUNDED_PROCESS.format(limit=LIMIT_BYTES),
                           str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"the read failed (exit {done.returncode}): {done.stderr[-800:]}"
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["peak_rss_mb"] < 600, out  # imports of duckdb and polars: ~150 MB
    return out


def _declare_whole_grid(xml: str) -> str:
    start = xml.index("<dimension ")
    return xml[:start] + '<dimension ref="A1:XFD1048576"/>' + xml[xml.index("/>", start) + 2:]


def _stray_cell(content: str) -> callable:
    def edit(xml: str) -> str:
        return xml.replace("</sheetData>", f'<row r="1048576"><c r="XFD1048576"{content}</row>'
                                           "</sheetData>")
    return edit


@pytest.mark.parametrize("edit", [
    _declare_whole_grid,
    _stray_cell(' s="0"/>'),                  # formatted, empty
    _stray_cell(' t="inlineStr"><is><t></t></is></c>'),  # an empty string
], ids=["declared-A1:XFD1048576", "empty-styled-cell-XFD1048576", "empty-string-XFD1048576"])
def test_a_workbook_declaring_or_touching_the_whole_grid_reads_in_bounded_memory(tmp_path, edit):
    book = _edit(_workbook(tmp_path / "visits.xlsx", ROWS), SHEET, edit)
    assert book.stat().st_size < 10_000
    out = _read_bounded(book)
    assert out["header"] == HEADER and out["lines"] == [2, 3, 4]


def test_a_value_far_beyond_the_header_is_one_line_naming_the_cell(tmp_path):
    book = _edit(_workbook(tmp_path / "visits.xlsx", ROWS), SHEET,
                 _stray_cell(' t="inlineStr"><is><t>note</t></is></c>'))
    out = _read_bounded(book)
    assert "\n" not in out["error"]
    assert "sheet 'visits': cell XFD1048576 holds a value but column XFD has no header" \
        in out["error"]


def test_a_genuine_last_row_keeps_its_number(tmp_path, study):
    book = _workbook(tmp_path / "visits.xlsx", {2: ROWS[0], 1_048_576: ROWS[1]})
    assert _read_bounded(book)["lines"] == [2, 1_048_576]
    r = _load(study, book)
    assert (r.rows_read, r.rows_loaded) == (2, 2) and _lines(study, r.batch_id) == [2, 1_048_576]


# --- 2. which sheet ---------------------------------------------------------------------

def _two_sheets(path: Path) -> Path:
    wb = openpyxl.Workbook()
    old = wb.active
    old.title = "old export"
    old.append(["id", "whatever"])
    old.append(["X", 1])
    old.sheet_state = "hidden"
    data = wb.create_sheet("visits")
    for row in [HEADER, *ROWS]:
        data.append(row)
    wb.active = 1
    wb.save(path)
    return path


def test_a_hidden_first_sheet_is_passed_over_for_the_first_visible_one(tmp_path, study):
    r = _load(study, _two_sheets(tmp_path / "visits.xlsx"))
    assert (r.status, r.rows_loaded) == ("loaded", 3)
    assert _lines(study, r.batch_id) == [2, 3, 4]


def test_a_named_sheet_that_does_not_exist_lists_the_sheets(tmp_path, study):
    mapping = tmp_path / "site.toml"
    mapping.write_text('site_id = "S1"\n[tables.assessments]\nsheet = "Visits 2020"\n'
                       "[tables.assessments.columns]\n"
                       + "".join(f'{c} = "{c}"\n' for c in HEADER))
    with pytest.raises(InputFileError) as err:
        _load(study, _two_sheets(tmp_path / "visits.xlsx"), mapping)
    assert "\n" not in str(err.value)
    assert ("no worksheet named 'Visits 2020'; its worksheets are 'old export' (hidden), "
            "'visits': set `sheet` in the mapping") in str(err.value)
    assert study.uploads().height == 0


def test_a_named_hidden_sheet_is_read(tmp_path):
    from cohort.excel import read_sheet

    sheet = read_sheet(_two_sheets(tmp_path / "visits.xlsx"), sheet="old export")
    assert (sheet.sheet, sheet.frame.columns, sheet.rows.to_list()) == ("old export", ["id", "whatever"], [2])


# --- 3. a line is the sheet row ---------------------------------------------------------

def test_blank_rows_are_skipped_and_every_row_keeps_its_sheet_number(tmp_path, study):
    wb = xlsxwriter.Workbook(tmp_path / "visits.xlsx")
    ws = wb.add_worksheet("visits")
    ws.write_row(2, 1, HEADER)  # the header in row 3, from column B
    placed = {4: ROWS[0], 6: ["P2", "2020-03-01", "MoCA", "n/a"],
              **{n: [f"P{n}", "2020-04-01", "MADRS", n] for n in range(9, 14)}}
    for number, row in placed.items():
        ws.write_row(number - 1, 1, row)
    ws.write_blank(6, 1, None, wb.add_format({"bold": True}))  # row 7: formatted, empty
    wb.close()
    r = _load(study, tmp_path / "visits.xlsx")
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (7, 6, 1)
    assert _lines(study, r.batch_id) == [4, 9, 10, 11, 12, 13]
    assert _quarantined(study, r.batch_id) == [(6, "score", "n/a", "coerce.score")]


# --- 4. every kind of cell --------------------------------------------------------------

def test_cells_of_every_type_come_out_as_text_the_coercion_reads(tmp_path, study):
    path = tmp_path / "participants.xlsx"
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("baseline")
    day = wb.add_format({"num_format": "dd/mm/yyyy"})
    moment = wb.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    ws.write_row(0, 0, ["participant_id", "site_id", "sex", "birth_year", "enrolled_on",
                        "diagnosis", "baseline_weight_kg", "concomitant_antidepressant"])
    ws.write_row(1, 0, ["P1", "S1", "female", 1980])
    ws.write_datetime(1, 4, datetime(2020, 1, 10), day)
    ws.write_row(1, 5, ["TRD", 71.25])
    ws.write_boolean(1, 7, True)
    ws.write_row(2, 0, ["P2", "S1", "male"])
    ws.write_formula(2, 3, "=1970+5", None, 1975)              # a formula: its cached value
    ws.write_datetime(2, 4, datetime(2020, 2, 1, 14, 30), moment)
    ws.write_formula(2, 5, '="M"&"DD"', None, "MDD")
    ws.write_number(2, 6, 0.1 + 0.2)                           # 0.30000000000000004 in the file
    ws.write_boolean(2, 7, False)
    ws.write_row(3, 0, ["P3", "S1", "female", 1990, "2020-03-15", "PTSD"])  # an ISO date as text
    ws.write_row(4, 0, ["P4", "S1", "female", 1991])
    ws.write_number(4, 4, 43922)                               # a serial without a date format
    ws.write_string(4, 5, "TRD")
    wb.close()
    [r] = study.load(path, table="participants", validate=False)
    assert (r.rows_read, r.rows_loaded) == (4, 4), study.quarantine(batch=r.batch_id)
    got = study.query("select participant_id, birth_year, enrolled_on, diagnosis, "
                      "baseline_weight_kg, concomitant_antidepressant from participants "
                      "order by participant_id").rows()
    assert got == [("P1", 1980, date(2020, 1, 10), "TRD", 71.25, True),
                   ("P2", 1975, date(2020, 2, 1), "MDD", 0.3, False),
                   ("P3", 1990, date(2020, 3, 15), "PTSD", None, None),
                   ("P4", 1991, date(2020, 4, 1), "TRD", None, None)]


def test_the_staged_text_of_each_kind_of_cell(tmp_path):
    from cohort.excel import read_sheet

    wb = xlsxwriter.Workbook(tmp_path / "kinds.xlsx")
    ws = wb.add_worksheet()
    ws.write_row(0, 0, ["date", "datetime", "time", "int", "float", "bool", "formula", "text",
                        "no date"])
    ws.write_datetime(1, 0, datetime(2021, 12, 31), wb.add_format({"num_format": "d mmm yyyy"}))
    ws.write_datetime(1, 1, datetime(2021, 12, 31, 23, 59, 59), wb.add_format({"num_format": "m/d/yy h:mm:ss"}))
    ws.write_number(1, 2, 0.5, wb.add_format({"num_format": "h:mm"}))
    ws.write_number(1, 3, 1001)
    ws.write_number(1, 4, 1.5e-7)
    ws.write_boolean(1, 5, True)
    ws.write_formula(1, 6, "=D2*2", None, 2002)
    ws.write_string(1, 7, " spaced 0012 ")
    ws.write_number(1, 8, 1e12, wb.add_format({"num_format": "yyyy-mm-dd"}))  # beyond year 9999
    wb.close()
    sheet = read_sheet(tmp_path / "kinds.xlsx")
    assert sheet.frame.row(0) == ("2021-12-31", "2021-12-31 23:59:59", "12:00:00", "1001",
                                  "1.5e-07", "true", "2002", " spaced 0012 ", "1000000000000")


_MAIN = ' xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


@pytest.mark.parametrize("edit", [
    lambda xml: re.sub(r"<(/?)(?!\?)(\w+)", r"<\1x:\2", xml).replace(_MAIN, _MAIN.replace("xmlns", "xmlns:x")),
    lambda xml: xml.replace(_MAIN, ""),
], ids=["prefixed-namespace", "no-namespace"])
def test_sheets_written_with_a_namespace_prefix_or_none(tmp_path, edit):
    from cohort.excel import read_sheet

    book = _edit(_workbook(tmp_path / "visits.xlsx", ROWS), SHEET, edit)
    assert "<x:c " in zipfile.ZipFile(book).read(SHEET).decode() or _MAIN not in zipfile.ZipFile(
        book).read(SHEET).decode()
    sheet = read_sheet(book)
    assert sheet.rows.to_list() == [2, 3, 4] and sheet.frame.row(2) == ("P3", "2020-04-01", "MADRS", "12")


def test_dates_of_a_workbook_counting_from_1904(tmp_path):
    from cohort.excel import read_sheet

    wb = xlsxwriter.Workbook(tmp_path / "mac.xlsx", {"date_1904": True})
    ws = wb.add_worksheet()
    ws.write_row(0, 0, ["day"])
    ws.write_datetime(1, 0, datetime(2020, 2, 29), wb.add_format({"num_format": "yyyy-mm-dd"}))
    wb.close()
    assert read_sheet(tmp_path / "mac.xlsx").frame.row(0) == ("2020-02-29",)


@pytest.mark.parametrize(("formula", "code"), [("=NA()", "#N/A"), ("=1/0", "#DIV/0!")])
def test_an_error_cell_quarantines_its_row_naming_the_cell(tmp_path, study, formula, code):
    path = tmp_path / "visits.xlsx"
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("visits")
    for i, row in enumerate([HEADER, *(ROWS * 3)]):
        ws.write_row(i, 0, row)
    ws.write_formula(2, 3, formula, None, code)  # row 3's score
    wb.close()
    r = _load(study, path)
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (9, 8, 1)
    q = study.quarantine(batch=r.batch_id).row(0, named=True)
    assert (q["source_line"], q["rule"]) == (3, "parse.record")
    assert (f"sheet row 3, column 'score' (cell D3): the Excel error {code} instead of a value"
            in q["message"])


def _with_helper_column(path: Path, *, score_errors: tuple[int, ...] = ()) -> Path:
    """Nine rows of HEADER + a helper column ``lookup`` whose formulas give #N/A, dragged
    down five rows further than the data (rows 11-15 hold nothing but those errors); the
    score of each sheet row in ``score_errors`` is an #N/A too."""
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("visits")
    ws.write_row(0, 0, [*HEADER, "lookup"])
    for i, row in enumerate(ROWS * 3, start=1):
        ws.write_row(i, 0, row)
    for i in range(1, 15):
        ws.write_formula(i, 4, f"=VLOOKUP(A{i + 1},Z:Z,1,FALSE)", None, "#N/A")
    for number in score_errors:
        ws.write_formula(number - 1, 3, "=NA()", None, "#N/A")
    wb.close()
    return path


def _mapping(path: Path, *, drop: list[str]) -> Path:
    path.write_text("\n".join([
        "[tables.assessments.columns]",
        *(f'{c} = "{c}"' for c in HEADER),
        "[tables.assessments.drop]",
        f"columns = {json.dumps(drop)}", ""]))
    return path


def test_error_cells_in_a_dropped_column_quarantine_nothing(tmp_path, study):
    # before: every row quarantined, so the batch was rejected (over fatal_error_fraction)
    book = _with_helper_column(tmp_path / "visits.xlsx")
    r = _load(study, book, _mapping(tmp_path / "m.toml", drop=["lookup"]))
    assert (r.status, r.rows_read, r.rows_loaded, r.rows_quarantined) == ("loaded", 9, 9, 0)
    assert _lines(study, r.batch_id) == list(range(2, 11))


def test_an_error_cell_in_a_mapped_column_quarantines_its_row_beside_a_dropped_one(tmp_path, study):
    # row 12 holds errors only, one in a mapped column: a record, quarantined
    book = _with_helper_column(tmp_path / "visits.xlsx", score_errors=(5, 12))
    r = _load(study, book, _mapping(tmp_path / "m.toml", drop=["lookup"]))
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (10, 8, 2)
    assert _lines(study, r.batch_id) == [2, 3, 4, 6, 7, 8, 9, 10]
    q = study.quarantine(batch=r.batch_id).filter(pl.col("rule") == "parse.record")
    assert q["source_line"].to_list() == [5, 12]
    for line, message in zip(q["source_line"], q["message"], strict=True):
        assert message == (f"sheet row {line}, column 'score' (cell D{line}): the Excel error "
                           "#N/A instead of a value; correct the formula or the cell")


# --- workbooks that cannot be read are one line -----------------------------------------

def test_an_old_xls_or_encrypted_workbook_says_to_save_as_xlsx(tmp_path, study):
    ole2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    for name in ("visits.xls", "visits.xlsx"):
        (tmp_path / name).write_bytes(ole2)
        with pytest.raises(InputFileError, match=r"Excel 97-2003 workbook \(.xls\) or a "
                           r"password-protected one.*save it as Excel Workbook \(.xlsx\)"):
            _load(study, tmp_path / name)
    assert study.uploads().height == 0


def _stray_cell_at(ref: str, content: str, *, row: int, kind: str = "n") -> callable:
    return lambda xml: xml.replace("</sheetData>", f'<row r="{row}"><c r="{ref}" t="{kind}">'
                                   f"{content}</c></row></sheetData>")


def _hide_all(path: Path) -> Path:
    return _edit(path, "xl/workbook.xml", lambda xml: xml.replace('<sheet name="visits"',
                                                                    '<sheet name="visits" state="hidden"'))


@pytest.mark.parametrize(("make", "error", "match"), [
    (lambda p: _hide_all(_workbook(p, ROWS)), InputFileError,
     r"no visible worksheet \(worksheets: 'visits' \(hidden\)\); name the sheet"),
    (lambda p: _edit(_workbook(p, ROWS), "xl/sharedStrings.xml",
                     lambda x: x.replace(">score<", ">instrument<")), MappingError,
     r"duplicated column name\(s\) in the header: 'instrument' \(cells C1, D1\)"),
    (lambda p: _workbook(p, {2: ROWS[0], 3: [*ROWS[1], "left here"]}), InputFileError,
     r"sheet 'visits': cell E3 holds a value but column E has no header in row 1"),
    (lambda p: _edit(_workbook(p, []), SHEET, lambda x: x[:x.index("<sheetData>")]
                     + "<sheetData/>" + x[x.index("</sheetData>") + 12:]), InputFileError,
     r"sheet 'visits' is empty \(no cell holds a value\)"),
    (lambda p: _edit(_workbook(p, ROWS), SHEET, lambda x: x.replace('<row r="3"', '<row r="1"')),
     InputFileError, r"sheet 'visits': row 1 comes after row 2"),
    (lambda p: _edit(_workbook(p, ROWS), SHEET, _stray_cell_at("XFE7", "<v>1</v>", row=7)),
     InputFileError, r"cell XFE7 lies beyond column XFD, outside Excel's grid"),
    (lambda p: _edit(_workbook(p, ROWS), SHEET, _stray_cell_at("A1048577", "<v>1</v>", row=1048577)),
     InputFileError, r"row 1048577 lies beyond row 1,048,576, outside Excel's grid"),
    (lambda p: _edit(_workbook(p, ROWS), SHEET, _stray_cell_at("A9", '<v>99</v>', row=9, kind="s")),
     InputFileError, r"cell A9 refers to shared string '99', which the workbook lacks"),
    (lambda p: p.write_bytes(b"PK\x03\x04 truncated") and p, InputFileError,
     r"cannot read the Excel workbook .*save it again as .xlsx"),
])
def test_unreadable_sheets_are_one_line(tmp_path, study, make, error, match):
    path = make(tmp_path / "visits.xlsx")
    with pytest.raises(error, match=match) as err:
        _load(study, path)
    assert "\n" not in str(err.value)
    assert study.uploads().height == 0


# --- against an independent reader ------------------------------------------------------

def _openpyxl_text(value: object) -> str | None:
    """What read_sheet must give for a value openpyxl read (data_only: cached values)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):  # to the second, as Excel shows it
        value = (value + timedelta(microseconds=500_000)).replace(microsecond=0)
        return value.strftime("%Y-%m-%d" if value.time() == datetime.min.time() else "%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return format(value, ".15g")
    return str(value)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_sheets_read_as_openpyxl_reads_them(tmp_path, seed):
    import random

    from cohort.excel import read_sheet

    rng = random.Random(seed)
    path = tmp_path / "random.xlsx"
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("data")
    formats = [wb.add_format({"num_format": f}) for f in ("yyyy-mm-dd", "dd.mm.yyyy hh:mm", "0.00")]
    names = [f"c{j}" for j in range(6)]
    ws.write_row(2, 1, names)
    row = 3
    for _ in range(3000):
        row += rng.choice([1, 1, 1, 2, 5])  # blank rows between some
        for j in range(6):
            kind = rng.randrange(9)
            if kind == 0:
                continue
            if kind == 1:
                ws.write_string(row, j + 1, rng.choice(["x", " a b ", "é<&>\"'", "0012", "#N/A?", "line\nbreak"]))
            elif kind == 2:
                ws.write_number(row, j + 1, rng.randint(-10**6, 10**6))
            elif kind == 3:
                ws.write_number(row, j + 1, rng.uniform(-1e4, 1e4), rng.choice(formats[2:] + [None]))
            elif kind == 4:
                ws.write_datetime(row, j + 1, datetime(2000, 1, 1) + timedelta(
                    seconds=rng.randrange(30 * 365 * 86400)), formats[1])
            elif kind == 5:
                ws.write_datetime(row, j + 1, datetime(rng.randint(1901, 2099), rng.randint(1, 12),
                                                        rng.randint(1, 28)), formats[0])
            elif kind == 6:
                ws.write_boolean(row, j + 1, rng.random() < 0.5)
            elif kind == 7:
                ws.write_formula(row, j + 1, "=1+1", None, rng.choice([2, "two", 2.5]))
            else:
                ws.write_formula(row, j + 1, "=1/0", None, "#DIV/0!")
    wb.close()

    expected: list[tuple[int, tuple[str | None, ...]]] = []
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    for cells in book["data"].iter_rows(min_row=4):
        texts = tuple(_openpyxl_text(c.value) for c in cells[1:7])
        if any(t is not None for t in texts):
            number = next(c.row for c in cells if c.value is not None)
            expected.append((number, texts + (None,) * (6 - len(texts))))
    book.close()
    sheet = read_sheet(path)
    assert sheet.header_row == 3 and sheet.frame.columns == names
    got = list(zip(sheet.rows.to_list(), sheet.frame.rows(), strict=True))
    assert len(got) == len(expected) > 2000
    assert got == expected
    errors = {n for n, p in zip(sheet.rows, sheet.problems, strict=True) if p is not None}
    assert errors == {n for n, texts in expected if "#DIV/0!" in texts}
