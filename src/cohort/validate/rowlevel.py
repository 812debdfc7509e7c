"""Row-level results: a query per failed rule that returns every failing row.

GX reports at most 20 (COMPLETE: 200) unexpected rows, and its
``unexpected_index_query`` is not usable on DuckDB as is: it drops the
expectation's ``row_condition`` (so a MoCA range rule would list MADRS rows)
and, for ``expect_compound_columns_to_be_unique``, it is a cross join with an
unbound ``$1`` parameter. So each failing rule gets its own query here, with
the predicate GX documents for that expectation type and the row condition
compiled by GX's own ``condition_to_filter_clause``. The runner checks that
each query finds exactly as many rows as GX counted.

Every query returns ``source_line, participant_id, column_name, value``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cohort.db import quote_ident, sql_literal
from cohort.validate.suites import SQL_RULE_TYPE, Rule, SuiteError

__all__ = ["failing_rows_sql", "condition_sql"]


def condition_sql(row_condition: Any, execution_engine: Any) -> str | None:
    """Compile a GX row_condition (dict or Condition) with GX's own compiler."""
    if row_condition in (None, "", {}):
        return None
    from great_expectations.expectations.row_conditions import (
        Condition,
        deserialize_row_condition,
    )

    cond = row_condition
    if isinstance(cond, Mapping):
        cond = deserialize_row_condition(dict(cond))
    if not isinstance(cond, Condition):
        raise TypeError(f"unsupported row_condition {row_condition!r}")
    clause = execution_engine.condition_to_filter_clause(cond)
    return str(clause.compile(dialect=execution_engine.engine.dialect,
                              compile_kwargs={"literal_binds": True}))


def _value_list(values: Sequence[Any]) -> str:
    return ", ".join(sql_literal(v) for v in values) or "null"


def _between(expr: str, kw: Mapping[str, Any]) -> str:
    parts = []
    if kw.get("min_value") is not None:
        parts.append(f"{expr} {'>' if kw.get('strict_min') else '>='} {sql_literal(kw['min_value'])}")
    if kw.get("max_value") is not None:
        parts.append(f"{expr} {'<' if kw.get('strict_max') else '<='} {sql_literal(kw['max_value'])}")
    if not parts:
        raise ValueError("min_value and max_value are both missing")
    return " and ".join(parts)


def _text(expr: str) -> str:
    return f"cast({expr} as varchar)"


def failing_rows_sql(
    rule: Rule,
    relation: str,
    *,
    condition: str | None = None,
    has_participant: bool = True,
) -> str:
    """SQL selecting every row of ``relation`` that fails ``rule``.

    ``relation`` is SQL text naming the batch (already quoted); ``condition`` is
    the compiled row_condition, if any.
    """
    kw = rule.kwargs
    pid = "participant_id" if has_participant else "cast(null as varchar)"
    if rule.expectation_type == SQL_RULE_TYPE:
        query = str(kw["unexpected_rows_query"]).rstrip("; \t\r\n")
        query = query.format(batch=relation)
        value = _text(quote_ident(rule.column)) if rule.column else "cast(null as varchar)"
        column = sql_literal(rule.column)
        return (f"select source_line, {pid} as participant_id, {column} as column_name, "
                f"{value} as value from ({query}) as failing")
    base = f"(select * from {relation} where {condition})" if condition else relation
    etype = rule.expectation_type
    if etype == "expect_compound_columns_to_be_unique":
        cols = [quote_ident(c) for c in kw["column_list"]]
        parts = ", ".join(cols)
        notnull = " and ".join(f"{c} is not null" for c in cols)
        value = "concat_ws(' | ', " + ", ".join(_text(c) for c in cols) + ")"
        return (f"select source_line, {pid} as participant_id, "
                f"{sql_literal(', '.join(kw['column_list']))} as column_name, {value} as value "
                f"from (select *, count(*) over (partition by {parts}) as _cohort_n from {base} as t) "
                f"as t where {notnull} and _cohort_n > 1")
    col = quote_ident(kw["column"])
    select = (f"select source_line, {pid} as participant_id, {sql_literal(kw['column'])} "
              f"as column_name, {_text(col)} as value")
    if etype == "expect_column_values_to_be_unique":
        return (f"{select} from (select *, count(*) over (partition by {col}) as _cohort_n "
                f"from {base} as t) as t where {col} is not null and _cohort_n > 1")
    if etype == "expect_column_values_to_not_be_null":
        pred = f"{col} is null"
    elif etype == "expect_column_values_to_be_null":
        pred = f"{col} is not null"
    elif etype == "expect_column_values_to_be_in_set":
        pred = f"{col} is not null and {col} not in ({_value_list(kw['value_set'])})"
    elif etype == "expect_column_values_to_not_be_in_set":
        pred = f"{col} in ({_value_list(kw['value_set'])})"
    elif etype == "expect_column_values_to_be_between":
        pred = f"{col} is not null and not ({_between(col, kw)})"
    elif etype == "expect_column_value_lengths_to_be_between":
        pred = f"{col} is not null and not ({_between(f'length({col})', kw)})"
    elif etype == "expect_column_values_to_match_regex":
        pred = f"{col} is not null and not regexp_matches({col}, {sql_literal(kw['regex'])})"
    elif etype == "expect_column_values_to_not_match_regex":
        pred = f"{col} is not null and regexp_matches({col}, {sql_literal(kw['regex'])})"
    else:
        raise SuiteError(f"{rule.where}: no row-level query for {etype}")
    return f"{select} from {base} as t where {pred}"
