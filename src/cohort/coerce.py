"""Coerce a staged batch's raw text to the canonical types, in DuckDB.

Every value is trimmed, recoded (the mapping's site codes), typed (dates in the
site's format or ISO, numbers with the site's decimal and thousands marks,
booleans in several languages), converted (dose units) and checked (required,
allowed values, the schema's domains). A value that fails gives one error row
naming its line, column, raw value, rule and how to fix it.

:func:`coerce` works on a batch staged as text. :func:`coerce_csv` is its fast path
for delimited text: DuckDB's reader types what it can as it reads, a cheap screen
finds the rows that may have a problem, and only those (and the records the reader
rejected) go through :func:`coerce`; tests/unit/test_fast_csv.py holds the two paths
to the same result.
"""

from __future__ import annotations

import bisect
import json
import re
import tempfile
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from cohort.db import drop_staged, quote_ident, scalar, sql_literal, without_lines
from cohort.delimited import CsvDialect, csv_dialect, csv_scan, stage_csv_lines, utf8_copy
from cohort.mapping import ColumnMap, ReadOptions, TableMap
from cohort.sourcefile import SourceFile
from cohort.staged import staged_name
from cohort.tables import Column, table_columns

__all__ = ["Coerced", "coerce", "coerce_csv", "drop_coerced", "value_column"]

_TRUE = ["true", "t", "yes", "y", "1", "ja", "oui", "si", "x"]
_FALSE = ["false", "f", "no", "n", "0", "nei", "non", "nein"]
_UNIT_FACTOR = {"mg": 1.0, "g": 1000.0}


