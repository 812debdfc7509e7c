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
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cohort.errors import MappingError
from cohort.tables import TABLES, Column, table_columns

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


def _column_map(table: str, canonical: str, spec: Any, where: str, read: ReadOptions) -> ColumnMap:
    known = [c.name for c in table_columns(table)]
    if canonical not in known:
        raise MappingError(
            f"{where}: [tables.{table}.columns] names {canonical!r}, which is not a column of "
            f"{table}{closest(canonical, known)}; columns are: {', '.join(known)}"
        )
    if isinstance(spec, str):
        return ColumnMap(canonical, source=spec, date_format=read.date_format,
                         thousands=read.thousands)
    if not isinstance(spec, dict):
        raise MappingError(f"{where}: {table}.{canonical} must be a column name or a table")
    options = {"from", "recode", "date_format", "unit", "thousands", "value", "pseudonymise"}
    unknown = set(spec) - options
    if unknown:
        raise MappingError(
            f"{where}: {table}.{canonical} has unknown option(s) {sorted(unknown)}; "
            f"options are {', '.join(sorted(options))}"
        )
    if ("from" in spec) == ("value" in spec):
        raise MappingError(f"{where}: {table}.{canonical} needs exactly one of `from` or `value`")
    unit = spec.get("unit", "mg")
    if unit not in UNITS:
        raise MappingError(f"{where}: {table}.{canonical} unit {unit!r} is not one of {UNITS}")
    recode = spec.get("recode", {})
    return ColumnMap(
        canonical,
        source=spec.get("from"),
        constant=spec.get("value"),
        recode=tuple((str(k).strip(), str(v).lower() if isinstance(v, bool) else str(v))
                     for k, v in recode.items()),
        date_format=spec.get("date_format", read.date_format),
        unit=unit,
        thousands=spec.get("thousands", read.thousands),
        pseudonymise=bool(spec.get("pseudonymise", False)),
    )


def parse_mapping(text: str, *, path: str | None = None) -> Mapping:
    """Parse mapping TOML text into a :class:`Mapping`."""
    where = path or "mapping"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{where}: not valid TOML: {exc}") from None
    fmt = raw.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise MappingError(f"{where}: format {fmt!r} is not one of {', '.join(FORMATS)}")
    r = raw.get("read", {})
    read = ReadOptions(
        delimiter=r.get("delimiter"),
        decimal_comma=bool(r.get("decimal_comma", False)),
        encoding=str(r.get("encoding", "utf-8")).lower(),
        date_format=r.get("date_format"),
        thousands=r.get("thousands"),
        quote=r.get("quote", '"'),
    )
    site_id = raw.get("site_id")
    tables: dict[str, TableMap] = {}
    for table, spec in raw.get("tables", {}).items():
        if table not in TABLES:
            raise MappingError(
                f"{where}: [tables.{table}] is not a canonical table{closest(table, list(TABLES))}"
            )
        columns = [
            _column_map(table, name, value, where, read)
            for name, value in spec.get("columns", {}).items()
        ]
        for name, value in spec.get("constants", {}).items():
            columns.append(_column_map(table, name, {"value": value}, where, read))
        mapped = {c.canonical for c in columns}
        if site_id is not None and "site_id" not in mapped and any(
            c.name == "site_id" for c in table_columns(table)
        ):
            columns.append(ColumnMap("site_id", constant=site_id))
        tables[table] = TableMap(
            table=table,
            columns=tuple(columns),
            file=spec.get("file"),
            sheet=spec.get("sheet"),
            drop=tuple(spec.get("drop", {}).get("columns", ())),
        )
    return Mapping(site_id=site_id, format=fmt, read=read, tables=tables, text=text, path=path)


def load_mapping(path: str | Path) -> Mapping:
    """Read a mapping spec from its TOML file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"{p}: cannot read mapping spec: {exc.strerror}") from None
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
) -> str:
    """Draft a mapping spec (TOML text) for ``table`` from a file's header and sample values."""
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
        if col.allowed:
            unmatched = sorted({v for v in values if v not in col.allowed})
            if unmatched:
                recode = ", ".join(f'"{v}" = "?"' for v in unmatched[:12])
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
