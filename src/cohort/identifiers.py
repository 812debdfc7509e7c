"""Direct identifiers: find them in a site file, refuse, mask or pseudonymise them.

A study database holds no names, e-mail addresses, phone numbers, street
addresses, full dates of birth or national identity numbers. The rules:

- **Columns.** A mapped column that looks like an identifier is refused (the whole
  file, with one line saying how to fix the mapping) unless the mapping maps it with
  ``pseudonymise = true``: then each value is replaced by a keyed hash (HMAC-SHA256)
  under the study secret. A column looks like one by its *name*
  (``_NAME_PATTERNS``), or by its *values*: at least half of its non-empty values (and
  3 or more) are of one kind (``column_counts``, one pass of DuckDB over the whole
  column, never a sample), or, in a code column (``participant_id``, ``site_id``),
  a single e-mail address. A column the mapping drops is never read into any table,
  not even the raw record of a quarantined row, which holds the mapped source columns
  only.
- **Free text** (a canonical text column without allowed values, e.g. ``events.term``):
  each value is screened (``mask_identifiers``) for e-mail addresses, national ID
  numbers (Norwegian fødselsnummer, UK NHS number with its check digit, French NIR,
  US SSN), phone numbers (8 to 15 digits), full dates of birth (a date after "born",
  "DOB", "født", "né(e)", ...) and names after a title or a marker ("pt", "patient",
  "name:", "Mr", "Dr", ...). By default the matched span is replaced by a placeholder
  (``[e-mail removed]``) in the stored value, and a warning finding without the value
  tells the site which line held what; a column mapped with ``identifiers =
  "refuse"`` sends such a row to quarantine instead (its raw record masked too).
- **Everything quoted**: the raw record and value of a quarantined row and the value
  of a finding are masked by the same screen, whatever the column.
- **The secret** lives outside the database and its folder: the environment variable
  ``COHORT_STUDY_SECRET`` or the file named by ``COHORT_STUDY_SECRET_FILE``; a secret
  file inside the study folder is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from cohort.coerce import Coerced
from cohort.db import quote_ident, sql_literal
from cohort.errors import MappingError
from cohort.mapping import ColumnMap, TableMap
from cohort.tables import Column, table_columns

__all__ = ["CODE_COLUMNS", "EMAIL_PATTERN", "PLACEHOLDERS", "PREFILTER", "Suspect", "column_counts",
           "Screened", "find_identifiers", "free_text_columns", "judge_columns", "mask_identifiers", "masked_kinds",
           "masked", "pseudonymise", "register_functions", "screen_free_text",
           "study_secret", "typed_column_counts"]

EMAIL, PHONE, NATIONAL_ID, ADDRESS, BIRTH_DATE, NAME = (
    "an e-mail address", "a phone number", "a national identity number", "a street address",
    "a full date of birth", "a person's name")

_NAME_PATTERNS: dict[str, re.Pattern[str]] = {
    NAME: re.compile(
        r"^(first_?name|last_?name|given_?name|family_?name|surname|full_?name|name|patient_?name"
        r"|nom|prenom|navn|fornavn|etternavn|initials)$"),
    EMAIL: re.compile(r"e_?mail|courriel|epost"),
    PHONE: re.compile(r"phone|^tel|mobile|telefon|portable"),
    ADDRESS: re.compile(r"address|street|adresse|^addr|postcode|post_?code|zip"),
    BIRTH_DATE: re.compile(r"^(dob|date_?of_?birth|birth_?date|d_?naiss|date_?naissance"
                           r"|fodselsdato|f_dselsdato)$"),
    NATIONAL_ID: re.compile(
        r"ssn|social_?security|nhs_?(no|number)|national_?id|nir|insee|personnummer"
        r"|fodselsnummer|f_dselsnummer|passport"),
}

# The value patterns: each is both a Python and an RE2 (DuckDB) regular expression, so that
# the column screen (SQL) and the free-text screen (Python) apply the same rule.
_EMAIL = EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
_SSN = r"\d{3}-\d{2}-\d{4}"
_FNR = r"\d{6} ?\d{5}"  # Norwegian fødselsnummer, 11 digits
_NIR = r"[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3}(?: ?\d{2})?"  # 13 or 15
_NHS = r"\d{3}[ -]?\d{3}[ -]?\d{4}"  # 10 digits (its check digit is checked in free text)
_NATIONAL_ID = f"(?:{_SSN}|{_FNR}|{_NIR}|{_NHS})"
#: 8 to 15 digits, with phone punctuation only
_PHONE_CHARS = r"\+?[ ()-]*(?:[0-9][ ()-]*){8,15}"
_PLAIN_DECIMAL = r"[0-9]+\.[0-9]+"
_DATE = r"\d{1,4}[-./]\d{1,2}[-./]\d{1,4}"
_DAY_MONTH = r"(?:0[1-9]|[12]\d|3[01])(?:0[1-9]|1[0-2])"
#: yyyymmdd or ddmmyyyy: a date written without separators, not a phone number
_COMPACT_DATE = rf"(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])|{_DAY_MONTH}(?:19|20)\d\d"
_ADDRESS = (r"(?i)\d+[a-z]?,? [\w .'-]+ (?:street|st|road|rd|avenue|ave|lane|gate|veien|vegen"
            r"|rue|bd)\b.*")
_MONTHS = (r"january|february|march|april|may|june|july|august|september|october|november"
           r"|december|januar|februar|mars|juni|juli|oktober|desember|janvier|février|avril"
           r"|mai|juin|juillet|août|septembre|octobre|novembre|décembre|janv|févr|avr|juil"
           r"|sept|déc|jan|feb|mar|apr|jun|jul|aug|sep|oct|okt|nov|dec|des")
_BIRTH_MARKERS = (r"born|b\.|dob|d\.o\.b\.?|date of birth|birth ?date|birthday|født|fødd|f\."
                  r"|fødselsdato|née?|date de naissance")
_NAME_MARKERS = (r"pt|patient|pasient|patiente|name|navn|nom|mr|mrs|ms|miss|dr|mme|mlle|herr"
                 r"|fru|sig|sra?")
#: text this does not match holds nothing the free-text screen masks (every rule needs an
#: @, 8 characters of digits and phone punctuation, or a birth or name marker): only such
#: text goes through Python
PREFILTER = rf"(?i)@|[0-9][0-9 ()+-]{{6,}}[0-9]|\b(?:{_BIRTH_MARKERS})|\b(?:{_NAME_MARKERS})\b"

PLACEHOLDERS: dict[str, str] = {
    EMAIL: "[e-mail removed]", NATIONAL_ID: "[national ID removed]",
    PHONE: "[phone number removed]", BIRTH_DATE: "[date of birth removed]",
    NAME: "[name removed]",
}
_FINDING_SCHEMA = {"source_line": pl.Int64, "participant_id": pl.String, "column_name": pl.String,
                   "value": pl.String, "rule": pl.String, "severity": pl.String,
                   "message": pl.String}
#: canonical text columns that hold codes (screened as columns, not masked)
CODE_COLUMNS = ("participant_id", "site_id")


@dataclass(frozen=True)
class Suspect:
    """A column that looks like a direct identifier, and why (never quoting a value)."""

    column: str
    kind: str
    evidence: str


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _name_kind(column: str) -> str | None:
    norm = _normal(column)
    return next((k for k, p in _NAME_PATTERNS.items() if p.search(norm)), None)


#: the lengths a national ID number can have (10: an NHS number without spaces; 21: a
#: French NIR with spaces and its key), and the fewest characters of a phone number
_NATIONAL_ID_LENGTHS = (10, 21)
_PHONE_MIN_LENGTH = 8


def _value_predicates(v: str, *, guarded: bool = True) -> dict[str, str]:
    """SQL predicate of each kind on a whole (trimmed) value ``v``: regular expressions,
    run only where a cheap necessary condition holds (an ``@``; a length a national ID or
    phone number can have, and not the shape of an ISO date, which is never either; a
    leading digit and a space). Most values of a site file (codes, scores, dates) fail
    those conditions, so a column costs a string length or two per value, not four
    regular expressions (10M rows x 4 columns: 3.8 s unguarded). ``guarded=False`` gives
    the regular expressions alone: the guarded predicates must agree with them on every
    value (tests/unit/test_identifier_predicates.py)."""
    not_a_date = sql_literal(f"(?:{_DATE})|(?:{_COMPACT_DATE})")
    national_id = f"regexp_full_match({v}, {sql_literal(_NATIONAL_ID)})"
    phone = (f"case when regexp_full_match({v}, {sql_literal(_PHONE_CHARS)}) then "
             f"not regexp_full_match({v}, {not_a_date}) end")
    if guarded:
        low, high = _NATIONAL_ID_LENGTHS
        iso_date = f"(length({v}) = 10 and {v}[5] = '-' and {v}[8] = '-')"
        national_id = (f"case when length({v}) between {low} and {high} and "
                       f"left({v}, 1) between '0' and '9' and not {iso_date} then {national_id} end")
        phone = f"case when length({v}) >= {_PHONE_MIN_LENGTH} and not {iso_date} then {phone} end"
    return {
        EMAIL: f"case when contains({v}, '@') then regexp_full_match({v}, {sql_literal(_EMAIL)}) end",
        NATIONAL_ID: national_id,
        PHONE: phone,
        ADDRESS: (f"case when left({v}, 1) between '0' and '9' and contains({v}, ' ') then "
                  f"regexp_full_match({v}, {sql_literal(_ADDRESS)}) end"),
    }


def column_counts(con: duckdb.DuckDBPyConnection, relation: str,
                  columns: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per column of ``relation`` (a query), its non-empty values (key ``""``) and how many
    of them look like each kind of identifier: one pass over the whole relation."""
    if not columns:
        return {}
    values = ", ".join(f"nullif(trim({quote_ident(c)}::varchar), '') as v{i}"
                       for i, c in enumerate(columns))
    aggregates: list[str] = []
    for i in range(len(columns)):
        aggregates.append(f"count(v{i}) as n{i}")
        aggregates += [f"count_if({p}) as k{i}_{j}"
                       for j, p in enumerate(_value_predicates(f"v{i}").values())]
    [row] = con.execute(f"select {', '.join(aggregates)} from (select {values} "
                        f"from ({relation}))").fetchall()
    kinds = list(_value_predicates("v"))
    width = 1 + len(kinds)
    return {column: {"": int(row[i * width] or 0),
                     **{k: int(row[i * width + 1 + j] or 0) for j, k in enumerate(kinds)}}
            for i, column in enumerate(columns)}


