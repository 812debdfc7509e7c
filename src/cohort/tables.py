"""The canonical tables: their columns, polars types and which are required.

This mirrors sql/schema/ (the DDL is the source of truth for the database);
ingest maps and coerces site files to these columns, the simulator emits them.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

__all__ = ["Column", "TABLES", "LOAD_ORDER", "INSTRUMENTS", "INSTRUMENT_RANGES", "table_columns"]


@dataclass(frozen=True)
class Column:
    name: str
    dtype: type[pl.DataType] | pl.DataType
    required: bool = True
    allowed: tuple[str, ...] | None = None
    #: SQL predicate on the value ``{}`` mirroring the schema's CHECK, and its wording
    domain: tuple[str, str] | None = None


SEXES = ("female", "male", "other", "unknown")
DIAGNOSES = ("TRD", "MDD", "PTSD", "bipolar")
DRUGS = ("racemic_ketamine", "esketamine")
ROUTES = ("iv", "intranasal", "oral", "im")
SETTINGS = ("clinic", "hospital", "home", "research")
EVENT_TYPES = (
    "relapse", "remission", "hospitalisation", "suicide_attempt",
    "ketamine_use_disorder", "non_prescribed_use", "adverse_event",
)
SEVERITIES = ("mild", "moderate", "severe", "life_threatening", "fatal")
EXIT_REASONS = ("completed", "withdrew", "lost_to_follow_up", "died")

#: Valid score range of each instrument (inclusive).
INSTRUMENT_RANGES: dict[str, tuple[float, float]] = {
    "MADRS": (0, 60),
    "PHQ-9": (0, 27),
    "QIDS-SR16": (0, 27),
    "MoCA": (0, 30),
    "MMSE": (0, 30),
    "DSST": (0, 133),
    "CADSS": (0, 92),
    "RAVLT": (0, 75),
    "TMT-B": (0, 600),
}
INSTRUMENTS = tuple(INSTRUMENT_RANGES)
_WEIGHT = ("{} > 0 and {} < 400", "between 0 and 400 kg")

TABLES: dict[str, tuple[Column, ...]] = {
    "participants": (
        Column("participant_id", pl.String),
        Column("site_id", pl.String),
        Column("sex", pl.String, allowed=SEXES),
        Column("birth_year", pl.Int16, domain=("{} between 1900 and 2100", "between 1900 and 2100")),
        Column("enrolled_on", pl.Date),
        Column("diagnosis", pl.String, allowed=DIAGNOSES),
        Column("baseline_weight_kg", pl.Float64, required=False, domain=_WEIGHT),
        Column("prior_episodes", pl.Int16, required=False, domain=("{} >= 0", "0 or more")),
        Column("concomitant_antidepressant", pl.Boolean, required=False),
    ),
    "treatment_sessions": (
        Column("participant_id", pl.String),
        Column("session_date", pl.Date),
        Column("drug", pl.String, allowed=DRUGS),
        Column("route", pl.String, allowed=ROUTES),
        Column("dose_mg", pl.Float64, domain=("{} > 0", "greater than 0")),
        Column("weight_kg", pl.Float64, required=False, domain=_WEIGHT),
        Column("setting", pl.String, required=False, allowed=SETTINGS),
    ),
    "assessments": (
        Column("participant_id", pl.String),
        Column("assessed_on", pl.Date),
        Column("instrument", pl.String, allowed=INSTRUMENTS),
        Column("score", pl.Float64),
    ),
    "events": (
        Column("participant_id", pl.String),
        Column("event_date", pl.Date),
        Column("event_type", pl.String, allowed=EVENT_TYPES),
        Column("term", pl.String, required=False),
        Column("severity", pl.String, required=False, allowed=SEVERITIES),
    ),
    "exits": (
        Column("participant_id", pl.String),
        Column("exit_date", pl.Date),
        Column("reason", pl.String, allowed=EXIT_REASONS),
    ),
}


#: The order tables must be loaded in: cross-table rules look at the tables before them.
LOAD_ORDER = ("participants", "exits", "treatment_sessions", "assessments", "events")


def table_columns(table: str) -> tuple[Column, ...]:
    """Return the canonical columns of ``table`` or raise a helpful KeyError."""
    try:
        return TABLES[table]
    except KeyError:
        raise KeyError(f"unknown table {table!r}; known tables: {', '.join(TABLES)}") from None
