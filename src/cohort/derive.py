"""Run the SQL derivations of sql/derive/ with bound, declared parameters.

Each derivation is one SQL file. Its header declares the parameters it takes,
one per line, as ``-- param: NAME TYPE = DEFAULT -- description``. Values are
always bound, never pasted into the SQL text.

A derivation may build on others: ``-- uses: follow_up`` makes the output of
sql/derive/follow_up.sql available to its query as ``follow_up`` (a common table
expression, so the whole is still one query). The parameters of the derivation
it uses must be declared by the user too; their values flow by name. Uses nest
(a used derivation may use others) and each derivation reached becomes one
common table expression, however many paths lead to it. A derivation whose name
starts with ``_`` is a building block for others (not listed as available).

Before a derivation runs, every value is typed as declared and the values of vocabulary
parameters (``event_type``, ``term``, ``origin``, ...) are checked against what the study
knows (:mod:`cohort.derive_parameters`): a wrong one is a :class:`ParameterError`. A
derivation that returns no rows, or no events, warns (:class:`EmptyResultWarning`).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from cohort.derive_parameters import check_parameters
from cohort.errors import EmptyResultWarning, UserError
from cohort.mapping import closest
from cohort.resources import resource_dir

__all__ = ["EVENT_COLUMNS", "Derivation", "compile_derivation", "derivations", "derive"]

_PARAM = re.compile(r"^--\s*param:\s*(\w+)\s+([\w\[\]]+)\s*=\s*(.*?)\s*(?:--\s+(.*))?$")
_USES = re.compile(r"^--\s*uses:\s*([\w ,]+)$")
#: The column that tells an event in a derivation's rows (1 / a count / a cause code > 0).
EVENT_COLUMNS = ("event", "events", "cause")


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    default: Any
    description: str


@dataclass(frozen=True)
class Derivation:
    name: str
    path: Path
    description: str
    parameters: tuple[Parameter, ...]
    uses: tuple[str, ...] = ()

    @property
    def query(self) -> str:
        """The file's query without its header comments."""
        lines = self.path.read_text(encoding="utf-8").splitlines()
        body = [line for line in lines if not line.startswith("--")] if lines else []
        return "\n".join(body).strip()

    def needs(self, catalogue: dict[str, Derivation]) -> tuple[str, ...]:
        """Every derivation this one builds on, directly or through others, each once,
        in dependency order (a derivation comes after those it uses)."""
        order: list[str] = []

        def visit(name: str, path: tuple[str, ...]) -> None:
            if name in path:
                raise UserError(f"{self.path}: derivations use each other in a circle: "
                                f"{' -> '.join((*path[path.index(name):], name))}; "
                                f"remove one of these '-- uses:' lines")
            if name in order:
                return
            for used in catalogue[name].uses:
                visit(used, (*path, name))
            order.append(name)

        for name in self.uses:
            visit(name, (self.name,))
        return tuple(order)

    def sql(self, catalogue: dict[str, Derivation]) -> str:
        """The query with what it uses put in front as common table expressions.

        What it uses is flattened: each derivation reached (directly, through others, or
        along two paths) becomes one common table expression, after those it uses, so
        it is computed once and every query in the chain refers to it by name.
        """
        query = self.query
        if not self.uses:
            return query
        ctes = ",\n".join(f"{name} as (\n{catalogue[name].query}\n)"
                           for name in self.needs(catalogue))
        if re.match(r"with\b", query, flags=re.IGNORECASE):
            return f"with {ctes},\n{query[4:].lstrip()}"
        return f"with {ctes}\n{query}"


def _parse_default(text: str) -> Any:
    text = text.strip()
    if text.lower() == "null":
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1]
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        return text


def _load(path: Path) -> Derivation:
    params, description, uses = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("--"):
            break
        m = _PARAM.match(line)
        u = _USES.match(line)
        if m:
            params.append(Parameter(m[1], m[2], _parse_default(m[3]), (m[4] or "").strip()))
        elif u:
            uses += [name.strip() for name in u[1].split(",") if name.strip()]
        elif not params:
            description.append(line.lstrip("- ").strip())
    return Derivation(path.stem, path, " ".join(d for d in description if d), tuple(params),
                      tuple(uses))


