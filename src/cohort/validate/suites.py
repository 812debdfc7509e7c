"""Load validation suites (GX 1.x JSON) for a canonical table.

Suites live in ``expectations/`` (shipped with cohort) and in any study
folder passed as ``suites_dirs``. A suite file is a GX 1.x expectation suite
whose ``meta.cohort.table`` names the canonical table it checks; every
expectation carries ``meta: {"rule", "severity", "message"}`` (and, for SQL
rules, ``"column"``: the column a finding is about). A study suite that
repeats a rule id replaces the shipped rule; ``"enabled": false`` in its meta
switches a rule off.

Values written ``"${name}"`` (and ``${name}`` inside SQL text) are filled in
from :func:`suite_parameters` before GX sees the suite: ``today``,
``current_year``, ``replaced_batches``, ``moca_drop_points``,
``moca_drop_months``, ``dose_ratio``.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cohort.errors import UserError
from cohort.resources import resource_dir
from cohort.tables import TABLES

__all__ = [
    "SuiteError",
    "Rule",
    "Suite",
    "SEVERITIES",
    "ROW_LEVEL_TYPES",
    "TABLE_LEVEL_TYPES",
    "SQL_RULE_TYPE",
    "suite_files",
    "load_suites",
    "suite_parameters",
]

SEVERITIES = ("warning", "error", "fatal")
SQL_RULE_TYPE = "unexpected_rows_expectation"
#: Expectation types with row-level results built by cohort (see rowlevel.py).
ROW_LEVEL_TYPES = frozenset({
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_null",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set",
    "expect_column_values_to_be_between",
    "expect_column_values_to_match_regex",
    "expect_column_values_to_not_match_regex",
    "expect_column_value_lengths_to_be_between",
    "expect_column_values_to_be_unique",
    "expect_compound_columns_to_be_unique",
})
#: Expectation types about the batch as a whole: a failure is one finding without a row.
TABLE_LEVEL_TYPES = frozenset({
    "expect_table_row_count_to_be_between",
    "expect_table_row_count_to_equal",
    "expect_table_columns_to_match_set",
    "expect_table_columns_to_match_ordered_list",
    "expect_table_column_count_to_equal",
    "expect_table_column_count_to_be_between",
    "expect_column_to_exist",
    "expect_column_proportion_of_non_null_values_to_be_between",
    "expect_column_distinct_values_to_be_in_set",
    "expect_column_distinct_values_to_contain_set",
    "expect_column_min_to_be_between",
    "expect_column_max_to_be_between",
    "expect_column_mean_to_be_between",
    "expect_column_median_to_be_between",
    "expect_column_unique_value_count_to_be_between",
    "expect_column_proportion_of_unique_values_to_be_between",
})
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class SuiteError(UserError):
    """A suite file or one of its rules cannot run as written."""


@dataclass(frozen=True)
class Rule:
    """One expectation of a suite, with cohort's rule metadata."""

    rule: str
    severity: str
    message: str
    expectation_type: str
    kwargs: Mapping[str, Any]
    column: str | None
    suite_file: Path
    index: int
    raw: Mapping[str, Any] = field(repr=False)

    @property
    def where(self) -> str:
        """Where the rule is written: file and expectation number, for messages."""
        return f"{self.suite_file} (expectation #{self.index + 1}, rule {self.rule!r})"

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the expectation names (kwargs, row_condition, meta.column)."""
        names: list[str] = []
        for key in ("column", "column_A", "column_B"):
            if isinstance(self.kwargs.get(key), str):
                names.append(self.kwargs[key])
        names.extend(self.kwargs.get("column_list") or ())
        names.extend(_condition_columns(self.kwargs.get("row_condition")))
        if self.column and self.column not in names:
            names.append(self.column)
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class Suite:
    """The rules that apply to one table, merged from every suite folder."""

    table: str
    rules: tuple[Rule, ...]
    files: tuple[Path, ...]

    def by_rule(self) -> dict[str, Rule]:
        return {r.rule: r for r in self.rules}


def _condition_columns(cond: Any) -> list[str]:
    if not isinstance(cond, Mapping):
        return []
    out: list[str] = []
    col = cond.get("column")
    if isinstance(col, Mapping) and isinstance(col.get("name"), str):
        out.append(col["name"])
    for sub in cond.get("conditions") or ():
        out.extend(_condition_columns(sub))
    return out


def suite_parameters(
    *,
    today: dt.date | None = None,
    replaced_batches: Sequence[int] = (),
    moca_drop_points: float = 10,
    moca_drop_months: int = 3,
    dose_ratio: float = 2.0,
) -> dict[str, Any]:
    """The values that fill ``${name}`` placeholders in suites."""
    today = today or dt.date.today()
    batches = tuple(int(b) for b in replaced_batches) or (-1,)
    return {
        "today": today.isoformat(),
        "current_year": today.year,
        "replaced_batches": "(" + ", ".join(str(b) for b in batches) + ")",
        "moca_drop_points": float(moca_drop_points),
        "moca_drop_months": int(moca_drop_months),
        "dose_ratio": float(dose_ratio),
    }


def _substitute(value: Any, params: Mapping[str, Any], where: str) -> Any:
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:
            return _lookup(whole.group(1), params, where)
        return _PLACEHOLDER.sub(lambda m: _fmt(_lookup(m.group(1), params, where)), value)
    if isinstance(value, list):
        return [_substitute(v, params, where) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, params, where) for k, v in value.items()}
    return value


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _lookup(name: str, params: Mapping[str, Any], where: str) -> Any:
    try:
        return params[name]
    except KeyError:
        raise SuiteError(
            f"{where}: unknown placeholder ${{{name}}}; known: {', '.join(sorted(params))}"
        ) from None


def suite_files(suites_dirs: Iterable[str | Path] | None = None) -> list[Path]:
    """The shipped suite files followed by those of each study folder, in name order."""
    dirs = [resource_dir("expectations")] + [Path(d) for d in (suites_dirs or ())]
    files: list[Path] = []
    for d in dirs:
        if not d.is_dir():
            raise SuiteError(f"suite folder {d} does not exist: create it or fix the study config")
        files.extend(sorted(d.glob("*.json")))
    return files


def _read_suite(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SuiteError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
        raise SuiteError(f"{path}: not a GX 1.x suite (needs an 'expectations' list)")
    return data


def _suite_table(path: Path, data: Mapping[str, Any]) -> str:
    table = ((data.get("meta") or {}).get("cohort") or {}).get("table")
    if table not in TABLES:
        raise SuiteError(
            f"{path}: meta.cohort.table must name a canonical table ({', '.join(TABLES)}), got {table!r}"
        )
    return table


def _parse_rule(path: Path, index: int, item: Any, params: Mapping[str, Any]) -> Rule | None:
    where = f"{path} (expectation #{index + 1})"
    if not isinstance(item, dict) or not isinstance(item.get("type"), str):
        raise SuiteError(f"{where}: each expectation needs a 'type' and 'kwargs'")
    meta = item.get("meta") or {}
    missing = [k for k in ("rule", "severity", "message") if not meta.get(k)]
    if missing:
        raise SuiteError(f"{where} ({item['type']}): meta lacks {', '.join(missing)}; "
                         'add e.g. "meta": {"rule": "assessments.score.range", '
                         '"severity": "error", "message": "..."}')
    where = f"{path} (expectation #{index + 1}, rule {meta['rule']!r})"
    if meta["severity"] not in SEVERITIES:
        raise SuiteError(f"{where}: severity must be one of {', '.join(SEVERITIES)}, "
                         f"got {meta['severity']!r}")
    if meta.get("enabled", True) is False:
        return None
    etype = item["type"]
    if etype not in ROW_LEVEL_TYPES | TABLE_LEVEL_TYPES | {SQL_RULE_TYPE}:
        raise SuiteError(
            f"{where}: expectation type {etype!r} has no row-level results in cohort; use one of "
            f"{', '.join(sorted(ROW_LEVEL_TYPES | TABLE_LEVEL_TYPES))} or an "
            f"{SQL_RULE_TYPE} with SQL that selects the failing rows"
        )
    item = _substitute(copy.deepcopy(item), params, where)
    kwargs = item.get("kwargs") or {}
    if etype == SQL_RULE_TYPE and "{batch}" not in str(kwargs.get("unexpected_rows_query", "")):
        raise SuiteError(f"{where}: unexpected_rows_query must read the batch as {{batch}}")
    return Rule(
        rule=meta["rule"],
        severity=meta["severity"],
        message=item["meta"]["message"],
        expectation_type=etype,
        kwargs=kwargs,
        column=meta.get("column") or kwargs.get("column"),
        suite_file=path,
        index=index,
        raw=item,
    )


def load_suites(
    table: str,
    *,
    suites_dirs: Iterable[str | Path] | None = None,
    params: Mapping[str, Any] | None = None,
) -> Suite:
    """Collect the rules for ``table`` from the shipped and the study suite folders.

    Examples
    --------
    >>> suite = load_suites("assessments")
    >>> "assessments.score.range.MoCA" in suite.by_rule()
    True
    """
    if table not in TABLES:
        raise SuiteError(f"unknown table {table!r}; known tables: {', '.join(TABLES)}")
    params = dict(params or suite_parameters())
    rules: dict[str, Rule] = {}
    files: list[Path] = []
    for path in suite_files(suites_dirs):
        data = _read_suite(path)
        if _suite_table(path, data) != table:
            continue
        files.append(path)
        seen: set[str] = set()
        for i, item in enumerate(data["expectations"]):
            rule_id = (item.get("meta") or {}).get("rule") if isinstance(item, dict) else None
            if rule_id in seen:
                raise SuiteError(f"{path}: rule id {rule_id!r} is used twice in this file")
            rule = _parse_rule(path, i, item, params)
            if rule_id:
                seen.add(rule_id)
                rules.pop(rule_id, None)  # a later folder overrides (or disables) the rule
            if rule is not None:
                rules[rule.rule] = rule
    return Suite(table=table, rules=tuple(rules.values()), files=tuple(files))
