"""A generic disclosure scanner: can a count from 1 to 7 be backed out of a released file?

It reads every released file of an output folder (HTML text and tables, JSON, CSV,
xlsx; plots are drawn from the released tables written beside them) and checks each
number it finds:

- **counts**: every integer-valued number (except under a key or column known not to be
  a count: times, degrees of freedom, codes, seeds, settings) must be 0, or a multiple of
  ``rounding`` above ``threshold``; numbers under count-like keys (``expected``,
  ``n_event``, ...) must be such counts even when written as floats (an exact
  ``expected`` undoes the rounding of ``observed``).
- **proportions in a record**: a float p (a survival, an estimate, a percent) of a record
  (a JSON object, a table row) that also holds a released count n must not give
  ``k = p * n`` (or ``(1 - p) * n``) an integer from 1 to ``threshold``.
- **curve steps**: in a curve table (group, time, survival or estimate), the step ratio
  ``S(t) / S(t-)`` times the released risk set must not give an event count from 1 to
  ``threshold``.
- **the study's real small counts**: given the fractions ``k / n`` (k from 1 to
  ``threshold``) that exist in the study's data (risk sets and events of the real
  curves, group sizes), no released float p, 1 - p, p / 100 or step ratio may equal one.

It knows nothing of the code that wrote the files, so it applies to any new output.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

#: Integer-valued keys or columns that are not counts.
NOT_COUNTS = frozenset({
    "seed", "df", "cause", "year", "years", "time", "threshold", "rounding", "iterations",
    "batch_id", "exposure_level", "baseline_sessions", "min_years", "quantile", "line",
    "source_line", "period", "grid_years", "statistic", "p_value", "conf_level", "level",
    "dose_bands_g", "escalation", "period_years", "reliability", "practice_effect",
    "person_time", "person_years", "smd", "estimate", "survival", "std_error", "rate",
})
#: Keys whose whole value is settings or simulation parameters, not data.
NOT_DATA = frozenset({"truth", "parameters", "config", "timings", "stage_seconds"})
#: Prefixes of keys or columns that are summaries of values, not counts.
NOT_COUNT_PREFIXES = ("true_", "conf_", "rr_", "b_", "seconds", "median", "mean", "max", "min",
                      "sd", "q1", "q3", "elapsed")
#: Keys that hold counts even when written as floats.
COUNT_LIKE = frozenset({
    "n", "n_risk", "n_event", "n_censor", "n_competing", "observed", "expected", "events",
    "participants", "count", "denominator", "rows_read", "rows_loaded", "rows_quarantined",
    "rows_warned", "n_rows", "n_findings", "nobs", "ngroups", "n_events", "n_clusters",
    "escalated_n", "assessments", "observations", "excluded",
})
#: Keys of floats that are proportions (0-1) or percents (0-100) of a record's denominator.
PROPORTIONS = frozenset({"proportion", "fraction"})
PERCENTS = frozenset({"percent", "percent_of_start", "percent_of_previous"})
#: Keys of released counts that are denominators of the proportions of their record.
DENOMINATORS = frozenset({"n", "participants", "denominator", "total", "n_risk"})
#: Words that make a number in running text a count.
_PROSE = re.compile(r"(?<!first )(?<!last )(?<!every )\b(\d+) (participants?|assessments?|"
                    r"first relapses|relapses?|events?|sessions?|rows?|row\(s\)|session\(s\)|"
                    r"people|patients?|observations?|values?|visits?|records?)(?![\w(])")
_COUNT_PERCENT = re.compile(r"^(\d+) \((\d+(?:\.\d+)?)\)$")
_TOL = 1e-9


@dataclass(frozen=True)
class Finding:
    """One released number from which a small count can be backed out."""

    file: str
    where: str
    value: Any
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where} = {self.value!r}: {self.reason}"


@dataclass
class RealSmallCounts:
    """The small counts that exist in the study's data, as the released numbers could show them.

    ``sizes``: fractions k / N of whole groups (k from 1 to ``threshold``: the first
    events of a cumulative incidence, a percentage); ``steps``: per group, the real
    (time, risk set n, events k) with k from 1 to ``threshold`` of a curve.
    """

    sizes: np.ndarray = field(default_factory=lambda: np.empty(0))
    steps: dict[str, np.ndarray] = field(default_factory=dict)

    def add_size(self, n: int, *, threshold: int) -> None:
        if n:
            new = np.arange(1, threshold + 1) / n
            self.sizes = np.unique(np.concatenate([self.sizes, new]))

    def add_steps(self, group: str, times: np.ndarray, n: np.ndarray, k: np.ndarray, *,
                  threshold: int) -> None:
        keep = (k >= 1) & (k <= threshold) & (n > 0)
        rows = np.column_stack([times[keep], n[keep], k[keep]]).astype(float)
        old = self.steps.get(group, np.empty((0, 3)))
        self.steps[group] = np.vstack([old, rows])

    def matches_size(self, p: float) -> float | None:
        """The real fraction k / N that ``p`` equals (within 1e-9), or None."""
        if self.sizes.size == 0 or not 0 < p < 1:
            return None
        i = int(np.searchsorted(self.sizes, p))
        for j in (i - 1, i):
            if 0 <= j < self.sizes.size and abs(self.sizes[j] - p) < _TOL:
                return float(self.sizes[j])
        return None

    def matches_step(self, group: Any, after: float, until: float, fraction: float,
                     ) -> tuple[float, float] | None:
        """A real (n, k) of ``group`` in (after, until] with k / n == ``fraction``."""
        rows = self.steps.get(str(group))
        if rows is None:
            rows = np.vstack(list(self.steps.values())) if self.steps else np.empty((0, 3))
        sel = rows[(rows[:, 0] > after - _TOL) & (rows[:, 0] <= until + _TOL)]
        hit = sel[np.abs(sel[:, 2] / sel[:, 1] - fraction) < _TOL]
        return (float(hit[0, 1]), float(hit[0, 2])) if hit.size else None


def real_small_counts(df: pl.DataFrame, *, time: str, status: str, by: str | None,
                      threshold: int = 7, grids: Iterable[float] = (),
                      real: RealSmallCounts | None = None) -> RealSmallCounts:
    """The small counts of a time-to-event data set (``status`` 0 = censored, others events):
    group sizes, and per group the events (of each status, and of all) with their risk set
    at every distinct time and at every time of each ``grid`` (times rounded up to it).
    """
    real = real or RealSmallCounts()
    parts = [("all", df)] + ([] if by is None else
                             [(str(p[by][0]), p) for p in df.partition_by(by)])
    for group, part in parts:
        real.add_size(part.height, threshold=threshold)
        t = part[time].cast(pl.Float64).to_numpy()
        s = part[status].cast(pl.Int64).to_numpy()
        for binned in [t] + [np.ceil(t / g) * g for g in grids]:
            times = np.unique(binned)
            at_risk = np.array([(binned >= u).sum() for u in times])
            for code in [*np.unique(s[s != 0]).tolist(), None]:
                hit = (s != 0) if code is None else (s == code)
                d = np.array([((binned == u) & hit).sum() for u in times])
                real.add_steps(group, times, at_risk, d, threshold=threshold)
    return real


class Scanner:
    """Scan released files; :attr:`findings` lists the leaks, :attr:`numbers` how many
    numbers were checked."""

    def __init__(self, *, threshold: int = 7, rounding: int = 5,
                 real: RealSmallCounts | None = None) -> None:
        self.threshold = threshold
        self.rounding = rounding
        self.real = real or RealSmallCounts()
        self.findings: list[Finding] = []
        self.numbers = 0
        self.files: list[str] = []

    # -- files -------------------------------------------------------------------------------
    def scan_folder(self, folder: Path, *, skip: Iterable[str] = ()) -> None:
        """Scan every .html, .json, .csv and .xlsx under ``folder`` but the ``skip`` parts."""
        skip = set(skip)
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not (set(path.relative_to(folder).parts) & skip):
                self.scan_file(path, name=str(path.relative_to(folder)))

    def scan_file(self, path: Path, *, name: str | None = None) -> None:
        name = name or path.name
        suffix = path.suffix.lower()
        if suffix == ".json":
            self.files.append(name)
            self._walk(json.loads(path.read_text(encoding="utf-8")), name, "$")
        elif suffix == ".csv":
            self.files.append(name)
            self._table(_read_csv(path).to_dicts(), name, "csv")
        elif suffix == ".xlsx":
            self.files.append(name)
            for sheet, frame in pl.read_excel(path, sheet_id=0).items():
                self._table(frame.to_dicts(), name, f"sheet {sheet}")
        elif suffix in (".html", ".htm"):
            self.files.append(name)
            parser = _Tables()
            parser.feed(path.read_text(encoding="utf-8"))
            for i, rows in enumerate(parser.tables):
                self._table([_cells(r) for r in rows], name, f"table {i + 1}")
            self._prose(" ".join(parser.text), name, "text")

    # -- structure ---------------------------------------------------------------------------
    def _walk(self, value: Any, file: str, where: str) -> None:
        if isinstance(value, dict):
            self._record(value, file, where)
            for k, v in value.items():
                if isinstance(v, dict | list) and str(k).lower() not in NOT_DATA:
                    self._walk(v, file, f"{where}.{k}")
        elif isinstance(value, list):
            if value and all(isinstance(v, dict) for v in value):
                self._curve(value, file, where)
            for i, v in enumerate(value):
                if isinstance(v, str):
                    self._prose(v, file, f"{where}[{i}]")
                if isinstance(v, dict | list):
                    self._walk(v, file, f"{where}[{i}]")

    def _table(self, rows: list[dict[str, Any]], file: str, where: str) -> None:
        for i, row in enumerate(rows):
            self._record(row, file, f"{where} row {i + 1}")
        self._curve(rows, file, where)

    def _record(self, record: dict[str, Any], file: str, where: str) -> None:
        counts = {}
        for key, v in record.items():
            k = str(key).lower()
            if k in NOT_DATA:
                continue
            at = f"{where}.{key}"
            if isinstance(v, str):
                self._prose(v, file, at)
                continue
            if isinstance(v, bool) or v is None or isinstance(v, dict | list):
                continue
            self.numbers += 1
            if k in PERCENTS or k in PROPORTIONS:
                self._real(float(v), file, at, percent=k in PERCENTS)
                continue
            if k in NOT_COUNTS or k.startswith(NOT_COUNT_PREFIXES) or "ratio" in k:
                if isinstance(v, float) and k in ("estimate", "survival"):
                    self._real(v, file, at, percent=False)
                continue
            integral = isinstance(v, int) or (isinstance(v, float) and math.isfinite(v)
                                              and v == int(v) and k in COUNT_LIKE)
            if k in COUNT_LIKE and isinstance(v, float) and not integral and math.isfinite(v):
                self._leak(file, at, v, "a count-like number that is not a released count")
            elif integral:
                self._count(int(v), file, at)
                if v and k in DENOMINATORS:
                    counts[k] = int(v)
            elif isinstance(v, float):
                self._real(v, file, at, percent=k in PERCENTS)
        for key, v in record.items():
            k = str(key).lower()
            if not isinstance(v, float | int) or not (k in PROPORTIONS or k in PERCENTS):
                continue
            p = v / 100 if k in PERCENTS else v
            for ck, n in counts.items():
                for q in (p, 1 - p):
                    small = q * n
                    if 0.5 <= small <= self.threshold + 0.5 and abs(small - round(small)) < 1e-6:
                        self._leak(file, f"{where}.{key}", v,
                                   f"{key} x {ck} ({n}) gives {round(small)}")

    def _curve(self, rows: list[dict[str, Any]], file: str, where: str) -> None:
        value = next((c for c in ("survival", "estimate") if rows and c in rows[0]), None)
        if value is None or "time" not in rows[0]:
            return
        by_group: dict[Any, list[dict[str, Any]]] = {}
        for r in rows:
            by_group.setdefault(r.get("group"), []).append(r)
        for group, part in by_group.items():
            part = sorted((r for r in part if isinstance(r.get(value), float | int)),
                          key=lambda r: r["time"])
            previous, since = (1.0 if value == "survival" else 0.0), -math.inf
            for r in part:
                s = float(r[value])
                t = float(r["time"])
                at = f"{where} group {group} time {t:.4g}"
                if value == "survival" and previous > 0 and s < previous:
                    ratio = s / previous
                    self.numbers += 1
                    real = self.real.matches_step(group, since, t, 1 - ratio)
                    if real is not None:
                        self._leak(file, at, s, f"step ratio {ratio:.6g} is 1 - {real[1]:g}/"
                                   f"{real[0]:g}, a real step of the study")
                    n = r.get("n_risk")
                    if isinstance(n, int | float) and n:
                        d = (1 - ratio) * n
                        if 0.5 <= d <= self.threshold + 0.5 and abs(d - round(d)) < 1e-6:
                            self._leak(file, at, s, f"step ratio x n_risk {n} gives {round(d)} "
                                       "events")
                if s != previous:
                    since = t
                previous = s

    def _prose(self, text: str, file: str, where: str) -> None:
        for m in _PROSE.finditer(text):
            self.numbers += 1
            self._count(int(m.group(1)), file, f"{where} '{m.group(0)}'")

    # -- checks ------------------------------------------------------------------------------
    def _count(self, n: int, file: str, where: str) -> None:
        if 1 <= n <= self.threshold:
            self._leak(file, where, n, f"a count from 1 to {self.threshold}")
        elif n > self.threshold and n % self.rounding:
            self._leak(file, where, n, f"a count not rounded to {self.rounding}")

    def _real(self, v: float, file: str, where: str, *, percent: bool) -> None:
        candidates = [v / 100] if percent else [v, 1 - v]
        for p in candidates:
            real = self.real.matches_size(p)
            if real is not None:
                self._leak(file, where, v, f"equals a real small fraction {real:.6g}")
                return

    def _leak(self, file: str, where: str, value: Any, reason: str) -> None:
        self.findings.append(Finding(file, where, value, reason))


def _read_csv(path: Path) -> pl.DataFrame:
    lines = path.read_text(encoding="utf-8").splitlines()
    body = "\n".join(line for line in lines if not line.startswith("#"))
    return pl.read_csv(body.encode(), infer_schema_length=None) if body else pl.DataFrame()


def _number(text: str) -> Any:
    text = text.strip().replace(",", "")
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def _cells(row: dict[str, str]) -> dict[str, Any]:
    """HTML cells as numbers; an "n (%)" cell gives a count and a percent."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        m = _COUNT_PERCENT.match(v.strip())
        if m:
            out[f"{k} count"] = int(m.group(1))
            out[f"{k} percent"] = float(m.group(2))
        else:
            out[k] = _number(v)
    return out


class _Tables(HTMLParser):
    """The tables (rows as header -> cell text) and the running text of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[dict[str, str]]] = []
        self.text: list[str] = []
        self._head: list[str] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_table = 0
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("style", "script"):
            self._skip += 1
        elif tag == "table":
            self._in_table += 1
            self._head, self.tables = [], [*self.tables, []]
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._skip -= 1
        elif tag == "table":
            self._in_table -= 1
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if not self._head:
                self._head = self._row
            else:
                self.tables[-1].append(dict(zip(self._head, self._row, strict=False)))
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._cell is not None:
            self._cell.append(data)
        elif not self._in_table:
            self.text.append(data)


def iter_findings(scanners: Iterable[Scanner]) -> Iterator[Finding]:
    for s in scanners:
        yield from s.findings
