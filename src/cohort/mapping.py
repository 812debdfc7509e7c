"""Site mapping specs: how a site's file maps to a canonical table.

A mapping is a TOML file, one per site (see README, "Mapping specs")::

    site_id = "OSL"
    format = "csv"
    [read]
    delimiter = ";"
    decimal_comma = true
    encoding = "latin-1"
    date_format = "%d.%m.%Y"
    [tables.participants]
    file = "osl_participants.csv"
    [tables.participants.columns]
    participant_id = "patient_no"
    sex = { from = "gender", recode = { F = "female", M = "male" } }
    [tables.participants.drop]
    columns = ["initials"]

A canonical column maps to a source column by name, or to a table with
``from`` and the options ``recode``, ``date_format``, ``unit`` (``"mg"``,
``"g"``, ``"mg/kg"``), ``thousands`` and ``value`` (a constant).

Every key is checked against :data:`SCHEMA` (:mod:`cohort.tomlcheck`): an unknown key, a
wrong type or an impossible value is one :class:`MappingError` line naming the file, the key
path and what is expected.
"""

from __future__ import annotations

import codecs
import datetime as dt
import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from cohort.errors import MappingError
from cohort.tables import TABLES, Column, table_columns
from cohort.tomlcheck import (
    At,
    Check,
    Key,
    Names,
    boolean,
    check_table,
    did_you_mean,
    known_names,
    one_character,
    one_of,
    shown,
)
from cohort.tomlcheck import text as nonempty_text

__all__ = [
    "ColumnMap",
    "ReadOptions",
    "TableMap",
    "Mapping",
    "load_mapping",
    "identity_mapping",
    "suggest_mapping",
    "closest",
]

UNITS = ("mg", "g", "mg/kg")
FORMATS = ("csv", "excel", "parquet", "spss", "sas", "stata")


@dataclass(frozen=True)
class ColumnMap:
    """How one canonical column is filled from a source file."""

    canonical: str
    source: str | None = None
    constant: Any = None
    recode: tuple[tuple[str, str], ...] = ()
    date_format: str | None = None
    unit: str = "mg"
    thousands: str | None = None
    pseudonymise: bool = False
    #: free text: what an identifier found in it does (cohort.identifiers): "mask" | "refuse"
    identifiers: str = "mask"


@dataclass(frozen=True)
class ReadOptions:
    """How to read a site's files (CSV options apply to delimited text only)."""

    delimiter: str | None = None
    decimal_comma: bool = False
    encoding: str = "utf-8"
    date_format: str | None = None
    thousands: str | None = None
    quote: str = '"'


@dataclass(frozen=True)
class TableMap:
    table: str
    columns: tuple[ColumnMap, ...]
    file: str | None = None
    sheet: str | None = None
    drop: tuple[str, ...] = ()

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(c.source for c in self.columns if c.source is not None)


@dataclass(frozen=True)
class Mapping:
    """A site's mapping spec, as read from its TOML file."""

    site_id: str | None
    format: str | None
    read: ReadOptions
    tables: dict[str, TableMap] = field(default_factory=dict)
    text: str = ""
    path: str | None = None

    def for_table(self, table: str) -> TableMap:
        try:
            return self.tables[table]
        except KeyError:
            where = self.path or "the mapping"
            raise MappingError(
                f"{where}: has no [tables.{table}] section; it maps "
                f"{', '.join(sorted(self.tables)) or 'no table'}. Add one, or run "
                f"`cohort mapping suggest FILE --table {table}` to draft it"
            ) from None


def closest(name: str, candidates: list[str] | tuple[str, ...], n: int = 3) -> str:
    """A 'did you mean' phrase for ``name`` among ``candidates`` ('' if none is close)."""
    lowered = {c.lower(): c for c in candidates}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    return f" (closest: {', '.join(lowered[h] for h in hits)})" if hits else ""


# -- the schema of a mapping spec ------------------------------------------------------