#: a number of 8 to 15 integral digits: what a phone (or national ID) number typed as a
#: number becomes (the text rule: 8 to 15 digits, :data:`_PHONE_CHARS`)
_PHONE_NUMBER = "({v} = floor({v}) and abs({v}) >= 1e7 and abs({v}) < 1e15)"


def _vocabulary_is_clean(con: duckdb.DuckDBPyConnection, allowed: Iterable[str] | None) -> bool:
    """Whether ``allowed`` (a column's allowed values; None: free text) holds no value of
    any kind of identifier."""
    if allowed is None:
        return False
    hits = " or ".join(f"coalesce({p}, false)" for p in _value_predicates("v").values())
    return not con.execute(f"select count_if({hits}) from (select unnest(?::varchar[]) as v)",
                           [list(allowed)]).fetchone()[0]


def typed_column_counts(con: duckdb.DuckDBPyConnection, *, rows: Coerced, failing: str,
                        columns: dict[str, Column]) -> dict[str, dict[str, int]]:
    """:func:`column_counts` of every record of a file, from its typed rows and the text
    of the rest: ``rows`` are the records to be stored (canonical columns, typed),
    ``failing`` a query of the text (staged source columns) of those that will not be;
    ``columns`` maps each source column to its canonical column.

    A typed value is judged as the text it came from would be: text by the same
    predicates (text of a vocabulary, which the typed rows hold only values of, once per
    allowed value); a number is a phone number if it has 8 to 15 integral digits; a date
    or a yes/no is never an identifier. One pass over the typed rows, which are in memory
    already, instead of a second read of the file as text.
    """
    counts = column_counts(con, failing, list(columns))
    kinds = list(_value_predicates("v"))
    aggregates: list[str] = []
    for col in columns.values():
        v = f"nullif({quote_ident(col.name)}, '')" if col.dtype == pl.String else quote_ident(col.name)
        preds = ({} if col.dtype == pl.String and _vocabulary_is_clean(con, col.allowed)
                 else _value_predicates(v) if col.dtype == pl.String
                 else {PHONE: _PHONE_NUMBER.format(v=v)} if col.dtype.is_numeric() else {})
        aggregates.append(f"count({v})")
        aggregates += [f"count_if({preds[k]})" if k in preds else "0" for k in kinds]
    [row] = con.execute(f"select {', '.join(aggregates)} from ({rows.sql})", rows.params).fetchall()
    width = 1 + len(kinds)
    for i, source in enumerate(columns):
        got = counts[source]
        for j, kind in enumerate(["", *kinds]):
            got[kind] += int(row[i * width + j] or 0)
    return counts


