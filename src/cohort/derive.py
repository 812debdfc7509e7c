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
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from cohort.errors import UserError
from cohort.mapping import closest
from cohort.resources import resource_dir

__all__ = ["Derivation", "compile_derivation", "derivations", "derive"]

_PARAM = re.compile(r"^--\s*param:\s*(\w+)\s+([\w\[\]]+)\s*=\s*(.*?)\s*(?:--\s+(.*))?$")
_USES = re.compile(r"^--\s*uses:\s*([\w ,]+)$")


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


def compile_derivation(name: str, **params: Any) -> tuple[str, dict[str, Any]]:
    """The SQL of derivation ``name`` and the values to bind to it (defaults filled in).

    For running it elsewhere (``copy (...) to 'x.parquet'``, a benchmark, another engine).
    """
    available = derivations()
    if name not in available:
        listed = [n for n in available if not n.startswith("_")]
        raise UserError(f"no derivation {name!r}{closest(name, listed)}; "
                        f"available: {', '.join(listed)}")
    d = available[name]
    declared = {p.name: p for p in d.parameters}
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise UserError(
            f"derivation {name!r} has no parameter(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(f'{p.name} ({p.type}, default {p.default!r})' for p in d.parameters)}")
    values = {p.name: params.get(p.name, p.default) for p in d.parameters}
    text = d.sql(available)
    return text, {k: v for k, v in values.items() if re.search(rf"\${k}\b", text)}


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

    Examples
    --------
    >>> import cohort, tempfile, pathlib
    >>> study = cohort.open(pathlib.Path(tempfile.mkdtemp()) / "s.duckdb")
    >>> study.derive("time_to_event", event_type="relapse").height
    0
    """
    text, values = compile_derivation(name, **params)
    try:
        return con.sql(text, params=values).pl()
    except duckdb.Error as exc:
        raise UserError(f"derivation {name!r} failed with parameters {values}: "
                        f"{str(exc).splitlines()[0]}") from None
