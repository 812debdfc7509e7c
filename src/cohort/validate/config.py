"""Study-level validation settings (thresholds a study may change)."""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cohort.errors import ConfigError
from cohort.tables import TABLES
from cohort.tomlcheck import (
    At,
    Key,
    Names,
    check_table,
    did_you_mean,
    known_names,
    number,
    shown,
    whole_number,
)

__all__ = ["ValidationConfig", "ConfigError", "VALIDATION_KEYS"]


def _count_range(value: Any, at: At) -> tuple[int | None, int | None]:
    """``[min, max]``: whole numbers >= 0, -1 for no bound, min <= max."""
    fits = (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= -1 for v in value))
    if not fits:
        at.fail(f"expected [min, max] (whole numbers >= 0, -1 for no bound), got {shown(value)}")
    low, high = (None if v == -1 else v for v in value)
    if low is not None and high is not None and low > high:
        at.fail(f"min {low} is above max {high}")
    return low, high


def _optional_column(name: str, at: At) -> None:
    table, _, column = name.partition(".")
    known = {c.name: c for c in TABLES.get(table, ())}
    if column not in known:
        optional = [f"{t}.{c.name}" for t, cols in TABLES.items() for c in cols if not c.required]
        at.fail(f"not 'table.column' of a canonical table{did_you_mean(name, optional)}")
    if known[column].required:
        at.fail("a required column (a missing value is already an error); "
                "only optional columns have a missingness threshold")


def _date(value: Any, at: At) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    at.fail(f"expected a date (2026-01-31, quoted or not), got {shown(value)}")


_SHARE = number(low=0, high=1)

#: the keys of ``[validation]`` in cohort.toml, one per field of :class:`ValidationConfig`
VALIDATION_KEYS: dict[str, Key | Names] = {
    "fatal_error_fraction": Key(_SHARE, "share of failing rows above which a batch is rejected"),
    "row_count_ranges": Names(Key(_count_range, "[min, max] rows of one batch"),
                              "expected rows per batch of a canonical table",
                              known_names(TABLES, "a canonical table")),
    "site_missingness": Names(Key(_SHARE, "highest share of missing values per site"),
                              "per optional column ('table.column')", _optional_column),
    "moca_drop_points": Key(number(low=0), "MoCA drop (points) that is a warning"),
    "moca_drop_months": Key(whole_number(1), "within this many months"),
    "dose_ratio": Key(number(above=1), "dose per kg ratio to the previous session"),
    "today": Key(_date, "the date 'future' is measured from"),
}


@dataclass(frozen=True)
class ValidationConfig:
    """Thresholds of batch-level and longitudinal rules.

    Parameters
    ----------
    fatal_error_fraction
        More than this share of the batch's rows with an error finding makes
        the batch fatal (nothing promoted).
    row_count_ranges
        Expected row count per table, ``{"assessments": (100, 2_000_000)}``
        (either bound may be ``None``); outside it the batch is fatal.
    site_missingness
        Highest share of missing values per site for optional columns,
        ``{"treatment_sessions.weight_kg": 0.2}``; above it: a warning.
    moca_drop_points, moca_drop_months
        A MoCA drop of more than this many points within this many months of
        the previous MoCA is a warning.
    dose_ratio
        A dose per kg more than this multiple of the previous session's (same
        drug and route) is a warning.
    today
        The date "future" is measured from (default: the current date).

    Examples
    --------
    >>> cfg = ValidationConfig.from_dict({"fatal_error_fraction": 0.1,
    ...     "site_missingness": {"treatment_sessions.weight_kg": 0.25}})
    >>> cfg.fatal_error_fraction
    0.1
    """

    fatal_error_fraction: float = 0.20
    row_count_ranges: Mapping[str, tuple[int | None, int | None]] = field(default_factory=dict)
    site_missingness: Mapping[str, float] = field(default_factory=dict)
    moca_drop_points: float = 10.0
    moca_drop_months: int = 3
    dose_ratio: float = 2.0
    today: dt.date | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.fatal_error_fraction <= 1:
            raise ConfigError(f"fatal_error_fraction must lie in 0-1, got {self.fatal_error_fraction}")
        for table, bounds in self.row_count_ranges.items():
            if table not in TABLES or len(tuple(bounds)) != 2:
                raise ConfigError(
                    f"row_count_ranges: {table!r} must be a canonical table mapped to [min, max]"
                )
        for key, share in self.site_missingness.items():
            table, _, column = key.partition(".")
            known = {c.name: c for c in TABLES.get(table, ())}
            if column not in known:
                raise ConfigError(
                    f"site_missingness: {key!r} is not 'table.column' of a canonical table"
                )
            if known[column].required:
                raise ConfigError(
                    f"site_missingness: {key!r} is a required column (already an error when null)"
                )
            if not 0 <= share <= 1:
                raise ConfigError(f"site_missingness: {key!r} must be a share in 0-1, got {share}")
        if self.moca_drop_points < 0 or self.moca_drop_months < 1 or self.dose_ratio <= 1:
            raise ConfigError("moca_drop_points >= 0, moca_drop_months >= 1 and dose_ratio > 1 please")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "validation settings",
                  section: tuple[str, ...] = ()) -> ValidationConfig:
        """Build from plain data (e.g. the ``[validation]`` table of a study TOML), checked
        key by key (:data:`VALIDATION_KEYS`): an unknown key, a wrong type or an impossible
        value is a one-line :class:`ConfigError` naming ``source`` and the key."""
        at = At(source, section, ConfigError)
        checked = check_table(dict(data) if isinstance(data, Mapping) else data,
                              VALIDATION_KEYS, at)
        return cls(**checked)

    @classmethod
    def from_toml(cls, path: str | Path, *, section: str = "validation") -> ValidationConfig:
        """Read the ``[validation]`` table of a TOML file (absent: defaults)."""
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read validation settings: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        return cls.from_dict(data.get(section, {}), source=str(path), section=(section,))

    def to_dict(self) -> dict[str, Any]:
        return {
            "fatal_error_fraction": self.fatal_error_fraction,
            "row_count_ranges": {k: list(v) for k, v in self.row_count_ranges.items()},
            "site_missingness": dict(self.site_missingness),
            "moca_drop_points": self.moca_drop_points,
            "moca_drop_months": self.moca_drop_months,
            "dose_ratio": self.dose_ratio,
            "today": self.today.isoformat() if self.today else None,
        }