def judge_columns(columns: Iterable[str], counts: dict[str, dict[str, int]], *,
                  codes: Iterable[str] = (), threshold: float = 0.5) -> list[Suspect]:
    """The columns that look like identifiers by name, or by their ``counts`` (see the
    module's rules; ``codes``: the columns where a single e-mail address is enough)."""
    found: list[Suspect] = []
    codes = set(codes)
    for column in columns:
        kind = _name_kind(column)
        if kind is not None:
            found.append(Suspect(column, kind, f"its name {column!r}"))
            continue
        c = counts.get(column, {})
        values = c.get("", 0)
        for kind in (EMAIL, NATIONAL_ID, PHONE, ADDRESS):
            hits = c.get(kind, 0)
            if hits and (hits >= max(3, threshold * values) or (kind == EMAIL and column in codes)):
                found.append(Suspect(column, kind, f"{hits:,} of its {values:,} values"))
                break
    return found


def find_identifiers(header: list[str], samples: dict[str, list[str]],
                     *, threshold: float = 0.5) -> list[Suspect]:
    """Columns whose name, or most of whose given values, look like direct identifiers
    (the rule of :func:`judge_columns`, on values in memory).

    Examples
    --------
    >>> find_identifiers(["contact"], {"contact": ["a@b.no", "c@d.no", "e@f.no"]})[0].kind
    'an e-mail address'
    """
    con = duckdb.connect()
    try:
        counts: dict[str, dict[str, int]] = {}
        for h in header:
            con.register("_cohort_values", pl.DataFrame(
                {h: pl.Series(samples.get(h, []), dtype=pl.String)}))
            try:
                counts[h] = column_counts(con, "select * from _cohort_values", [h])[h]
            finally:
                con.unregister("_cohort_values")
        return judge_columns(header, counts, threshold=threshold)
    finally:
        con.close()