#: the strptime specifiers DuckDB knows (it applies date_format; a unit test compares)
DATE_DIRECTIVES = frozenset(
    "a A b B c d -d f g G h H -H I -I j -j m -m M -M n p S -S T u U V w W x X y -y Y z Z %"
    .split())
#: the specifiers of a date format of which one must give the year
_YEAR_DIRECTIVES = frozenset({"Y", "y", "-y", "G", "c", "x"})
_DIRECTIVE = re.compile(r"%(-?.?)")


def _date_format(value: Any, at: At) -> str:
    """A strptime format DuckDB knows (``"%d.%m.%Y"``) with a year in it."""
    if not isinstance(value, str) or not value:
        at.fail(f'expected a date format in quotes such as "%d.%m.%Y", got {shown(value)}')
    found = _DIRECTIVE.findall(value)
    bad = [d for d in found if d not in DATE_DIRECTIVES]
    if bad:
        at.fail(f"{shown(value)}: %{bad[0]} is not a date format directive; use %Y (year), "
                "%m (month), %d (day), %H:%M:%S (time), e.g. \"%d.%m.%Y\"")
    if not _YEAR_DIRECTIVES & set(found):
        at.fail(f"{shown(value)}: has no year (%Y or %y); a date needs one")
    return value


def _encoding(value: Any, at: At) -> str:
    """A text encoding Python knows (``"latin-1"``, ``"cp1252"``), as written, lowercase."""
    info = None
    if isinstance(value, str) and value:
        try:
            info = codecs.lookup(value)
        except LookupError:
            info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        at.fail(f'expected a text encoding such as "utf-8", "latin-1" or "cp1252", '
                f"got {shown(value)}")
    return value.lower()


def _csv_character(examples: str) -> Check:
    """One character other than a line break (a delimiter, a quote)."""
    def check(value: Any, at: At) -> str:
        if not isinstance(value, str) or len(value) != 1 or value in "\r\n":
            at.fail(f"expected one character in quotes ({examples}), got {shown(value)}")
        return value
    return check


def _constant(value: Any, at: At) -> Any:
    if isinstance(value, dict | list):
        at.fail(f"expected one value (text, number, true/false or a date), got {shown(value)}")
    return value


def _recode_value(value: Any, at: At) -> str:
    if isinstance(value, dict | list) or isinstance(value, dt.time):
        at.fail(f"expected the canonical value (text, number or true/false), got {shown(value)}")
    return str(value).lower() if isinstance(value, bool) else str(value)


def _text_list(value: Any, at: At) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        at.fail(f'expected a list of column names, ["a", "b"], got {shown(value)}')
    return tuple(value)


#: the options of a mapped column given as a table, ``sex = { from = "gender", ... }``
COLUMN_OPTIONS: dict[str, Key | Names] = {
    "from": Key(nonempty_text, "the source column"),
    "value": Key(_constant, "a constant instead of a source column"),
    "recode": Names(Key(_recode_value, "canonical value"), "site code -> canonical value"),
    "date_format": Key(_date_format, "strptime format of this column's dates"),
    "unit": Key(one_of(UNITS), "unit of dose_mg: mg (default), g, mg/kg (x weight_kg)"),
    "thousands": Key(one_character, "thousands separator of this column"),
    "pseudonymise": Key(boolean, "store a keyed hash under the study secret"),
    "identifiers": Key(one_of(("mask", "refuse")),
                       "free text: identifiers masked (default) or the row quarantined"),
}


def _column_spec(value: Any, at: At) -> str | dict[str, Any]:
    if isinstance(value, str):
        return nonempty_text(value, at)
    if not isinstance(value, dict):
        at.fail(f'expected a source column name in quotes or a table {{ from = "..." }}, '
                f"got {shown(value)}")
    return check_table(value, COLUMN_OPTIONS, at)


