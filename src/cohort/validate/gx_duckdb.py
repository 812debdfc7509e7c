"""The one shim that makes Great Expectations 1.x work on DuckDB.

GX 1.24 has no DuckDB dialect. Through duckdb-engine every expectation fails
with ``MetricResolutionError: list index out of range`` (GX issues #10738,
#11579): GX opens a connection per query and hands back the cursor result
after the ``with engine.connect()`` block has returned the connection to the
pool; the pool's reset-on-return rolls back, and DuckDB discards the pending
result. Keeping one persisted connection for the whole run, as GX does for
sqlite and SQL Server, fixes it.

Two more gaps are filled here:

* duckdb-engine's dialect derives from PostgreSQL's, so GX emits ``col ~ 'x'``
  for regex expectations; DuckDB's ``~`` is a *full* match, not a search. The
  dialect module given to GX routes regex to ``regexp_matches`` (a search, as
  GX means it) and exposes SQLAlchemy's generic types for type checks.
* The engine is built around the caller's open ``duckdb.DuckDBPyConnection``
  (a cursor of it), so GX sees exactly the data the loader staged, and closing
  the GX run never closes or rolls back the caller's connection.

``tests/unit/validate/test_gx_duckdb.py`` runs one expectation through a plain
duckdb-engine URL and asserts the known failure: when that test fails, upstream
has fixed the problem and this module can shrink.
"""

from __future__ import annotations

import os
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Literal

import duckdb

__all__ = ["DuckDBDatasource", "DuckDBExecutionEngine", "duckdb_dialect_module", "gx_context", "make_engine"]

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import great_expectations as gx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from great_expectations.datasource.fluent.sql_datasource import SQLDatasource  # noqa: E402
from great_expectations.execution_engine import SqlAlchemyExecutionEngine  # noqa: E402


def _build_dialect_module() -> types.ModuleType:
    """A stand-in dialect module: SQLAlchemy's generic types plus a regex route.

    GX looks for a ``DremioDialect`` attribute to decide to emit
    ``REGEXP_MATCHES(column, pattern)``, which in DuckDB is a search (Python's
    ``re.search``), the semantics GX's regex expectations promise.
    """
    module = types.ModuleType("cohort_gx_duckdb_dialect")
    for name in dir(sa.types):
        if name[:1].isupper():
            setattr(module, name, getattr(sa.types, name))
    for alias, target in {
        "DOUBLE": sa.types.Double,
        "HUGEINT": sa.types.BigInteger,
        "UBIGINT": sa.types.BigInteger,
        "TINYINT": sa.types.SmallInteger,
    }.items():
        setattr(module, alias, target)
    module.DremioDialect = type("DuckDBRegexRoute", (), {})  # marker only
    return module


duckdb_dialect_module = _build_dialect_module()


class DuckDBExecutionEngine(SqlAlchemyExecutionEngine):
    """SqlAlchemyExecutionEngine that keeps one connection open for the run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dialect_module = duckdb_dialect_module

    @contextmanager
    def get_connection(self) -> Iterator[sa.Connection]:
        # GX's persisted-connection path (used for sqlite), for DuckDB too.
        if self._connection is None or self._connection.closed:
            self._connection = self.engine.connect()
        yield self._connection

    def close(self) -> None:
        if self._connection is not None and not self._connection.closed:
            self._connection.close()
        self._connection = None
        self.engine.dispose()


def make_engine(con: duckdb.DuckDBPyConnection) -> sa.Engine:
    """A SQLAlchemy engine whose one connection is a cursor of ``con``.

    A cursor of a DuckDB connection is a second connection to the same
    database instance: it sees every committed row (and ``con``'s schemas and
    views), and closing it leaves ``con`` open.
    """
    from duckdb_engine import ConnectionWrapper

    def connect() -> ConnectionWrapper:
        cursor = con.cursor()
        cursor.execute("set enable_progress_bar = false")  # this cursor only
        return ConnectionWrapper(cursor)

    return sa.create_engine("duckdb:///:memory:", creator=connect, poolclass=sa.pool.StaticPool)


class DuckDBDatasource(SQLDatasource):
    """GX SQL datasource over an engine built around an open DuckDB connection."""

    type: Literal["duckdb"] = "duckdb"  # type: ignore[assignment]
    connection_string: str = "duckdb:///:memory:"
    execution_engine_override: ClassVar[type] = DuckDBExecutionEngine  # type: ignore[misc]

    def attach(self, engine: sa.Engine) -> DuckDBDatasource:
        """Use ``engine`` for everything this datasource runs."""
        self._engine = engine
        self._cached_connection_string = self.connection_string
        self._execution_engine = DuckDBExecutionEngine(engine=engine, create_temp_table=False)
        return self

    def get_engine(self) -> sa.Engine:
        if self._engine is None:
            raise RuntimeError("DuckDBDatasource has no engine: call attach(engine) first")
        return self._engine

    def get_execution_engine(self) -> DuckDBExecutionEngine:  # type: ignore[override]
        if self._execution_engine is None:
            self._execution_engine = DuckDBExecutionEngine(
                engine=self.get_engine(), create_temp_table=False
            )
        return self._execution_engine  # type: ignore[return-value]


def gx_context() -> Any:
    """An ephemeral GX context: in-memory stores, no analytics, no progress bars."""
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)