def derivations() -> dict[str, Derivation]:
    """Every derivation shipped in sql/derive/, by name."""
    found = {p.stem: _load(p) for p in sorted(resource_dir("sql").joinpath("derive").glob("*.sql"))}
    for d in found.values():
        for name in d.uses:
            if name not in found:
                raise UserError(f"{d.path}: uses {name!r}, which is not a derivation")
            missing = {p.name for p in found[name].parameters} - {p.name for p in d.parameters}
            if missing:
                raise UserError(f"{d.path}: uses {name!r} but does not declare its "
                                f"parameter(s) {', '.join(sorted(missing))}")
        d.needs(found)  # no circles
    return found


def _find(name: str) -> tuple[Derivation, dict[str, Derivation]]:
    available = derivations()
    if name not in available:
        listed = [n for n in available if not n.startswith("_")]
        raise UserError(f"no derivation {name!r}{closest(name, listed)}; "
                        f"available: {', '.join(listed)}")
    return available[name], available


def _values(d: Derivation, params: dict[str, Any]) -> dict[str, Any]:
    """A value for every declared parameter: the given ones, else the defaults."""
    unknown = sorted(set(params) - {p.name for p in d.parameters})
    if unknown:
        raise UserError(
            f"derivation {d.name!r} has no parameter(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(f'{p.name} ({p.type}, default {p.default!r})' for p in d.parameters)}")
    return {p.name: params.get(p.name, p.default) for p in d.parameters}


def _bound(d: Derivation, available: dict[str, Derivation],
           values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    text = d.sql(available)
    return text, {k: v for k, v in values.items() if re.search(rf"\${k}\b", text)}


def compile_derivation(name: str, **params: Any) -> tuple[str, dict[str, Any]]:
    """The SQL of derivation ``name`` and the values to bind to it (defaults filled in).

    For running it elsewhere (``copy (...) to 'x.parquet'``, a benchmark, another engine).
    """
    d, available = _find(name)
    return _bound(d, available, _values(d, params))


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _warn_if_empty(name: str, rows: pl.DataFrame, values: dict[str, Any]) -> None:
    given = ", ".join(f"{k}={_shown(v)}" for k, v in values.items() if v is not None)
    event = next((c for c in EVENT_COLUMNS if c in rows.columns), None)
    if rows.height == 0:
        found = "no rows"
    elif event is not None and not (rows[event] > 0).any():
        found = f"no events in its {rows.height} rows"
    else:
        return
    warnings.warn(f"derivation {name!r} found {found} with {given or 'no parameters'}; "
                  "check the parameters and what the study holds", EmptyResultWarning,
                  stacklevel=4)  # the caller of Study.derive


def derive(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> pl.DataFrame:
    """Run derivation ``name`` on a study connection and return its rows.

    Parameters
    ----------
    con
        Connection to a study database.
    name
        File name in sql/derive/ without ``.sql`` (see :func:`derivations`).
    **params
        Values for the parameters the file declares; the others take their defaults.
        Each is typed as declared (text such as ``"90"`` or ``"2024-12-31"`` is converted)
        and vocabulary parameters are checked against the study.

    Raises
    ------
    ParameterError
        A value is not of its parameter's type, or not one the study knows.

    Warns
    -----
    EmptyResultWarning
        The derivation returned no rows, or rows without an event.

    Examples
    --------
    >>> import cohort, tempfile, pathlib, warnings
    >>> study = cohort.open(pathlib.Path(tempfile.mkdtemp()) / "s.duckdb", create=True)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     study.derive("time_to_event", event_type="relapse").height
    0
    >>> print(caught[0].message)  # doctest: +ELLIPSIS
    derivation 'time_to_event' found no rows with event_type='relapse', ...
    >>> study.derive("time_to_event", event_type="relapsee")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cohort.errors.ParameterError: derivation 'time_to_event': event_type 'relapsee' is not \
an event type or death; closest: relapse; allowed: relapse, remission, ..., death
    """
    d, available = _find(name)
    checked = check_parameters(con, d, _values(d, params))
    text, values = _bound(d, available, checked)
    try:
        rows = con.sql(text, params=values).pl()
    except duckdb.Error as exc:
        raise UserError(f"derivation {name!r} failed with parameters {values}: "
                        f"{str(exc).splitlines()[0]}") from None
    _warn_if_empty(name, rows, values)
    return rows