#: every key of a mapping spec
SCHEMA: dict[str, Any] = {
    "site_id": Key(nonempty_text, "the site's id, set on every row"),
    "format": Key(one_of(FORMATS), "the files' format (default: from the file)"),
    "read": {
        "delimiter": Key(_csv_character('";", ",", "\\t", "|"'), "field separator (default: sniffed)"),
        "decimal_comma": Key(boolean, "numbers written 1,5"),
        "encoding": Key(_encoding, "text encoding (default utf-8)"),
        "date_format": Key(_date_format, "strptime format of dates written as text"),
        "thousands": Key(one_character, "thousands separator"),
        "quote": Key(_csv_character("'\"', \"'\""), 'quote character (default ")'),
    },
    "tables": Names({
        "file": Key(nonempty_text, "the file (or glob) of the table"),
        "sheet": Key(nonempty_text, "the workbook's sheet"),
        "columns": Names(Key(_column_spec, "canonical column <- source column or options")),
        "constants": Names(Key(_constant, "canonical column <- a constant")),
        "drop": {"columns": Key(_text_list, "source columns not loaded")},
    }, "one per canonical table", known_names(TABLES, "a canonical table")),
}


def _decimal_mark(decimal_comma: bool) -> str:
    return "," if decimal_comma else "."


def _read_options(read: dict[str, Any], at: At) -> ReadOptions:
    options = ReadOptions(**{k: v for k, v in read.items()})
    if options.delimiter is not None and options.delimiter == options.quote:
        at.child("delimiter").fail(f"{shown(options.delimiter)} is also the quote character; "
                                   "set quote under [read] to another one")
    if options.thousands is not None and options.thousands == _decimal_mark(options.decimal_comma):
        at.child("thousands").fail(
            f"{shown(options.thousands)} is also the decimal mark (decimal_comma = "
            f"{shown(options.decimal_comma)}); one of them is wrong")
    return options


def _column_map(table: str, canonical: str, spec: str | dict[str, Any], at: At,
                read: ReadOptions) -> ColumnMap:
    """One checked column entry (``spec`` has passed :data:`COLUMN_OPTIONS`) as a ColumnMap."""
    columns = {c.name: c for c in table_columns(table)}
    if canonical not in columns:
        at.fail(f"not a column of {table}{did_you_mean(canonical, columns)}")
    if isinstance(spec, str):
        return ColumnMap(canonical, source=spec, date_format=read.date_format,
                         thousands=read.thousands)
    if ("from" in spec) == ("value" in spec):
        at.fail('needs exactly one of `from` (the source column) or `value` (a constant)')
    if "unit" in spec and canonical != "dose_mg":
        at.child("unit").fail("only dose_mg has a unit; remove it")
    if "date_format" in spec and columns[canonical].dtype != pl.Date:
        dates = [c for c, col in columns.items() if col.dtype == pl.Date]
        at.child("date_format").fail(f"{canonical} is not a date column (those of {table}: "
                                     f"{', '.join(dates)}); remove it")
    thousands = spec.get("thousands", read.thousands)
    if "thousands" in spec and thousands == _decimal_mark(read.decimal_comma):
        at.child("thousands").fail(f"{shown(thousands)} is also the decimal mark; one is wrong")
    return ColumnMap(
        canonical,
        source=spec.get("from"),
        constant=spec.get("value"),
        recode=tuple((code.strip(), target) for code, target in spec.get("recode", {}).items()),
        date_format=spec.get("date_format", read.date_format),
        unit=spec.get("unit", "mg"),
        thousands=thousands,
        pseudonymise=spec.get("pseudonymise", False),
        identifiers=spec.get("identifiers", "mask"),
    )


