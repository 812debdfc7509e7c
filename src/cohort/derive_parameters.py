"""The values of derivation parameters: typed as declared, checked against the study.

A derivation's header declares each parameter's type (``-- param: NAME TYPE = DEFAULT``);
a value must be of that type (the command line gives text: ``90``, ``2024-12-31``,
``true``, ``[6, 12]`` or ``6,12`` for a list). A parameter's name says what it means in
every derivation (values flow by name to the derivations it uses), so the values a
vocabulary parameter may take are declared here once, by name, in :data:`VOCABULARIES`:
``event_type``, ``term``, ``origin``, ``causes`` and ``instruments``, as are the minimums
of numeric ones (:data:`MINIMUMS`: a window of at least one day, ...) and the cut points
that must increase (:data:`INCREASING`). ``null`` (``None``) is allowed only where it is
the declared default.

Examples
--------
>>> from cohort.derive_parameters import typed
>>> typed("window_days", "integer", "90"), typed("landmarks", "integer[]", "6,12")
(90, [6, 12])
"""

from __future__ import annotations

import datetime as dt
import difflib
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb

from cohort.errors import ParameterError
from cohort.tables import EVENT_TYPES, INSTRUMENTS

if TYPE_CHECKING:
    from cohort.derive import Derivation

__all__ = ["INCREASING", "MINIMUMS", "ORIGINS", "VOCABULARIES", "Vocabulary", "check_parameters", "typed"]

#: The origins of follow-up (follow_up.sql): the first treatment session, or enrolment.
ORIGINS = ("first_session", "enrolment")
#: What an event of a derivation can be: an events.event_type, or death (exits, reason died).
EVENTS = (*EVENT_TYPES, "death")


def _terms(con: duckdb.DuckDBPyConnection, values: dict[str, Any]) -> tuple[str, ...]:
    """The event terms present in the study (of the derivation's event_type, if it has one)."""
    sql = "select distinct lower(term) from events where term is not null"
    params: list[Any] = []
    if "event_type" in values:
        sql += " and event_type = ?"
        params.append(values["event_type"])
    return tuple(r[0] for r in con.execute(sql + " order by 1", params).fetchall())


@dataclass(frozen=True)
class Vocabulary:
    """The values a parameter (or each element of a list parameter) may take."""

    #: what the values are, for the error message
    what: str
    #: the allowed values; a function of the study and the other (already checked) values
    values: tuple[str, ...] | Callable[[duckdb.DuckDBPyConnection, dict[str, Any]], tuple[str, ...]]
    #: compare lower-cased (terms are matched so by _candidate_events.sql)
    ignore_case: bool = False

    def allowed(self, con: duckdb.DuckDBPyConnection, values: dict[str, Any]) -> tuple[str, ...]:
        return self.values if isinstance(self.values, tuple) else self.values(con, values)


#: Allowed values by parameter name, checked in this order (term after event_type).
VOCABULARIES: dict[str, Vocabulary] = {
    "event_type": Vocabulary("an event type or death", EVENTS),
    "causes": Vocabulary("an event type, death or withdrawal", (*EVENTS, "withdrawal")),
    "term": Vocabulary("a term of the study's events", _terms, ignore_case=True),
    "origin": Vocabulary("an origin of follow-up", ORIGINS),
    "instruments": Vocabulary("an instrument", INSTRUMENTS),
}

#: The smallest value a numeric parameter (each element of a list) may take, by name.
MINIMUMS: dict[str, float] = {
    "window_days": 1, "age_band_years": 1, "horizon_months": 1, "pwp_max_stratum": 1,
    "landmarks": 0, "dose_bands_g": 0,
}
#: List parameters whose values must be strictly increasing (cut points).
INCREASING = frozenset({"dose_bands_g"})

_INTEGER = re.compile(r"[+-]?\d+")
_TRUE, _FALSE = {"true", "t", "yes", "y", "1"}, {"false", "f", "no", "n", "0"}
_EXAMPLES = {"integer": "a whole number, e.g. 90", "double": "a number, e.g. 1.5",
             "boolean": "true or false", "date": "a date as YYYY-MM-DD, e.g. 2024-12-31",
             "varchar": "text"}


class _NotOfType(ValueError):
    pass


