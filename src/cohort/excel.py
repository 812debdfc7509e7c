"""Read one worksheet of an Excel workbook (.xlsx, .xlsm) as text, with its sheet rows.

The sheet's XML is parsed as a stream (:mod:`zipfile` + expat), cell by cell, so memory
follows the cells that hold something, never the sheet's declared dimension nor the
position of its last cell (a workbook declaring ``A1:XFD1048576`` is read like any other).

The rules, in one place:

- **which sheet**: the one named (hidden or not); with none named, the first *visible*
  worksheet of the workbook (hidden sheets and chart sheets are passed over);
- **header**: the first row holding a value; its row number counts, as every row's does;
- **a line**: a record's ``source_line`` is its sheet row number (the ``r`` of
  ``<row r="...">``, as Excel shows it); a row without any value is skipped and later rows
  keep their own numbers (error cells in columns not read are no values);
- **values**, as text the coercion step reads: shared and inline strings as they are;
  numbers as Excel shows them in General format (15 significant digits; ``30``, not
  ``30.0``); a number with a date or time format as an ISO date (``2020-03-01``), date-time
  (``2020-03-01 08:30:00``) or time; booleans as ``true``/``false``; a formula by its
  cached value; an error cell (``#N/A``, ``#DIV/0!``, ...) by its code, and its row is
  quarantined (a ``problem`` naming the cell) if the error is in a column the load reads
  (``columns``: a helper column the mapping drops may hold errors);
- **limits**: a value in a column without a header, or a cell outside Excel's grid
  (1,048,576 rows x 16,384 columns), is a one-line error naming the cell.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import IO
from xml.etree import ElementTree
from xml.parsers import expat

import polars as pl

from cohort.errors import InputFileError, MappingError

__all__ = ["MAX_COLUMNS", "MAX_ROWS", "SheetText", "read_sheet", "sheet_to_read"]

#: rows and columns of an Excel sheet (XFD1048576 is its last cell)
MAX_ROWS = 1_048_576
MAX_COLUMNS = 16_384
#: rows gathered as Python objects before they are moved into a polars frame
_CHUNK_ROWS = 65_536
_READ_BYTES = 1 << 20
_REL_OFFICE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
#: number formats built into Excel that show dates or times
_BUILTIN_DATE_FORMATS = frozenset([*range(14, 23), *range(27, 37), *range(45, 48), *range(50, 59)])
_FORMAT_NOISE = re.compile(r'"[^"]*"|\[[^\]]*\]|\\.|_.|\*.')
_EPOCH_1900 = datetime(1899, 12, 30)
_EPOCH_1904 = datetime(1904, 1, 1)
#: the spreadsheet namespaces (transitional, strict); expat names elements "namespace}local"
_NAMESPACES = ("http://schemas.openxmlformats.org/spreadsheetml/2006/main",
               "http://purl.oclc.org/ooxml/spreadsheetml/main")


def _names(*local: str) -> frozenset[str]:
    """An element's names: in either namespace, or in none (as some writers leave it)."""
    return frozenset([*(f"{ns}}}{name}" for ns in _NAMESPACES for name in local), *local])


_CELL, _VALUE, _TEXT, _ROW, _PHONETIC, _SHARED = (
    _names(n) for n in ("c", "v", "t", "row", "rPh", "si"))
_VALUE_OR_TEXT = _VALUE | _TEXT


@dataclass(frozen=True)
class SheetText:
    """A worksheet as text.

    Attributes
    ----------
    sheet
        The name of the sheet read.
    header_row
        The sheet row number of the header.
    frame
        One String column per header cell, in the sheet's column order, one row per
        sheet row that holds a value (after the header).
    rows
        The sheet row number of each row of ``frame`` (Int64).
    problems
        Per row of ``frame``, why it cannot be loaded as it is (its error cells in the
        columns read), or null.
    """

    sheet: str
    header_row: int
    frame: pl.DataFrame
    rows: pl.Series
    problems: pl.Series


def _local(tag: str) -> str:
    return tag.rpartition("}")[2].rpartition(":")[2]