# -- free text -------------------------------------------------------------------------
_EMAIL_SPAN = re.compile(_EMAIL)
_BIRTH_SPAN = re.compile(
    rf"(?i)\b(?:{_BIRTH_MARKERS})(?:\s*:|\s+(?:on|le|den))?\s*"
    rf"(\d{{1,4}}[-./ ]\d{{1,2}}[-./ ]\d{{1,4}}|\d{{1,2}}\.? (?:{_MONTHS})\.?,? \d{{2,4}}"
    rf"|(?:{_MONTHS})\.? \d{{1,2}},? \d{{2,4}})")
_ID_SPAN = re.compile(rf"(?<![\w-]){_NATIONAL_ID}(?![\w-])")
_PHONE_SPAN = re.compile(r"(?<![\w.])(?:\+|00)?\(?\d[\d ()-]{6,22}\d(?!\w)")
_DATE_SPAN = re.compile(_DATE)
_NAME_SPAN = re.compile(
    rf"\b(?i:{_NAME_MARKERS})\b\.?:?\s+([A-ZÀ-ÖØ-Þ][\w'’-]*(?:[ -][A-ZÀ-ÖØ-Þ][\w'’-]*){{0,3}})")


def _nhs_check_digit_ok(digits: str) -> bool:
    """The NHS number's modulus-11 check digit."""
    if len(digits) != 10:
        return False
    check = 11 - sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True)) % 11
    return (0 if check == 11 else check) == int(digits[9])


