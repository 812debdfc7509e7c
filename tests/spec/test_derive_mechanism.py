"""The `-- uses:` mechanism of cohort.derive: nested and shared building blocks become one
common table expression each, in dependency order, and the whole stays one query."""

from __future__ import annotations

import re

import duckdb
import pytest

from cohort.derive import _load, derivations
from cohort.errors import UserError


def catalogue(tmp_path, files: dict[str, str]):
    for name, text in files.items():
        (tmp_path / f"{name}.sql").write_text(text)
    return {name: _load(tmp_path / f"{name}.sql") for name in files}


def cte_names(sql: str) -> list[str]:
    """The common table expressions defined in a query (at a line start), in order."""
    return re.findall(r"^(?:with )?(\w+) as \($", sql, flags=re.MULTILINE)


def test_a_block_used_along_two_paths_is_one_cte_before_its_users(tmp_path):
    # top uses lhs and rhs, both use base: a diamond
    cat = catalogue(tmp_path, {
        "base": "-- base\n-- param: k integer = 1\nselect i from range(3) t(i) where i >= $k\n",
        "lhs": "-- uses: base\n-- param: k integer = 1\nselect i, 'l' as side from base\n",
        "rhs": "-- uses: base\n-- param: k integer = 1\n"
               "with doubled as (select 2 * i as i from base)\nselect i, 'r' as side from doubled\n",
        "top": "-- uses: lhs, rhs\n-- param: k integer = 1\n"
               "with sides as (select * from lhs union all select * from rhs)\n"
               "select side, sum(i) as total, (select count(*) from base) as n_base\n"
               "from sides group by side order by side\n",
    })
    sql = cat["top"].sql(cat)
    assert cte_names(sql) == ["base", "lhs", "rhs"]
    assert cat["top"].needs(cat) == ("base", "lhs", "rhs")
    rows = duckdb.connect().sql(sql, params={"k": 1}).fetchall()
    # base = {1, 2}: lhs sums 3, rhs sums 6; top itself can read base too
    assert rows == [("l", 3, 2), ("r", 6, 2)]


def test_nested_uses_without_a_with_clause_of_their_own(tmp_path):
    cat = catalogue(tmp_path, {
        "a": "select 1 as x\n",
        "b": "-- uses: a\nselect x + 1 as x from a\n",
        "c": "-- uses: b\nselect x + 1 as x from b\n",
    })
    sql = cat["c"].sql(cat)
    assert cte_names(sql) == ["a", "b"]
    assert duckdb.connect().sql(sql).fetchall() == [(3,)]


def test_circular_uses_are_refused_with_the_circle(tmp_path):
    cat = catalogue(tmp_path, {
        "a": "-- uses: b\nselect * from b\n",
        "b": "-- uses: a\nselect * from a\n",
    })
    with pytest.raises(UserError, match="circle: a -> b -> a"):
        cat["a"].sql(cat)


def test_shipped_derivations_run_and_each_block_appears_once(study):
    found = derivations()
    for d in found.values():
        names = cte_names(d.sql(found))
        for name in d.needs(found):
            assert names.count(name) == 1, (d.name, name)
        assert [n for n in names if n in d.needs(found)] == list(d.needs(found)), d.name
        study.derive(d.name)  # one valid query on an empty study


def test_building_blocks_are_not_offered_as_available(study):
    with pytest.raises(UserError) as err:
        study.derive("no_such_derivation")
    available = str(err.value).split("available:")[1]
    assert "counting_process" in available
    assert not [n for n in available.split(",") if n.strip().startswith("_")]