class _Sql:
    """Named bound parameters for SQL text built in pieces (a piece may repeat)."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"${name}"

    def used_in(self, text: str) -> dict[str, Any]:
        """The parameters ``text`` refers to (DuckDB refuses extra ones)."""
        names = set(re.findall(r"\$(p\d+)\b", text))
        return {k: v for k, v in self.params.items() if k in names}


def _text(raw: str) -> str:
    return f"nullif(trim({raw}), '')"


def _value_expr(col: Column, cm: ColumnMap, sql: _Sql, *, source_format: str,
                decimal_comma: bool, strict: bool = False) -> str:
    """SQL expression that turns the raw text of ``cm`` into the canonical value.

    ``strict``: a value that is not one of the column's allowed values becomes null
    (so that a screen for it is a null check)."""
    if cm.source is None:
        return f"cast({sql.bind(cm.constant)} as {_duck_type(col)})"
    v = _text(quote_ident(cm.source))
    if cm.pseudonymise:  # defined on the connection by cohort.identifiers.register_functions
        v = f"cohort_pseudonymise({v})"
    if cm.recode:  # site codes to canonical values, before any typing
        cases = " ".join(f"when {sql.bind(k)} then {sql.bind(t)}" for k, t in cm.recode)
        v = f"coalesce(case {v} {cases} end, {v})"
    dtype = col.dtype
    if dtype == pl.String:
        if col.allowed:  # the allowed spelling whatever the case the site used
            cases = " ".join(f"when {sql.bind(a.lower())} then {sql.bind(a)}" for a in col.allowed)
            spelled = f"case lower({v}) {cases} end" if strict else f"coalesce(case lower({v}) {cases} end, {v})"
            if cm.recode or cm.pseudonymise:
                return spelled
            # most values are spelled right already: a lookup of the field as it is is cheaper.
            # A chain of whens, not `in (...)` nor list_contains: DuckDB plans a long list of
            # those as a hash (MARK) join, which does not keep the file's order (see coerce_csv)
            raw = quote_ident(cm.source)
            same = " ".join(f"when {sql_literal(a)} then {raw}" for a in col.allowed)
            return f"case {raw} {same} else {spelled} end"
        return v
    if dtype == pl.Boolean:
        # whens, not list_contains: DuckDB plans that over a long list as a join (see above)
        words = [*((w, "true") for w in _TRUE), *((w, "false") for w in _FALSE)]
        return f"case lower({v}) {' '.join(f'when {sql.bind(w)} then {b}' for w, b in words)} end"
    if dtype == pl.Date:
        # ISO dates (and date-times, as spreadsheets give them) are always understood
        parsed = f"coalesce(try_cast({v} as date), try_cast(try_cast({v} as timestamp) as date))"
        if cm.date_format:
            parsed = f"coalesce(try_strptime({v}, {sql.bind(cm.date_format)})::date, {parsed})"
        if source_format == "excel":
            serial = (f"case when regexp_full_match({v}, '[0-9]{{1,6}}(\\.0+)?') "
                      f"then date '1899-12-30' + cast(cast({v} as double) as integer) end")
            parsed = f"coalesce({parsed}, {serial})"
        return parsed
    number = v
    if cm.thousands:
        number = f"replace({number}, {sql.bind(cm.thousands)}, '')"
    if decimal_comma:
        number = f"replace({number}, ',', '.')"
    number = f"try_cast({number} as double)"  # inf and nan are refused by the domain check
    if dtype == pl.Float64:
        return number
    return _smallint(number)


def _smallint(number: str) -> str:
    """A whole number that fits a smallint, else null."""
    return f"case when {number} = round({number}) and abs({number}) < 32767 then cast({number} as smallint) end"


def _duck_type(col: Column) -> str:
    return {pl.String: "varchar", pl.Date: "date", pl.Float64: "double",
            pl.Int16: "smallint", pl.Boolean: "boolean"}[col.dtype]  # type: ignore[index]


def value_column(name: str) -> str:
    """Column of the coerced value of canonical column ``name`` (beside the raw text)."""
    return quote_ident(f"__v_{name}")


@dataclass(frozen=True)
class Coerced:
    """The typed rows of a batch: a query (with its bound values) over the typed table."""

    sql: str  # select source_line, <canonical columns> from ...
    params: dict[str, Any]


def _values(tm: TableMap, src: SourceFile, sql: _Sql, *, decimal_comma: bool,
            native: dict[str, str] | None = None) -> dict[str, str]:
    """The SQL expression of every canonical column of ``tm.table``."""
    by_name = {c.canonical: c for c in tm.columns}
    exprs: dict[str, str] = {}
    for col in table_columns(tm.table):
        cm = by_name.get(col.name)
        if cm is None:
            exprs[col.name] = f"cast(null as {_duck_type(col)})"
        elif native and cm.source in native:
            exprs[col.name] = _native_value(col, quote_ident(cm.source))
        else:
            exprs[col.name] = _value_expr(col, cm, sql, source_format=src.format,
                                          decimal_comma=decimal_comma, strict=native is not None)
    dose = by_name.get("dose_mg")
    if dose is not None and dose.source is not None and dose.unit != "mg":
        if dose.unit == "mg/kg":
            # rounded to 1e-6 mg so that 56 mg given as 56/w mg/kg comes back as 56
            exprs["dose_mg"] = f"round(({exprs['dose_mg']}) * ({exprs['weight_kg']}), 6)"
        else:
            exprs["dose_mg"] = f"({exprs['dose_mg']}) * {sql.bind(_UNIT_FACTOR[dose.unit])}"
    return exprs


def _presence(tm: TableMap, native: Collection[str] | None = None) -> dict[str, str]:
    """Source column -> the name of its flag 'the raw field holds something', for the
    columns a check needs it for: those typed from text (a value DuckDB's reader typed
    is there or the field was empty), a dose in mg/kg and, on the fast path (``native``
    given), an optional column of allowed values (strict, see :func:`_value_expr`)."""
    kinds = {c.name: c for c in table_columns(tm.table)}

    def needs(cm: ColumnMap) -> bool:
        col = kinds.get(cm.canonical)
        if col is None or cm.source is None:
            return False
        if col.dtype != pl.String:
            return cm.source not in (native or ()) or (col.name == "dose_mg" and cm.unit == "mg/kg")
        # (a required one is screened by its null check already)
        return native is not None and col.allowed is not None and not col.required

    return {cm.source: f"__present_{i}" for i, cm in enumerate(tm.columns)  # type: ignore[misc]
            if needs(cm)}


def _typed_select(tm: TableMap, exprs: dict[str, str], native: Collection[str] | None = None) -> str:
    """Presence flags and typed values (all the checks need) over a row of source columns."""
    flags = "".join(f", {quote_ident(src)} is not null as {flag}"
                    for src, flag in _presence(tm, native).items())
    values = ", ".join(f"{e} as {value_column(name)}" for name, e in exprs.items())
    return f"{flags.removeprefix(', ')}, {values}" if flags else values


# (condition on a row of raw text and typed values, its cheap screen on a row of the typed
# table, column, rule, message, raw column)
_Check = tuple[str, str, str, str, str, str]


def _checks(tm: TableMap, sql: _Sql, native: Collection[str] | None = None, *,
            labels: Mapping[str, str] | None = None) -> list[_Check]:
    """The checks of every mapped column; messages name a source column by ``labels``
    (staged column -> the file's name for it, :mod:`cohort.staged`)."""
    by_name = {c.canonical: c for c in tm.columns}
    present = _presence(tm, native)
    checks: list[_Check] = []
    for col in table_columns(tm.table):
        cm = by_name.get(col.name)
        if cm is None or cm.source is None:
            continue
        rawcol = quote_ident(cm.source)
        named = repr((labels or {}).get(cm.source, cm.source))
        val = value_column(col.name)
        fmt = (f" in format {cm.date_format}" if cm.date_format else
               " (expected yyyy-mm-dd; set date_format in the mapping for another format)")
        what = {pl.Date: f"a date{fmt}", pl.Float64: "a number", pl.Int16: "a whole number",
                pl.Boolean: "yes/no", pl.String: "text"}[col.dtype]  # type: ignore[index]

        def check(cond: str, rule: str, message: str, *, cheap: str | None = None,
                  column: str = col.name, raw_column: str = rawcol) -> None:
            # `cheap` finds at least every row `cond` finds, without trimming text: it
            # screens the whole batch, `cond` then sorts out the few rows it kept
            checks.append((cond, cheap or cond, column, rule, message, raw_column))

        if col.required:
            check(f"{_text(rawcol)} is null", f"required.{col.name}",
                  f"{named} is empty but {tm.table}.{col.name} is required",
                  cheap=f"{val} is null")
        if col.dtype != pl.String:
            per_kg = f" and {value_column('weight_kg')} is not null" if cm.unit == "mg/kg" else ""
            hint = " (set decimal_comma or thousands under [read] if the site writes numbers that way)" \
                if col.dtype in (pl.Float64, pl.Int16) else ""
            check(f"{_text(rawcol)} is not null and {val} is null{per_kg}", f"coerce.{col.name}",
                  f"{named} value cannot be read as {what}{hint}",
                  cheap=f"{present[cm.source]} and {val} is null" if cm.source in present else "false")
        if col.allowed:
            allowed = ", ".join(sql.bind(a) for a in col.allowed)
            check(f"{val} is not null and {val} not in ({allowed})",
                  f"allowed.{col.name}",
                  f"{named} value is not one of {', '.join(col.allowed)}; "
                  "add a recode for it to the mapping or correct the source",
                  cheap=None if native is None else
                  f"{present[cm.source]} and {val} is null" if cm.source in present else "false")
        if col.dtype == pl.Float64:
            check(f"{val} is not null and not isfinite({val})", f"coerce.{col.name}",
                  f"{named} value is not a finite number")
        if col.domain is not None:
            predicate, wording = col.domain
            guard = f"isfinite({val})" if col.dtype == pl.Float64 else f"{val} is not null"
            check(f"{guard} and not ({predicate.format(*[val] * 2)})", f"domain.{col.name}",
                  f"{named} value must be {wording} for {tm.table}.{col.name}")
        if col.name == "dose_mg" and cm.unit == "mg/kg":
            check(f"{_text(rawcol)} is not null and {value_column('weight_kg')} is null", "unit.dose_mg",
                  "dose is given in mg/kg but weight_kg is missing, so dose in mg is unknown",
                  cheap=f"{present[cm.source]} and {value_column('weight_kg')} is null")
    return checks


def _screen(checks: list[_Check]) -> str:
    """True for a row of the typed table with any problem (and for some without); never
    null, so that a row is either screened out or kept."""
    return f"coalesce({' or '.join(f'({c[1]})' for c in checks) or 'false'}, false)"


def _canonical(table: str, relation: str) -> str:
    columns = ", ".join(f"{value_column(c.name)} as {quote_ident(c.name)}" for c in table_columns(table))
    return f"select source_line, {columns} from {relation}"


def coerce(con: duckdb.DuckDBPyConnection, tm: TableMap, src: SourceFile, *, raw: str,
           typed: str, errors: str, decimal_comma: bool,
           labels: Mapping[str, str] | None = None) -> Coerced:
    """Write ``typed`` (typed values of the rows of ``raw``, one pass) and ``errors``
    (one row per value that failed); return the query of the typed rows. ``tm``'s sources
    are the staged columns of ``raw``, ``labels`` their names in the file (messages)."""
    sql = _Sql()
    exprs = _values(tm, src, sql, decimal_comma=decimal_comma)
    # written out once: a filter over the unwritten query would compute the values again
    # for every condition that reads them (measured: 2x slower at 1M rows)
    make = (f"create or replace temp table {typed} as select r.source_line, r._parse_error, "
            f"{_typed_select(tm, exprs)} from {raw} r")
    con.execute(make, sql.used_in(make))

    # one pass over the batch finds the rows with any problem (few); their reasons are
    # then read from those rows alone
    checks = _checks(tm, sql, labels=labels)
    bad = f"{errors}_rows"
    find_bad = (f"create or replace temp table {bad} as select r.*, t.* exclude "
                f"(source_line, _parse_error) from (select * from {typed} "
                f"where _parse_error is not null or ({_screen(checks)})) t "
                f"join {raw} r using (source_line)")
    con.execute(find_bad, sql.used_in(find_bad))
    selects = [f"select source_line, null as column_name, null as value, 'parse.record' as rule, "
               f"_parse_error as message from {bad} where _parse_error is not null"]
    for cond, _, column, rule, message, raw_column in checks:
        selects.append(f"select source_line, {sql.bind(column)}, {raw_column}, {sql.bind(rule)}, "
                       f"{sql.bind(message)} from {bad} where _parse_error is null and ({cond})")
    reasons = f"create or replace temp table {errors} as {' union all '.join(selects)}"
    try:
        con.execute(reasons, sql.used_in(reasons))
    finally:
        con.execute(f"drop table if exists {bad}")
    return Coerced(_canonical(tm.table, typed) + without_lines(con, errors), {})


_LINE_BLOCK = 2048


def _native_types(tm: TableMap) -> tuple[dict[str, str], str | None]:
    """Source columns DuckDB's CSV reader can type itself, exactly as :func:`_value_expr`
    would (no recode, no thousands marks, one date format for the file), and that format."""
    uses: dict[str, list[tuple[Column, ColumnMap]]] = {}
    columns = {c.name: c for c in table_columns(tm.table)}
    for cm in tm.columns:
        if cm.source is not None and cm.canonical in columns:
            uses.setdefault(cm.source, []).append((columns[cm.canonical], cm))
    date_formats = {cm.date_format for (col, cm), *more in uses.values()
                    if not more and col.dtype == pl.Date}
    date_format = date_formats.pop() if len(date_formats) == 1 else None
    native: dict[str, str] = {}
    for source, [(col, cm), *more] in uses.items():
        if more or cm.recode or cm.pseudonymise or cm.thousands:
            continue
        if col.dtype == pl.Date and cm.date_format == date_format:
            native[source] = "DATE"
        elif col.dtype in (pl.Float64, pl.Int16):
            native[source] = "DOUBLE"
    return native, date_format


def _native_value(col: Column, source: str) -> str:
    return _smallint(source) if col.dtype == pl.Int16 else source


#: the only operators a typed read may be planned with: each keeps the order of the rows it
#: is given (DuckDB's docs, "Order Preservation": SELECT, WHERE, FROM of one table; not JOIN,
#: which a long `in (...)` list becomes), so that a row's rank in the table is its record's
_ORDER_KEEPING = frozenset({"PROJECTION", "FILTER", "READ_CSV"})


def _operators(node: dict[str, Any]) -> Iterator[str]:
    yield node["name"]
    for child in node.get("children", ()):
        yield from _operators(child)


def _keeps_order(con: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any]) -> bool:
    """Whether DuckDB plans ``query`` with order-keeping operators only (EXPLAIN)."""
    plan = json.loads(con.execute(f"explain (format json) {query}", params).fetchall()[0][1])
    return all(op in _ORDER_KEEPING for node in plan for op in _operators(node))