def _scalar(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "varchar" and isinstance(value, str):
        return value
    if kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
            return int(value)
    if kind == "double":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
    if kind == "date":
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                pass
    raise _NotOfType(_EXAMPLES[kind])


def _elements(value: Any) -> list[Any]:
    """A list given as a list, or as text: ``[6, 12]``, ``6,12``, ``['MoCA', 'DSST']``."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        text = value.strip().removeprefix("[").removesuffix("]").strip()
        return [part.strip().strip("'\"") for part in text.split(",")] if text else []
    raise _NotOfType("a list")


def typed(name: str, declared: str, value: Any) -> Any:
    """``value`` as the declared type (``integer``, ``double``, ``boolean``, ``date``,
    ``varchar`` or a list ``TYPE[]``); ``None`` or the text ``null`` is null.

    Raises
    ------
    ParameterError
        The value is not of that type (one line, with an example of one that is).
    """
    kind = declared.removesuffix("[]")
    if kind not in _EXAMPLES:
        raise ParameterError(f"parameter {name}: declared type {declared!r} is not one of "
                             f"{', '.join(_EXAMPLES)} (or a list of one: TYPE[])")
    if isinstance(value, str) and value.strip().lower() == "null":
        return None
    try:
        if declared.endswith("[]"):
            return None if value is None else [_scalar(kind, v) for v in _elements(value)]
        return _scalar(kind, value)
    except _NotOfType as exc:
        wanted = f"a list of {_EXAMPLES[kind]}" if declared.endswith("[]") else str(exc)
        raise ParameterError(f"parameter {name}: {value!r} is not {declared} "
                             f"({wanted})") from None


def _nearest(value: str, allowed: tuple[str, ...]) -> str:
    hits = difflib.get_close_matches(value.lower(), [a.lower() for a in allowed], n=1, cutoff=0)
    return next(a for a in allowed if a.lower() == hits[0]) if hits else ""


def _check_vocabulary(derivation: str, name: str, value: Any, vocabulary: Vocabulary,
                      allowed: tuple[str, ...]) -> None:
    given = value if isinstance(value, list) else [value]
    known = {a.lower() if vocabulary.ignore_case else a for a in allowed}
    for v in given:
        key = v.lower() if vocabulary.ignore_case and v is not None else v
        if key in known:
            continue
        listed = ", ".join(allowed) if allowed else "none (the study has no such values)"
        nearest = _nearest(v, allowed) if v is not None and allowed else ""
        hint = f"closest: {nearest}; " if nearest else ""
        raise ParameterError(
            f"derivation {derivation!r}: {name} {v!r} is not {vocabulary.what}; {hint}"
            f"allowed: {listed}")


def _check_range(name: str, value: Any) -> None:
    if name not in MINIMUMS or value is None:
        return
    given = value if isinstance(value, list) else [value]
    if None in given:
        raise ParameterError(f"parameter {name}: {value} holds a null; give numbers only")
    low = MINIMUMS[name]
    for v in given:
        if v < low:
            raise ParameterError(f"parameter {name}: {v} is below its minimum {low:g}")
    if name in INCREASING and any(b <= a for a, b in itertools.pairwise(given)):
        raise ParameterError(f"parameter {name}: {value} must be strictly increasing")


def check_parameters(con: duckdb.DuckDBPyConnection, derivation: Derivation,
                     values: dict[str, Any]) -> dict[str, Any]:
    """Every declared parameter's value typed as declared and, for a vocabulary
    parameter, checked against what the study knows.

    Parameters
    ----------
    con
        The study's connection (terms are the study's own).
    derivation
        The derivation the values are for.
    values
        A value for each declared parameter (defaults filled in).

    Returns
    -------
    dict
        The typed values, by name.

    Raises
    ------
    ParameterError
        One line naming the parameter, the bad value, the closest allowed value and
        every allowed one.
    """
    declared = {p.name: p for p in derivation.parameters}
    checked: dict[str, Any] = {}
    for name, p in declared.items():
        try:
            checked[name] = typed(name, p.type, values[name])
            _check_range(name, checked[name])
        except ParameterError as exc:
            raise ParameterError(f"derivation {derivation.name!r}: {exc}") from None
    for name, vocabulary in VOCABULARIES.items():
        if name not in checked or (checked[name] is None and declared[name].default is None):
            continue
        _check_vocabulary(derivation.name, name, checked[name], vocabulary,
                          vocabulary.allowed(con, checked))
    return checked
