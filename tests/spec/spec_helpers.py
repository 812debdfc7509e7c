"""Helpers for the spec tests (a module of its own: `conftest` is ambiguous to import
when several test folders have one)."""

from __future__ import annotations

__all__ = ["load_frames"]


def load_frames(study, tables) -> None:
    """Insert canonical polars frames (e.g. ``simulate(...).tables``) as batch 1 of a study."""
    import polars as pl

    con = study.con
    con.execute("insert into uploads (batch_id, table_name, site_id, file_name, file_path, sha256, "
                "size_bytes, rows_read, rows_loaded, rows_quarantined, loaded_by, status) "
                "values (1, 'participants', 'S', 'sim', 'sim', ?, 0, 0, 0, 0, 'spec', 'loaded')",
                ["0" * 64])
    for table, frame in tables.items():
        frame = frame.with_columns(batch_id=pl.lit(1, pl.Int64),
                                   source_line=pl.int_range(2, frame.height + 2, dtype=pl.Int64))
        con.register("_frame", frame)
        con.execute(f"insert into store.{table} ({', '.join(frame.columns)}) "
                    f"select {', '.join(frame.columns)} from _frame")
        con.unregister("_frame")