@contextmanager
def _insertion_order_kept(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """DuckDB's preserve_insertion_order on (its default; a study may not turn it off here)."""
    before = bool(scalar(con, "select current_setting('preserve_insertion_order')"))
    con.execute("set preserve_insertion_order = true")
    try:
        yield
    finally:
        con.execute(f"set preserve_insertion_order = {str(before).lower()}")


#: lines of kept rows read again to confirm that every row is on its line (beside the rejects
#: and suspects, read again anyway); a read out of order moves whole chunks of rows, so a
#: sample spread over the file finds it
_LINE_SAMPLE = 64


def _spread_lines(src: SourceFile, count: int) -> list[int]:
    """About ``count`` record lines spread over ``src``: the first line that starts in each
    of ``count`` blocks of its newline index spread over the file (read without indexing
    the block), or lines spread evenly over a file of fewer blocks."""
    lines, before = src.lines or 0, src.newlines_before
    if len(before) >= count:
        blocks = sorted({round(i * (len(before) - 1) / (count - 1)) for i in range(count)})
        return [before[b] + 2 for b in blocks if before[b] + 2 <= lines]
    step = max(1, (lines - 1) // count)
    return list(range(2, lines + 1, step))


def _native_from_text(kind: str, source: str, *, date_format: str | None,
                      decimal_comma: bool) -> str:
    """The value DuckDB's reader gives a native column (``kind``), from its text."""
    if kind == "DATE":
        return (f"try_strptime({source}, {sql_literal(date_format)})::date" if date_format
                else f"try_cast({source} as date)")
    number = f"replace({source}, ',', '.')" if decimal_comma else source
    return f"try_cast({number} as double)"


def _lines_confirmed(con: duckdb.DuckDBPyConnection, tm: TableMap, src: SourceFile,
                     dialect: CsvDialect, exprs: dict[str, str], sql: _Sql, *,
                     native: dict[str, str], typed: str, raw: str, rejects: list[int],
                     date_format: str | None, decimal_comma: bool) -> bool:
    """Whether the typed rows on lines read again as text (the problem lines in ``raw``
    and a sample spread over the file) are what that text gives: an independent check
    that no row of ``typed`` claims another record's line.

    The same value expressions run over the text, native columns first typed from text as
    DuckDB's reader would; a native value that only one side could read is no evidence
    (the two parsers may differ at the edges), two that differ are."""
    sample = f"{typed}_sample"
    stage_csv_lines(con, src, dialect, _spread_lines(src, _LINE_SAMPLE), sample)
    by_source = {cm.canonical: cm.source for cm in tm.columns}
    weight = by_source.get("weight_kg")
    loose = {name for name in exprs if by_source.get(name) in native}
    if "dose_mg" in exprs and weight in native:
        loose.add("dose_mg")
    retyped = ", ".join(
        f"{_native_from_text(kind, quote_ident(name), date_format=date_format, decimal_comma=decimal_comma)}"
        f" as {quote_ident(name)}" for name, kind in native.items())
    text = (f"select source_line, _parse_error, * exclude (source_line, _parse_error)"
            f"{f' replace ({retyped})' if retyped else ''} from (select * from {raw} union all by "
            f"name select * from {sample}) where source_line not in (select unnest($rejected::bigint[]))")
    values = ", ".join(f"{e} as {value_column(n)}" for n, e in exprs.items())
    differs = " or ".join(
        f"(s.{value_column(n)} <> t.{value_column(n)})" if n in loose else
        f"(s.{value_column(n)} is distinct from t.{value_column(n)})" for n in exprs)
    # the rows that claim those lines, found by rank (a reject has none: line L is kept row
    # L - 2 - (rejects before L)), not through the view of `typed`: a second derivation
    claimed = (f"select m.source_line, t.* from (select rowid as _rank, * from {typed}_rows "
               f"where rowid = any($ranks::bigint[])) t join (select unnest($ranks::bigint[]) as "
               f"_rank, unnest($claimed::bigint[]) as source_line) m using (_rank)")
    check = (f"select count(*) from (select source_line, _parse_error, {values} from ({text})) s "
             f"left join ({claimed}) t using (source_line) where t.source_line is null "
             f"or s._parse_error is not null or coalesce({differs}, false)")
    try:
        lines = [r[0] for r in con.execute(f"select source_line from {raw} union select "
                                           f"source_line from {sample}").fetchall()]
        kept = sorted(set(lines) - set(rejects))
        ranks = [line - 2 - bisect.bisect_left(rejects, line) for line in kept]
        wrong = int(scalar(con, check, {**sql.used_in(check), "rejected": rejects,
                                        "ranks": ranks, "claimed": kept}))
    finally:
        drop_staged(con, sample)
    return wrong == 0


def coerce_csv(con: duckdb.DuckDBPyConnection, tm: TableMap, src: SourceFile, *,
               read: ReadOptions, raw: str, typed: str, errors: str,
               labels: Mapping[str, str] | None = None) -> tuple[Coerced, int] | None:
    """The fast path of :func:`coerce` for a delimited text file: read and type it in one
    pass; return the typed rows and the number of records read, or None if the file's
    records are not one per line or do not decode (the caller then stages it as text and
    coerces that). A file in an encoding DuckDB does not know is read from a UTF-8 copy.

    DuckDB's reader types the columns it can (dates, numbers) as :func:`coerce` would.
    A record it cannot type is a reject (with its line); a typed row the cheap screen
    flags is a suspect. Only rejects and suspects are read again as text, from their
    lines, and go through :func:`coerce` itself, which gives the reasons (``errors``)
    and the values of those that turn out fine: the result is the same as :func:`coerce`
    on the whole file.
    """
    dialect = csv_dialect(src, read)
    if dialect.duckdb_encoding is None:  # DuckDB reads a UTF-8 copy (the same lines) instead
        with tempfile.TemporaryDirectory(prefix="cohort-") as folder:
            copy = utf8_copy(src, dialect, Path(folder))
            return None if copy is None else coerce_csv(
                con, tm, copy, read=replace(read, encoding="utf-8"), raw=raw, typed=typed,
                errors=errors, labels=labels)
    sql = _Sql()
    native, date_format = _native_types(tm)
    types = [native.get(staged_name(i), "VARCHAR") for i in range(len(dialect.names))]
    exprs = _values(tm, src, sql, decimal_comma=read.decimal_comma, native=native)
    scan = csv_scan(src, dialect, types=types, date_format=date_format,
                    decimal_comma=read.decimal_comma, rejects=f"{typed}_rejects")
    rows = f"{typed}_rows"
    read_typed = f"select {_typed_select(tm, exprs, native)} from ({scan})"
    if not _keeps_order(con, read_typed, sql.used_in(read_typed)):
        return None  # the exact path then gives every row its line
    make = f"create or replace temp table {rows} as {read_typed}"
    try:
        with _insertion_order_kept(con):
            con.execute(make, sql.used_in(make))
    except duckdb.Error:  # an unterminated quote, say: the careful path reports it by line
        return None
    rejects = [r[0] for r in con.execute(
        f"select distinct line from {typed}_rejects order by line").fetchall()]
    kept = int(scalar(con, f"select count(*) from {rows}"))
    if kept + len(rejects) + 1 != src.lines:
        con.execute(f"drop table {rows}")
        return None
    # a kept row's line: its rank in the table (which keeps the file's order) + 2, + the
    # rejects before it. Reject i (0-based, in line order) has k_i = line_i - 2 - i kept rows
    # before it; the k_i of each block of 2048 kept rows are joined to the rows on their
    # block (a hash join on a small table: no sort of the batch, little memory)
    if rejects and kept:  # (no kept row, every record rejected: no gaps to place)
        ks = [line - 2 - i for i, line in enumerate(rejects)]
        starts = range(0, kept, _LINE_BLOCK)
        firsts = [bisect.bisect_left(ks, start) for start in starts]
        con.execute(f"create or replace temp table {typed}_gaps as select unnest(?::bigint[]) as "
                    "block, unnest(?::bigint[]) as before, unnest(?::bigint[][]) as inside",
                    [list(range(len(starts))), firsts,
                     [ks[a:b] for a, b in zip(firsts, [*firsts[1:], len(ks)], strict=True)]])
        con.execute(f"create or replace temp view {typed} as select (t.rowid + 2 + g.before + "
                    "len(list_filter(g.inside, lambda k: k <= t.rowid)))::bigint as source_line, "
                    f"t.* from {rows} t join {typed}_gaps g on g.block = t.rowid // {_LINE_BLOCK}")
    else:
        con.execute(f"create or replace temp view {typed} as select (rowid + 2)::bigint as "
                    f"source_line, * from {rows}")
    checks = _checks(tm, sql, native, labels=labels)
    screen = f"select source_line from {typed} where {_screen(checks)}"
    suspects = [r[0] for r in con.execute(screen, sql.used_in(screen)).fetchall()]
    problems = sorted(set(rejects) | set(suspects))
    stage_csv_lines(con, src, dialect, problems, raw)
    if not _lines_confirmed(con, tm, src, dialect, exprs, sql, native=native, typed=typed,
                            raw=raw, rejects=rejects, date_format=date_format,
                            decimal_comma=read.decimal_comma):
        drop_staged(con, raw)
        return None  # never a wrong line: the exact path reads the file as text instead
    again = coerce(con, tm, src, raw=raw, typed=f"{typed}_again", errors=errors, labels=labels,
                   decimal_comma=read.decimal_comma)
    if not problems:
        return Coerced(_canonical(tm.table, typed), {}), kept
    # the suspects are the rows the screen finds (the rejects are not in `typed` at all)
    good = f"{_canonical(tm.table, typed)} where not ({_screen(checks)}) union all {again.sql}"
    return Coerced(good, sql.used_in(good)), kept + len(rejects)


def drop_coerced(con: duckdb.DuckDBPyConnection, typed: str) -> None:
    """Drop the working tables :func:`coerce_csv` and :func:`coerce` made for ``typed``."""
    for suffix in ("", "_rows", "_rejects", "_rejects_scan", "_gaps", "_again", "_sample"):
        drop_staged(con, typed + suffix)