def _national_id(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = re.sub(r"\D", "", text)
    if len(digits) == 10 and not _nhs_check_digit_ok(digits):
        return text  # not an NHS number; the phone rule masks 10 digits
    return PLACEHOLDERS[NATIONAL_ID]


def _is_phone(text: str) -> bool:
    digits = sum(ch.isdigit() for ch in text)
    return (8 <= digits <= 15 and not _DATE_SPAN.search(text)
            and not re.fullmatch(_COMPACT_DATE, text.strip()))


def _phone(match: re.Match[str]) -> str:
    """Mask the longest runs of the match's space-separated pieces that are a phone
    number (a date beside a phone number makes the whole match too long to be one)."""
    text = match.group(0)
    if _is_phone(text):
        return PLACEHOLDERS[PHONE]
    pieces = text.split(" ")
    out: list[str] = []
    i = 0
    while i < len(pieces):
        for j in range(len(pieces), i, -1):
            window = " ".join(pieces[i:j])
            if _is_phone(window):
                out.append(PLACEHOLDERS[PHONE])
                i = j
                break
        else:
            out.append(pieces[i])
            i += 1
    return " ".join(out)


def _name(match: re.Match[str]) -> str:
    start, end = match.span(1)
    whole = match.group(0)
    offset = match.start(0)
    return whole[:start - offset] + PLACEHOLDERS[NAME] + whole[end - offset:]


def _birth(match: re.Match[str]) -> str:
    start, end = match.span(1)
    whole = match.group(0)
    offset = match.start(0)
    return whole[:start - offset] + PLACEHOLDERS[BIRTH_DATE] + whole[end - offset:]


def mask_identifiers(text: str | None) -> str | None:
    """``text`` with every e-mail address, date of birth, national ID, phone number and
    marked name replaced by its placeholder (in that order).

    Examples
    --------
    >>> mask_identifiers("pt Jane Smith jane.smith@example.org tel +47 912 34 567")
    'pt [name removed] [e-mail removed] tel [phone number removed]'
    >>> mask_identifiers("nausea grade 2 on 2020-03-01, dose 56 mg")
    'nausea grade 2 on 2020-03-01, dose 56 mg'
    """
    if text is None:
        return None
    text = _EMAIL_SPAN.sub(PLACEHOLDERS[EMAIL], text)
    text = _BIRTH_SPAN.sub(_birth, text)
    text = _ID_SPAN.sub(_national_id, text)
    text = _PHONE_SPAN.sub(_phone, text)
    return _NAME_SPAN.sub(_name, text)


def masked_kinds(text: str) -> list[str]:
    """The kinds of identifier whose placeholders ``text`` (masked) holds."""
    return [kind for kind, placeholder in PLACEHOLDERS.items() if placeholder in text]


#: SQL function: the value masked (vectorised; Python only for the values PREFILTER keeps)
MASK_FUNCTION = "cohort_mask_identifiers"


def _mask_arrow(values: pa.Array) -> pa.Array:
    """:func:`mask_identifiers` over an Arrow array of text, the prefilter (RE2, as in
    DuckDB) run by Arrow: 1M values without a candidate in about 1 s."""
    hits = pc.fill_null(pc.match_substring_regex(values, PREFILTER), False)
    if not pc.any(hits).as_py():
        return values
    return pa.array([mask_identifiers(v) if hit else v
                     for v, hit in zip(values.to_pylist(), hits.to_pylist(), strict=True)],
                    pa.string())


def register_functions(con: duckdb.DuckDBPyConnection, *, secret: bytes | None = None) -> None:
    """Define ``cohort_mask_identifiers(varchar)`` on ``con`` and, given the study secret,
    ``cohort_pseudonymise(varchar)``."""
    functions: dict[str, tuple[Callable[..., object], str]] = {MASK_FUNCTION: (_mask_arrow, "arrow")}
    if secret is not None:
        functions["cohort_pseudonymise"] = (lambda v: pseudonymise(v, secret=secret), "native")
    for name, (function, kind) in functions.items():
        try:
            con.remove_function(name)
        except (duckdb.InvalidInputException, duckdb.CatalogException):
            pass
        con.create_function(name, function, [duckdb.sqltype("VARCHAR")],
                            duckdb.sqltype("VARCHAR"), type=kind, null_handling="special")


def masked(expression: str) -> str:
    """SQL: ``expression`` (text) with its identifiers masked."""
    return f"{MASK_FUNCTION}({expression})"


def free_text_columns(tm: TableMap) -> list[ColumnMap]:
    """The mapped columns of ``tm`` that are free text: canonical text without allowed
    values and not a code (``CODE_COLUMNS``), filled from a source column."""
    kinds = {c.name: c for c in table_columns(tm.table)}
    return [cm for cm in tm.columns if cm.source is not None and not cm.pseudonymise
            and cm.canonical in kinds and kinds[cm.canonical].dtype == pl.String
            and kinds[cm.canonical].allowed is None and cm.canonical not in CODE_COLUMNS]


@dataclass(frozen=True)
class Screened:
    """Typed rows with their free text masked, the warnings to record (one per value
    masked, without the value) and the lines refused (written to the errors table)."""

    rows: Coerced
    warnings: pl.DataFrame
    refused: list[int]


def screen_free_text(con: duckdb.DuckDBPyConnection, tm: TableMap, rows: Coerced, *,
                     work: str, errors: str) -> Screened:
    """Mask the identifiers in the free-text columns of ``rows`` (the typed rows of a
    batch), or refuse their rows (``identifiers = "refuse"``: a reason in ``errors``, the
    table of coercion errors); one pass over the rows, Python only on the few values
    :data:`PREFILTER` keeps. ``work`` is a temporary table the caller drops."""
    free = free_text_columns(tm)
    none = Screened(rows, pl.DataFrame(schema=_FINDING_SCHEMA), [])
    if not free:
        return none
    parts = [f"select source_line, participant_id, {sql_literal(cm.canonical)} as column_name, "
             f"{quote_ident(cm.canonical)} as original from ({rows.sql}) where "
             f"regexp_matches({quote_ident(cm.canonical)}, {sql_literal(PREFILTER)})"
             for cm in free]
    # the candidates first, in a statement of their own (few rows), then their masking
    con.execute(f"create or replace temp table {work} as {' union all '.join(parts)}",
                rows.params)
    con.execute(f"create or replace temp table {work} as select source_line, participant_id, "
                f"column_name, masked from (select *, {MASK_FUNCTION}(original) as masked "
                f"from {work}) where masked is distinct from original")
    hits = con.execute(f"select source_line, participant_id, column_name, masked from {work} "
                       "order by source_line, column_name").fetchall()
    if not hits:
        return none
    by_name = {cm.canonical: cm for cm in free}
    warnings: list[dict[str, object]] = []
    reasons: list[tuple[int, str, str, str]] = []
    for line, participant, column, text in hits:
        cm = by_name[column]
        kinds = masked_kinds(text)
        found = " and ".join(kinds) if kinds else "an identifier"
        where = f"{cm.source!r} (mapped to {tm.table}.{column})"
        if cm.identifiers == "refuse":
            reasons.append((line, column, f"identifier.{column}",
                            f"{where} holds {found}; the row is refused (identifiers = "
                            '"refuse" in the mapping): ask the site to remove it and send the '
                            "row again"))
        else:
            warnings.append({"source_line": line, "participant_id": participant,
                             "column_name": column, "value": None,
                             "rule": f"identifier.{column}", "severity": "warning",
                             "message": f"{where} held {found}: masked in the stored value "
                                        f"({', '.join(PLACEHOLDERS[k] for k in kinds)}); ask the "
                                        "site to keep identifiers out of free text"})
    if reasons:
        con.executemany(f"insert into {errors} (source_line, column_name, value, rule, message) "
                        "values (?, ?, null, ?, ?)", [list(r) for r in reasons])
    refused = sorted({r[0] for r in reasons})
    replaced = ", ".join(
        f"coalesce(m{i}.masked, r.{quote_ident(cm.canonical)}) as {quote_ident(cm.canonical)}"
        for i, cm in enumerate(free))
    joins = " ".join(
        f"left join (select source_line, masked from {work} where column_name = "
        f"{sql_literal(cm.canonical)}) m{i} on m{i}.source_line = r.source_line"
        for i, cm in enumerate(free))
    keep = (f" where r.source_line not in (select source_line from {errors} "
            f"where rule like 'identifier.%')" if refused else "")
    sql = f"select r.* replace ({replaced}) from ({rows.sql}) r {joins}{keep}"
    return Screened(Coerced(sql, rows.params), pl.DataFrame(warnings, schema=_FINDING_SCHEMA),
                    refused)


# -- the secret ------------------------------------------------------------------------
def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def study_secret(*, study_folder: Path) -> bytes:
    """The study's pseudonymisation key, from outside the database and its folder.

    Parameters
    ----------
    study_folder
        The folder of the study database: a secret file inside it is refused (a copy of
        the folder would carry the key beside the data it protects).
    """
    value = os.environ.get("COHORT_STUDY_SECRET")
    path = os.environ.get("COHORT_STUDY_SECRET_FILE")
    if not value and path:
        file = Path(path).expanduser()
        if _inside(file, study_folder):
            raise MappingError(
                f"COHORT_STUDY_SECRET_FILE={path}: the study secret is inside the study folder "
                f"{study_folder}; keep it outside the study folder (move the file and point "
                "COHORT_STUDY_SECRET_FILE at its new place)")
        try:
            value = file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise MappingError(f"COHORT_STUDY_SECRET_FILE={path}: cannot read the study secret: "
                               f"{exc.strerror}") from None
    if not value or len(value) < 16:
        raise MappingError(
            "pseudonymisation needs the study secret (16 characters or more) in the environment "
            "variable COHORT_STUDY_SECRET or in the file named by COHORT_STUDY_SECRET_FILE; keep it "
            "outside the study database and folder")
    return value.encode("utf-8")


def pseudonymise(value: str | None, *, secret: bytes) -> str | None:
    """Keyed hash of ``value``: stable within a study, not reversible without the secret.

    Examples
    --------
    >>> pseudonymise("Kari Nordmann", secret=b"0123456789abcdef")[:8]
    'ps-830bd'
    """
    if value is None:
        return None
    digest = hmac.new(secret, value.strip().encode("utf-8"), hashlib.sha256).hexdigest()
    return f"ps-{digest[:20]}"
