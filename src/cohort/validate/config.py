"""Study-level validation settings (thresholds a study may change)."""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from cohort.errors import UserError
from cohort.tables import TABLES

__all__ = ["ValidationConfig", "ConfigError"]


class ConfigError(UserError):
    """A validation setting is not usable as given."""


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
    def from_dict(cls, data: Mapping[str, Any]) -> ValidationConfig:
        """Build from plain data (e.g. the ``[validation]`` table of a study TOML)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown validation setting(s): {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(known))}")
        kwargs = dict(data)
        if "row_count_ranges" in kwargs:
            kwargs["row_count_ranges"] = {
                t: tuple(None if v in (None, -1) else int(v) for v in b)
                for t, b in kwargs["row_count_ranges"].items()
            }
        if isinstance(kwargs.get("today"), str):
            kwargs["today"] = dt.date.fromisoformat(kwargs["today"])
        return cls(**kwargs)

    @classmethod
    def from_toml(cls, path: str | Path, *, section: str = "validation") -> ValidationConfig:
        """Read the ``[validation]`` table of a TOML file (absent: defaults)."""
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read validation settings: {exc}") from None
        return cls.from_dict(data.get(section, {}))

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
