"""Checking a TOML configuration (a mapping spec, cohort.toml) against a small schema.

A schema is a dict ``key -> Key | dict | Names``: a :class:`Key` checks one value (its
type and what values are possible), a nested dict a sub-table with fixed keys, and
:class:`Names` a table of free names (canonical tables, columns, recode codes) checked
alike. Every problem is ONE line naming the file, the key path and what is expected::

    mappings/oslo.toml: [read] delimeter: unknown key; did you mean delimiter?
    cohort.toml: [database] threads: expected a whole number >= 1, got "two"

>>> schema = {"read": {"delimiter": Key(one_character, "the field separator")}}
>>> check_table({"read": {"delimiter": ";"}}, schema, At("m.toml"))
{'read': {'delimiter': ';'}}
>>> check_table({"read": {"delimeter": ";"}}, schema, At("m.toml"))
Traceback (most recent call last):
...
cohort.errors.UserError: m.toml: [read] delimeter: unknown key; did you mean delimiter?
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from cohort.errors import UserError

__all__ = [
    "At", "Check", "Key", "Names", "check_table", "did_you_mean", "shown",
    "boolean", "text", "one_character", "whole_number", "number", "one_of", "known_names",
]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key_text(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


@dataclass(frozen=True)
class At:
    """Where a value is: its file, its key path, and the error class to raise."""

    file: str
    path: tuple[str, ...] = ()
    error: type[UserError] = UserError

    def child(self, key: str) -> At:
        return At(self.file, (*self.path, key), self.error)

    def __str__(self) -> str:
        if not self.path:
            return ""
        *table, key = (_key_text(k) for k in self.path)
        return f"[{'.'.join(table)}] {key}" if table else key

    def fail(self, problem: str) -> NoReturn:
        """Raise this place's error: ``file: [table] key: problem``."""
        where = f"{self.file}: {self}" if self.path else self.file
        raise self.error(f"{where}: {problem}") from None


def shown(value: Any) -> str:
    """A value as it is written in TOML (short), for 'got ...' in messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, list):
        text = "[" + ", ".join(shown(v) for v in value) + "]"
    elif isinstance(value, dt.date | dt.time):
        text = value.isoformat()
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``'; did you mean X?'`` for the closest of ``candidates``, else the list of them."""
    candidates = sorted(candidates)
    lowered = {c.lower(): c for c in candidates}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    if hits:
        return f"; did you mean {lowered[hits[0]]}?"
    return f"; known: {', '.join(candidates)}" if candidates else ""


Check = Callable[[Any, At], Any]


@dataclass(frozen=True)
class Key:
    """One key of a schema: its check (returns the value as used, or calls ``at.fail``)."""

    check: Check
    doc: str


@dataclass(frozen=True)
class Names:
    """A table of free names, each value checked by ``value``; ``name`` checks each name."""

    value: Key | dict[str, Any] | Names
    doc: str = ""
    name: Callable[[str, At], None] | None = None


Spec = Key | dict[str, Any] | Names


def _table(value: Any, at: At) -> dict[str, Any]:
    if not isinstance(value, dict):
        at.fail(f"expected a table, got {shown(value)}")
    return value


def _checked(value: Any, spec: Spec, at: At) -> Any:
    if isinstance(spec, Key):
        return spec.check(value, at)
    if isinstance(spec, Names):
        out = {}
        for name, item in _table(value, at).items():
            if spec.name is not None:
                spec.name(name, at.child(name))
            out[name] = _checked(item, spec.value, at.child(name))
        return out
    return check_table(value, spec, at)


def check_table(data: Any, schema: dict[str, Spec], at: At) -> dict[str, Any]:
    """Check every key of the table ``data`` against ``schema``: unknown keys, types and
    values. Returns the checked values of the keys present (sub-tables as dicts)."""
    out: dict[str, Any] = {}
    for key, value in _table(data, at).items():
        spec = schema.get(key)
        if spec is None:
            at.child(key).fail(f"unknown key{did_you_mean(key, schema)}")
        out[key] = _checked(value, spec, at.child(key))
    return out


# -- checks of single values ---------------------------------------------------------

def boolean(value: Any, at: At) -> bool:
    if not isinstance(value, bool):
        at.fail(f"expected true or false, got {shown(value)}")
    return value


def text(value: Any, at: At) -> str:
    if not isinstance(value, str) or not value.strip():
        at.fail(f"expected a non-empty text in quotes, got {shown(value)}")
    return value


def one_character(value: Any, at: At) -> str:
    if not isinstance(value, str) or len(value) != 1:
        at.fail(f"expected one character in quotes, got {shown(value)}")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def whole_number(minimum: int) -> Check:
    def check(value: Any, at: At) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            at.fail(f"expected a whole number >= {minimum}, got {shown(value)}")
        return value
    return check


def number(*, low: float | None = None, high: float | None = None,
           above: float | None = None) -> Check:
    """A number (integer or decimal, finite) in [low, high], or greater than ``above``."""
    if above is not None:
        expected = f"a number greater than {above:g}"
    elif high is not None:
        expected = f"a number from {low:g} to {high:g}"
    else:
        expected = f"a number >= {low:g}"

    def check(value: Any, at: At) -> float:
        fits = _is_number(value) and math.isfinite(value) and (
            (above is None or value > above) and (low is None or value >= low)
            and (high is None or value <= high))
        if not fits:
            at.fail(f"expected {expected}, got {shown(value)}")
        return value
    return check


def one_of(choices: Sequence[str]) -> Check:
    def check(value: Any, at: At) -> str:
        if value not in choices or not isinstance(value, str):
            hint = did_you_mean(value, choices) if isinstance(value, str) else ""
            hint = hint if hint.startswith("; did") else ""
            at.fail(f"expected one of {', '.join(map(shown, choices))}, got {shown(value)}{hint}")
        return value
    return check


def known_names(names: Iterable[str], what: str) -> Callable[[str, At], None]:
    """A name check of :class:`Names`: the name must be one of ``names`` (a ``what``)."""
    names = tuple(names)

    def check(name: str, at: At) -> None:
        if name not in names:
            at.fail(f"not {what}{did_you_mean(name, names)}")
    return check