def _table_map(table: str, spec: dict[str, Any], at: At, read: ReadOptions,
               site_id: str | None) -> TableMap:
    columns = [_column_map(table, name, value, at.child("columns").child(name), read)
               for name, value in spec.get("columns", {}).items()]
    for name, value in spec.get("constants", {}).items():
        columns.append(_column_map(table, name, {"value": value},
                                   at.child("constants").child(name), read))
    mapped = [c.canonical for c in columns]
    twice = sorted({c for c in mapped if mapped.count(c) > 1})
    if twice:
        at.child("constants").fail(f"{twice[0]} is also under [tables.{table}.columns]; "
                                   "map it once")
    if site_id is not None and "site_id" not in mapped and any(
        c.name == "site_id" for c in table_columns(table)
    ):
        columns.append(ColumnMap("site_id", constant=site_id))
    return TableMap(table=table, columns=tuple(columns), file=spec.get("file"),
                    sheet=spec.get("sheet"), drop=spec.get("drop", {}).get("columns", ()))


def parse_mapping(text: str, *, path: str | None = None) -> Mapping:
    """Parse mapping TOML text into a :class:`Mapping`, checked against :data:`SCHEMA`.

    An unknown key (with the closest known one), a wrong type or an impossible value is a
    one-line :class:`MappingError` naming the file, the key path and what is expected.

    >>> parse_mapping('[read]\\ndelimeter = ";"', path="oslo.toml")
    Traceback (most recent call last):
    ...
    cohort.errors.MappingError: oslo.toml: [read] delimeter: unknown key; did you mean delimiter?
    """
    where = path or "mapping"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{where}: not valid TOML: {exc}") from None
    at = At(where, (), MappingError)
    spec = check_table(raw, SCHEMA, at)
    read = _read_options(spec.get("read", {}), at.child("read"))
    site_id = spec.get("site_id")
    tables = {table: _table_map(table, table_spec, at.child("tables").child(table), read, site_id)
              for table, table_spec in spec.get("tables", {}).items()}
    return Mapping(site_id=site_id, format=spec.get("format"), read=read, tables=tables,
                   text=text, path=path)


