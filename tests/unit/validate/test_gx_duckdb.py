"""The GX-on-DuckDB shim: still needed upstream, and it works."""

from __future__ import annotations

from pathlib import Path

import duckdb
import great_expectations.expectations as gxe
import pytest

from cohort.validate.gx_duckdb import DuckDBDatasource, gx_context, make_engine


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "t.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema staging; create table staging.b as select range::bigint as "
                "source_line, 'XP' || range as participant_id, (range % 70)::double as score "
                "from range(100)")
    con.close()
    return path


def _validate(batch, expectation):
    return batch.validate(expectation, result_format="SUMMARY")


def test_upstream_still_needs_the_shim(db):
    """Plain duckdb-engine URL: GX 1.x loses its result rows (issues #10738, #11579).

    When this test fails, GX runs on DuckDB without help: shrink gx_duckdb.py.
    """
    ctx = gx_context()
    ds = ctx.data_sources.add_sql("plain", connection_string=f"duckdb:///{db}")
    batch = (ds.add_table_asset("b", table_name="b", schema_name="staging")
             .add_batch_definition_whole_table("w").get_batch())
    result = _validate(batch, gxe.ExpectColumnValuesToBeBetween(
        column="score", min_value=0, max_value=60))
    assert not result.success
    assert "list index out of range" in str(result.exception_info)


def test_shim_runs_expectations_on_the_callers_connection(db):
    con = duckdb.connect(str(db))
    con.execute("insert into staging.b values (1000, 'XP1000', 99.0)")  # committed, same con
    ctx = gx_context()
    ds = ctx.data_sources.add_duckdb(DuckDBDatasource(name="d").attach(make_engine(con)))
    batch = (ds.add_table_asset("b", table_name="b", schema_name="staging")
             .add_batch_definition_whole_table("w").get_batch())
    result = _validate(batch, gxe.ExpectColumnValuesToBeBetween(
        column="score", min_value=0, max_value=60))
    assert result.exception_info.get("raised_exception") is False
    assert result.result["unexpected_count"] == 9 + 1
    ds.get_execution_engine().close()
    # the caller's connection is still open and intact
    assert con.execute("select count(*) from staging.b").fetchall() == [(101,)]
    con.close()


def test_regex_is_a_search_as_gx_means_it(db):
    """DuckDB's `~` is a full match; GX regex expectations mean re.search."""
    con = duckdb.connect(str(db))
    ctx = gx_context()
    ds = ctx.data_sources.add_duckdb(DuckDBDatasource(name="d").attach(make_engine(con)))
    batch = (ds.add_table_asset("b", table_name="b", schema_name="staging")
             .add_batch_definition_whole_table("w").get_batch())
    # every id contains "P" somewhere but none is exactly "P": search succeeds
    assert _validate(batch, gxe.ExpectColumnValuesToMatchRegex(
        column="participant_id", regex="P")).success
    anchored = _validate(batch, gxe.ExpectColumnValuesToMatchRegex(
        column="participant_id", regex="^P"))
    assert anchored.result["unexpected_count"] == 100
    ds.get_execution_engine().close()
    con.close()