def _column_number(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def _column_letters(n: int) -> str:
    out = ""
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


class _Workbook:
    """The parts of a workbook the reader needs: sheets, shared strings, date styles."""

    def __init__(self, zf: zipfile.ZipFile, path: Path) -> None:
        self.zf, self.path = zf, path
        book = self._part_of(_rels_path(""), "officeDocument") or "xl/workbook.xml"
        root = ElementTree.fromstring(zf.read(book))
        targets = self._relations(_rels_path(book), base=posixpath.dirname(book))
        self.date1904 = any(_local(e.tag) == "workbookPr" and e.get("date1904") in ("1", "true")
                            for e in root.iter())
        #: (name, state, part) of each worksheet, in the workbook's order
        self.sheets: list[tuple[str, str, str]] = []
        for e in root.iter():
            if _local(e.tag) != "sheet":
                continue
            rid = e.get(f"{{{_REL_OFFICE}}}id") or next(
                (v for k, v in e.attrib.items() if _local(k) == "id"), "")
            kind, part = targets.get(rid, ("", ""))
            if kind == "worksheet":
                self.sheets.append((e.get("name", ""), e.get("state", "visible"), part))
        self.parts = {kind: part for kind, part in targets.values()}
        self.shared: list[str] = []
        self.date_styles: frozenset[int] = frozenset()

    def read_cell_parts(self) -> None:
        """Read the shared strings and the date styles (the sheet's cells refer to them)."""
        if "sharedStrings" in self.parts:
            self.shared = _shared_strings(self.zf, self.parts["sharedStrings"])
        if "styles" in self.parts:
            self.date_styles = _date_styles(self.zf, self.parts["styles"])

    def _relations(self, rels: str, *, base: str) -> dict[str, tuple[str, str]]:
        if rels not in self.zf.namelist():
            return {}
        out = {}
        for e in ElementTree.fromstring(self.zf.read(rels)).iter():
            if _local(e.tag) == "Relationship":
                target = e.get("Target", "")
                part = target.lstrip("/") if target.startswith("/") else posixpath.normpath(
                    posixpath.join(base, target))
                out[e.get("Id", "")] = (e.get("Type", "").rpartition("/")[2], part)
        return out

    def _part_of(self, rels: str, kind: str) -> str | None:
        return next((p for k, p in self._relations(rels, base="").values() if k == kind), None)

    def choose(self, sheet: str | None) -> tuple[str, str]:
        """(name, part) of the sheet named, else of the first visible worksheet."""
        listing = ", ".join(repr(n) + ("" if s == "visible" else f" ({s})")
                            for n, s, _ in self.sheets) or "none"
        if sheet is not None:
            for name, _, part in self.sheets:
                if name == sheet:
                    return name, part
            raise InputFileError(
                f"{self.path}: no worksheet named {sheet!r}; its worksheets are {listing}: set "
                "`sheet` in the mapping to one of them")
        for name, state, part in self.sheets:
            if state == "visible":
                return name, part
        raise InputFileError(
            f"{self.path}: no visible worksheet (worksheets: {listing}); name the sheet to "
            "read with `sheet` in the mapping")


def _rels_path(part: str) -> str:
    folder, name = posixpath.split(part)
    return posixpath.join(folder, "_rels", f"{name}.rels")


def _parse(fh: IO[bytes], start: object, end: object, text: object) -> Iterator[None]:
    """Feed ``fh`` to expat block by block (bounded memory); yield after each block."""
    parser = expat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    for block in iter(lambda: fh.read(_READ_BYTES), b""):
        parser.Parse(block, False)
        yield
    parser.Parse(b"", True)
    yield


def _shared_strings(zf: zipfile.ZipFile, part: str) -> list[str]:
    """The shared strings, in order: each the text of its runs (not its phonetic hints)."""
    out: list[str] = []
    parts: list[str] = []
    state = {"t": False, "rph": 0}

    def start(name: str, _attrs: dict[str, str]) -> None:
        if name in _TEXT and not state["rph"]:
            state["t"] = True
        elif name in _PHONETIC:
            state["rph"] += 1
        elif name in _SHARED:
            parts.clear()

    def end(name: str) -> None:
        if name in _TEXT:
            state["t"] = False
        elif name in _PHONETIC:
            state["rph"] -= 1
        elif name in _SHARED:
            out.append("".join(parts))

    def text(data: str) -> None:
        if state["t"]:
            parts.append(data)

    with zf.open(part) as fh:
        for _ in _parse(fh, start, end, text):
            pass
    return out


def _is_date_format(code: str) -> bool:
    bare = _FORMAT_NOISE.sub("", code).lower()
    return any(ch in bare for ch in "dmyhs") and "general" not in bare


def _date_styles(zf: zipfile.ZipFile, part: str) -> frozenset[int]:
    """Indexes of the cell styles (``s``) whose number format shows a date or time."""
    root = ElementTree.fromstring(zf.read(part))
    custom = {int(e.get("numFmtId", "-1")): e.get("formatCode", "")
              for e in root.iter() if _local(e.tag) == "numFmt"}
    styles = next((e for e in root if _local(e.tag) == "cellXfs"), None)
    dates = set()
    for i, xf in enumerate(styles if styles is not None else ()):
        fmt = int(xf.get("numFmtId", "0"))
        if fmt in custom and _is_date_format(custom[fmt]) or (
                fmt not in custom and fmt in _BUILTIN_DATE_FORMATS):
            dates.add(i)
    return frozenset(dates)


def _number_text(v: str) -> str:
    if "." in v or "E" in v or "e" in v:
        try:
            return format(float(v), ".15g")
        except ValueError:
            return v
    return v


@lru_cache(maxsize=1 << 16)  # a sheet's dates repeat (visit days)
def _date_text(v: str, *, date1904: bool) -> str:
    """A date-formatted number as ISO text (the number itself if it is no date)."""
    try:
        serial = float(v)
        if date1904:
            moment = _EPOCH_1904 + timedelta(days=serial)
        elif serial >= 61:
            moment = _EPOCH_1900 + timedelta(days=serial)
        elif 1 <= serial < 60:  # Excel counts a 29 February 1900 that was not
            moment = _EPOCH_1900 + timedelta(days=serial + 1)
        elif 0 <= serial < 1:
            moment = _EPOCH_1900 + timedelta(days=serial)
            return (moment + timedelta(microseconds=500_000)).strftime("%H:%M:%S")
        else:
            return _number_text(v)
        moment = (moment + timedelta(microseconds=500_000)).replace(microsecond=0)
    except (ValueError, OverflowError):  # not a number, or beyond the calendar
        return _number_text(v)
    if moment.hour == moment.minute == moment.second == 0:
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


class _SheetParser:
    """The expat handlers of one sheet: rows of (column number -> text), in sheet order."""

    def __init__(self, book: _Workbook, where: str) -> None:
        self.book, self.where = book, where
        self.row_number = 0
        self.row_text = "0"
        self.column = 0
        self.cells: dict[int, str] = {}
        self.errors: dict[int, str] = {}
        self.kind = self.style = ""
        self.ref = ""
        self.text: list[str] = []
        self.capture = False
        self.phonetic = 0
        self.rows: list[tuple[int, dict[int, str], dict[int, str]]] = []
        self.numbers: dict[str, int] = {}  # column letters -> number, as met

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if name in _CELL:
            ref = attrs.get("r")
            if ref:
                letters = ref.rstrip("0123456789")
                number = self.numbers.get(letters)
                if number is None:
                    number = self.numbers[letters] = _column_number(letters)
                self.column = number
                digits = ref[len(letters):]
                if digits != self.row_text and digits and int(digits) != self.row_number:
                    raise InputFileError(f"{self.where}: cell {ref} lies outside its row "
                                         f"{self.row_number}; save the workbook again from Excel")
            else:
                self.column += 1
            if self.column > MAX_COLUMNS:
                raise InputFileError(f"{self.where}: cell {ref or self.column} lies beyond column "
                                     f"XFD, outside Excel's grid; save the workbook again from Excel")
            self.ref = ref or f"{_column_letters(self.column)}{self.row_number}"
            self.kind, self.style = attrs.get("t", "n"), attrs.get("s", "")
            self.text.clear()
        elif name in _VALUE_OR_TEXT:
            self.capture = not self.phonetic
        elif name in _ROW:
            r = attrs.get("r")
            number = int(r) if r else self.row_number + 1
            if number <= self.row_number or number > MAX_ROWS:
                what = (f"comes after row {self.row_number} (the rows are out of order)"
                        if number <= self.row_number else
                        f"lies beyond row {MAX_ROWS:,}, outside Excel's grid")
                raise InputFileError(f"{self.where}: row {number} {what}; save the workbook again "
                                     "from Excel")
            self.row_number, self.row_text, self.column = number, str(number), 0
            self.cells, self.errors = {}, {}
        elif name in _PHONETIC:
            self.phonetic += 1

    def end(self, name: str) -> None:
        if name in _VALUE_OR_TEXT:
            self.capture = False
        elif name in _CELL:
            self._cell()
        elif name in _ROW:
            if self.cells:
                self.rows.append((self.row_number, self.cells, self.errors))
        elif name in _PHONETIC:
            self.phonetic -= 1

    def characters(self, data: str) -> None:
        if self.capture:
            self.text.append(data)

    def _cell(self) -> None:
        raw = "".join(self.text)
        if not raw:
            return
        kind = self.kind
        if kind == "s":
            try:
                value = self.book.shared[int(raw)]
            except (ValueError, IndexError):
                raise InputFileError(f"{self.where}: cell {self.ref} refers to shared string "
                                     f"{raw!r}, which the workbook lacks; save it again from "
                                     "Excel") from None
        elif kind == "n":
            value = (_date_text(raw, date1904=self.book.date1904)
                     if self.style and int(self.style) in self.book.date_styles else _number_text(raw))
        elif kind == "b":
            value = "true" if raw.strip() in ("1", "true") else "false"
        elif kind == "e":
            value = raw
            self.errors[self.column] = raw
        else:  # str (a formula's text), inlineStr, d (an ISO date)
            value = raw
        if value:
            self.cells[self.column] = value


def _rows(zf: zipfile.ZipFile, part: str, parser: _SheetParser
          ) -> Iterator[tuple[int, dict[int, str], dict[int, str]]]:
    """The sheet's rows that hold a value, as parsed block by block."""
    with zf.open(part) as fh:
        for _ in _parse(fh, parser.start, parser.end, parser.characters):
            yield from parser.rows
            parser.rows.clear()


def sheet_to_read(path: Path, *, sheet: str | None = None) -> str:
    """The name of the worksheet :func:`read_sheet` reads (``sheet``, else the first visible).

    Raises
    ------
    InputFileError
        As :func:`read_sheet`, for a workbook that cannot be read or a sheet it lacks.
    """
    with _opened(path) as zf:
        return _Workbook(zf, path).choose(sheet)[0]


@contextmanager
def _opened(path: Path) -> Iterator[zipfile.ZipFile]:
    """The workbook's zip; what cannot be read in it is a one-line InputFileError."""
    try:
        with zipfile.ZipFile(path) as zf:
            yield zf
    except (zipfile.BadZipFile, KeyError, ValueError, expat.ExpatError,
            ElementTree.ParseError, OSError) as exc:
        raise InputFileError(f"{path}: cannot read the Excel workbook ({str(exc).splitlines()[0]})"
                             "; open it in Excel and save it again as .xlsx") from None


def read_sheet(path: Path, *, sheet: str | None = None,
               columns: Collection[str] | None = None) -> SheetText:
    """Read a worksheet of ``path`` as text columns with their sheet row numbers.

    Parameters
    ----------
    path
        An .xlsx or .xlsm workbook.
    sheet
        The sheet's name; ``None`` reads the first visible worksheet.
    columns
        The columns (header names, without surrounding spaces) whose error cells are
        problems; an error cell elsewhere is staged by its code like any value. ``None``:
        every column.

    Returns
    -------
    SheetText
        The sheet read, its header row, the text columns and the row number of each row.

    Raises
    ------
    InputFileError
        For a workbook that cannot be read, a sheet that does not exist, an empty sheet, a
        value in a column without a header or a cell outside Excel's grid (one line each).
    MappingError
        For a header that names a column twice.

    Examples
    --------
    >>> import tempfile, xlsxwriter
    >>> p = Path(tempfile.mkdtemp()) / "a.xlsx"
    >>> wb = xlsxwriter.Workbook(p); ws = wb.add_worksheet("scores")
    >>> _ = ws.write_row(0, 0, ["id", "score"]), ws.write_row(3, 0, ["P1", 30]), wb.close()
    >>> t = read_sheet(p)
    >>> t.sheet, t.rows.to_list(), t.frame.row(0)
    ('scores', [4], ('P1', '30'))
    """
    with _opened(path) as zf:
        return _read(zf, path, sheet, columns)


def _read(zf: zipfile.ZipFile, path: Path, sheet: str | None,
          read: Collection[str] | None) -> SheetText:
    book = _Workbook(zf, path)
    name, part = book.choose(sheet)
    book.read_cell_parts()
    where = f"{path}: sheet {name!r}"
    parser = _SheetParser(book, where)
    rows = _rows(zf, part, parser)
    first = next(rows, None)
    if first is None:
        raise InputFileError(f"{where} is empty (no cell holds a value); nothing to load. Name "
                             "the sheet that holds the data with `sheet` in the mapping")
    header_row, named, _ = first
    columns = sorted(named)
    names = [named[c] for c in columns]
    cells: dict[str, list[str]] = {}
    for c, n in zip(columns, names, strict=True):
        cells.setdefault(n, []).append(f"{_column_letters(c)}{header_row}")
    dupes = [f"{n!r} (cells {', '.join(refs)})" for n, refs in cells.items() if len(refs) > 1]
    if dupes:
        raise MappingError(f"{where}: duplicated column name(s) in the header: {', '.join(dupes)}; "
                           "give each column its own name")
    position = {c: i for i, c in enumerate(columns)}
    checked = {c for c, n in zip(columns, names, strict=True) if read is None or n.strip() in read}
    chunks: list[pl.DataFrame] = []
    values: list[list[str | None]] = [[] for _ in columns]
    numbers: list[int] = []
    problems: list[str | None] = []
    schema = {**{n: pl.String for n in names}, "__row": pl.Int64, "__problem": pl.String}

    def flush() -> None:
        chunks.append(pl.DataFrame([*values, numbers, problems], schema=schema, orient="col"))
        for v in values:
            v.clear()
        numbers.clear()
        problems.clear()

    headed = position.keys()
    for number, cells, errors in rows:
        if not cells.keys() <= headed:
            c = min(cells.keys() - headed)
            raise InputFileError(
                f"{where}: cell {_column_letters(c)}{number} holds a value but column "
                f"{_column_letters(c)} has no header in row {header_row}; give the column a "
                "header, or clear the cell")
        if errors.keys() >= cells.keys() and not errors.keys() & checked:
            continue  # only errors in columns not read (a helper formula dragged down): blank
        for c, v in zip(columns, values, strict=True):
            v.append(cells.get(c))
        numbers.append(number)
        problems.append("; ".join(
            f"sheet row {number}, column {names[position[c]]!r} (cell {_column_letters(c)}{number}): "
            f"the Excel error {code} instead of a value; correct the formula or the cell"
            for c, code in errors.items() if c in checked) or None if errors else None)
        if len(numbers) == _CHUNK_ROWS:
            flush()
    flush()
    frame = pl.concat(chunks, rechunk=True)
    return SheetText(name, header_row, frame.drop("__row", "__problem"), frame["__row"],
                     frame["__problem"])