def load_mapping(path: str | Path) -> Mapping:
    """Read a mapping spec from its TOML file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"{p}: cannot read mapping spec: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise MappingError(f"{p}: the mapping spec is not UTF-8 text; save it as UTF-8") from None
    return parse_mapping(text, path=str(p))


def identity_mapping(table: str, header: list[str], *, site_id: str | None) -> Mapping:
    """The mapping of a file whose columns already carry the canonical names."""
    cols = {c.name for c in table_columns(table)}
    columns = [ColumnMap(h, source=h) for h in header if h in cols]
    if site_id is not None and "site_id" in cols and "site_id" not in header:
        columns.append(ColumnMap("site_id", constant=site_id))
    tm = TableMap(table=table, columns=tuple(columns))
    return Mapping(site_id=site_id, format=None, read=ReadOptions(), tables={table: tm})


def check_header(tm: TableMap, header: list[str], *, file: str, mapping_path: str | None) -> None:
    """Raise a MappingError naming every problem between a file header and its mapping."""
    problems: list[str] = []
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        problems.append(f"duplicated column name(s) in the header: {', '.join(dupes)}")
    for src in tm.sources:
        if src not in header:
            problems.append(f"mapped source column {src!r} is missing{closest(src, header)}")
    mapped = {c.canonical for c in tm.columns}
    for col in table_columns(tm.table):
        if col.required and col.name not in mapped:
            hint = closest(col.name, header)
            problems.append(f"required column {col.name!r} is not mapped{hint}")
    extra = [h for h in header if h not in tm.sources and h not in tm.drop]
    if extra:
        canon = [c.name for c in table_columns(tm.table)]
        described = ", ".join(f"{h!r}{closest(h, canon)}" for h in extra)
        problems.append(
            f"column(s) neither mapped nor dropped: {described}; map them or list them "
            f"under [tables.{tm.table}.drop] columns"
        )
    if problems and len(header) == 1 and any(d in header[0] for d in ",;\t|"):
        problems.insert(0, f"the header is a single column ({header[0][:60]!r}): is the "
                           "delimiter right? set delimiter under [read] in the mapping")
    if problems:
        spec = f" with mapping {mapping_path}" if mapping_path else " (no mapping given: canonical names expected)"
        raise MappingError(f"{file}{spec}: " + "; ".join(problems))


def _guess(col: Column, header: list[str]) -> str | None:
    aliases = {
        "participant_id": ["participant", "patient", "subject", "pid", "id", "patient_no"],
        "site_id": ["site", "centre", "center"],
        "sex": ["sex", "gender"],
        "birth_year": ["birth_year", "yob", "year_of_birth", "birthyear"],
        "enrolled_on": ["enrolled", "enrolment", "enrollment", "baseline_date", "inclusion"],
        "assessed_on": ["date", "visit_date", "assessed", "assessment_date"],
        "session_date": ["date", "session", "treatment_date"],
        "event_date": ["date", "event_date", "onset"],
        "exit_date": ["date", "exit", "end_date"],
        "instrument": ["instrument", "scale", "test", "questionnaire"],
        "score": ["score", "value", "total", "result"],
        "dose_mg": ["dose", "dose_mg", "mg"],
        "weight_kg": ["weight", "kg", "body_weight"],
    }
    lowered = {re.sub(r"[^a-z0-9]", "_", h.lower()): h for h in header}
    if col.name in lowered:
        return lowered[col.name]
    for alias in aliases.get(col.name, []):
        for low, original in lowered.items():
            if alias == low or alias in low.split("_"):
                return original
    hits = difflib.get_close_matches(col.name, list(lowered), n=1, cutoff=0.6)
    return lowered[hits[0]] if hits else None


def suggest_mapping(
    table: str, header: list[str], samples: dict[str, list[str]], *, site_id: str | None = None,
    file: str | None = None, read: dict[str, Any] | None = None,
    labels: dict[str, dict[str, str]] | None = None,
) -> str:
    """Draft a mapping spec (TOML text) for ``table`` from a file's header and sample values.

    ``labels``: a statistical file's value labels (column -> {code: label}); the codes are
    what is loaded, so a column of allowed values gets a recode of its codes, to the allowed
    value its label spells where there is one."""
    lines = ["# Drafted by `cohort mapping suggest`: check every line before use."]
    lines.append(f'site_id = "{site_id or "CHANGE-ME"}"')
    if read:
        lines.append("[read]")
        for k, v in read.items():
            lines.append(f"{k} = {_toml_value(v)}")
    lines.append(f"[tables.{table}]")
    if file:
        lines.append(f'file = "{file}"')
    lines.append(f"[tables.{table}.columns]")
    used: set[str] = set()
    for col in table_columns(table):
        if col.name == "site_id" and site_id:
            continue
        src = _guess(col, [h for h in header if h not in used])
        if src is None:
            flag = "required" if col.required else "optional"
            lines.append(f"# {col.name} = \"?\"   # {flag}: no matching column found")
            continue
        used.add(src)
        values = samples.get(src, [])
        known = (labels or {}).get(src, {})
        if col.allowed:
            unmatched = sorted({v for v in values if v not in col.allowed} | set(known))
            if unmatched:
                spelled = {a.lower(): a for a in col.allowed}
                recode = ", ".join(
                    f'{_toml_value(v)} = {_toml_value(spelled.get(known.get(v, "").lower(), "?"))}'
                    for v in unmatched[:12])
                if known:
                    lines.append(f"# {src} value labels: "
                                 + ", ".join(f"{k} = {t}" for k, t in known.items()))
                lines.append(f'{col.name} = {{ from = "{src}", recode = {{ {recode} }} }}'
                             f"   # allowed: {', '.join(col.allowed)}")
                continue
        lines.append(f'{col.name} = "{src}"' + (f"   # e.g. {values[0]!r}" if values else ""))
    rest = [h for h in header if h not in used]
    lines.append(f"[tables.{table}.drop]")
    lines.append(f"columns = [{', '.join(_toml_value(h) for h in rest)}]")
    return "\n".join(lines) + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
