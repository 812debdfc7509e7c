"""Locate the SQL, expectation and mapping files shipped with cohort.

In an installed wheel they live inside the package (``cohort/sql`` ...); in a
source checkout they are the top-level folders of the repository.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """Return the folder ``name`` (``"sql"``, ``"expectations"``, ``"mappings"``)."""
    for candidate in (_PACKAGE_DIR / name, _PACKAGE_DIR.parents[1] / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"cohort resource folder {name!r} is missing from {_PACKAGE_DIR}; reinstall cohort"
    )


def sql_text(*parts: str) -> str:
    """Read one SQL file, e.g. ``sql_text("derive", "time_to_event.sql")``."""
    return resource_dir("sql").joinpath(*parts).read_text(encoding="utf-8")
