"""Disclosure control: the one place where the rules for output leaving the study live.

The rules (as OpenSAFELY's, with their defaults as parameters):

- **counts**: 0 stays 0; counts from 1 to ``threshold`` (7) are suppressed
  (``None``, shown as an empty cell or ``[REDACTED]``); other counts are rounded
  to the nearest multiple of ``rounding`` (5). A released count is therefore 0
  or a multiple of 5 of at least 10. :meth:`Disclosure.count`,
  :meth:`Disclosure.counts`.
- **anything derived from counts is computed from the released counts**:
  percentages from released numerators over released denominators
  (:meth:`Disclosure.percent`); incidence rates from released event counts
  (:meth:`Disclosure.rates`); Kaplan-Meier and cumulative-incidence curves are
  recomputed from released risk sets and released event counts on a coarsened
  time grid (:meth:`Disclosure.kaplan_meier`, :meth:`Disclosure.cumulative_incidence`,
  the approach of OpenSAFELY's ``kaplan-meier-function``): times are rounded up
  to the grid, the cumulative number of events (and of censorings) is rounded,
  a step is released only when the rounded cumulative count has grown by more
  than ``threshold`` since the last released step (smaller steps are merged into
  the next one), and the curve ends where the released risk set falls to
  ``threshold`` or below. Every released step ratio S(t)/S(t-) is then
  1 - d/n with a released d (0 or >= 10) and a released n.
- **tests**: a log-rank (or Gray's) test releases its statistic, df and p-value;
  observed and expected counts per group are rounded and suppressed by the count
  rule, o - e and the variance are withheld (:meth:`Disclosure.logrank_table`).
- **model estimates** (hazard ratios, mixed-model coefficients) are not counts
  and are released as fitted; the counts that come with a model (participants,
  events, observations) follow the count rule.

``Disclosure(enabled=False)`` (the ``--no-disclosure-control`` option) turns every
rule off and stamps every output ``NOT FOR RELEASE``: a banner in HTML
(:class:`cohort.report.HtmlReport`), a top-level key in JSON
(:meth:`Disclosure.write_json`), a first line in CSV (:meth:`Disclosure.write_csv`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from cohort._missing import ROW_LIST
from cohort.errors import ModelSpecError

__all__ = ["NOT_FOR_RELEASE", "Disclosure", "redact_count", "redact_counts", "redact_text"]

#: The stamp on every output written with disclosure control off.
NOT_FOR_RELEASE = "NOT FOR RELEASE"
#: Why an output carries the stamp (the text of the HTML banner, JSON key and CSV line).
NOT_FOR_RELEASE_TEXT = (f"{NOT_FOR_RELEASE}: written with --no-disclosure-control; small counts "
                        "are shown as they are. Keep it inside the study.")
#: Censoring status of the released event records behind a curve.
_CENSORED = 0


def redact_count(n: int | None, *, threshold: int = 7, rounding: int = 5) -> int | None:
    """Return ``None`` for 1..threshold, else ``n`` rounded to a multiple of ``rounding``.

    Parameters
    ----------
    n : a count (or None).
    threshold : counts from 1 to ``threshold`` are suppressed.
    rounding : other counts are rounded to the nearest multiple of it (half up).

    Examples
    --------
    >>> [redact_count(n) for n in (0, 3, 7, 8, 12, 13, 1003)]
    [0, None, None, 10, 10, 15, 1005]
    """
    if n is None or n == 0:
        return n
    n = int(n)
    if 0 < n <= threshold:
        return None
    return _round_to(n, rounding)


#: A whole number in running text that counts rows or people (a warning, a note).
_COUNT_IN_TEXT = re.compile(
    r"\b(\d+)(?= (?:rows?|participants?|assessments?|events?|sessions?|observations?|values?"
    r"|visits?|records?|people|patients?|subjects?|groups?|clusters?)(?:\(s\))?\b)")


def redact_text(text: str, *, threshold: int = 7, rounding: int = 5) -> str:
    """``text`` with every count of rows or people in it released by :func:`redact_count`.

    A suppressed count reads "a few"; other numbers (years, doses, codes) are left; a list of
    row numbers ("at rows 3, 17") is left out, as its length is a count.

    Examples
    --------
    >>> redact_text("3 row(s) with missing 'route' left out; 131 participants, 2 groups")
    "a few row(s) with missing 'route' left out; 130 participants, a few groups"
    >>> redact_text("'ph.ecog' at row 13 (1 row); 'wt.loss' at rows 2, 16 (14 rows)")
    "'ph.ecog' (a few row); 'wt.loss' (15 rows)"
    """

    def released(m: re.Match[str]) -> str:
        n = redact_count(int(m.group(1)), threshold=threshold, rounding=rounding)
        return "a few" if n is None else str(n)

    return _COUNT_IN_TEXT.sub(released, ROW_LIST.sub("", text))


def _round_to(n: float, rounding: int) -> int:
    """``n`` to the nearest multiple of ``rounding``, halves up (not Python's banker's rounding)."""
    if rounding <= 1:
        return int(round(n))
    return int(rounding * math.floor(n / rounding + 0.5))


def redact_counts(
    df: pl.DataFrame, columns: list[str], *, threshold: int = 7, rounding: int = 5
) -> pl.DataFrame:
    """Apply :func:`redact_count` to the count ``columns`` of ``df`` (as Int64).

    Examples
    --------
    >>> import polars as pl
    >>> redact_counts(pl.DataFrame({"n": [0, 2, 12]}), ["n"])["n"].to_list()
    [0, None, 10]
    """
    return df.with_columns(
        pl.col(c).cast(pl.Float64).round().cast(pl.Int64).map_elements(
            lambda n: redact_count(n, threshold=threshold, rounding=rounding),
            return_dtype=pl.Int64)
        for c in columns
    )


@dataclass(frozen=True)
class Disclosure:
    """The disclosure rules of one run: ``threshold``, ``rounding``, and whether they apply.

    Parameters
    ----------
    threshold : counts from 1 to ``threshold`` are suppressed (default 7).
    rounding : other counts are rounded to a multiple of it (default 5).
    enabled : False for ``--no-disclosure-control``: counts are shown as they are
        and every output is stamped ``NOT FOR RELEASE``.

    Examples
    --------
    >>> d = Disclosure()
    >>> d.count(3), d.count(129), d.percent(12, 129)
    (None, 130, 7.6923...)
    >>> Disclosure(enabled=False).count(3)
    3
    """

    threshold: int = 7
    rounding: int = 5
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.threshold < 0 or self.rounding < 1:
            raise ValueError(f"disclosure: threshold must be >= 0 and rounding >= 1, got "
                             f"threshold={self.threshold}, rounding={self.rounding}")

    # -- counts -----------------------------------------------------------------------------
    def count(self, n: float | None) -> int | None:
        """A count as released: suppressed (None), 0, or rounded."""
        if n is None or (isinstance(n, float) and math.isnan(n)):
            return None
        whole = int(math.floor(n + 0.5))      # a fractional count (expected) half up
        if not self.enabled:
            return whole
        return redact_count(whole, threshold=self.threshold, rounding=self.rounding)

    def counts(self, df: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
        """``df`` with its count ``columns`` released by :meth:`count` (Int64).

        Examples
        --------
        >>> import polars as pl
        >>> Disclosure().counts(pl.DataFrame({"g": ["a", "b"], "n": [5, 131]}), ["n"]).rows()
        [('a', None), ('b', 130)]
        """
        present = [c for c in columns if c in df.columns]
        return df.with_columns(
            pl.col(c).cast(pl.Float64).map_elements(self.count, return_dtype=pl.Int64,
                                                    skip_nulls=True)
            for c in present)

    def text(self, text: str) -> str:
        """``text`` (a warning, a note) with its counts of rows or people released."""
        if not self.enabled:
            return text
        return redact_text(text, threshold=self.threshold, rounding=self.rounding)

    def percent(self, numerator: float | None, denominator: float | None) -> float | None:
        """100 * numerator / denominator of the released counts (None when either is hidden).

        Examples
        --------
        >>> Disclosure().percent(1, 131) is None, Disclosure().percent(40, 131)
        (True, 30.769...)
        """
        k, n = self.count(numerator), self.count(denominator)
        if k is None or not n:
            return None
        return 100.0 * k / n

    def apply(self, summary: Any) -> Any:
        """``summary.redacted(threshold, rounding=...)`` (Table1, follow-up, attrition), or
        ``summary`` itself with disclosure control off."""
        if not self.enabled:
            return summary
        return summary.redacted(self.threshold, rounding=self.rounding)

    # -- rates -------------------------------------------------------------------------------
    def rates(self, pt: pl.DataFrame, *, events: str, person_time: str, by: str,
              reference: str | None, per: float = 1000) -> pl.DataFrame:
        """Incidence rates with exact CIs computed from the released event counts.

        A group whose count is suppressed shows no rate; no rate ratio is shown when
        the reference group's count is suppressed (the ratio would give it back).

        Examples
        --------
        >>> import polars as pl
        >>> pt = pl.DataFrame({"band": ["a", "b"], "events": [3, 42], "py": [100.0, 200.0]})
        >>> Disclosure().rates(pt, events="events", person_time="py", by="band",
        ...                    reference=None).select("band", "events", "rate").rows()
        [('a', None, None), ('b', 40, 200.0)]
        """
        from cohort import survival as sv

        pt = self.counts(pt, [events])
        hidden_groups = pt.filter(pl.col(events).is_null())[by].to_list()
        rates = sv.incidence_rate(pt.with_columns(pl.col(events).fill_null(0)), events=events,
                                  person_time=person_time, by=by, per=per, reference=reference)
        out = rates.summary.rename({"group": by})
        hidden = pl.col(by).is_in(hidden_groups)
        ref_hidden = reference is None or reference in hidden_groups
        ratio_columns = [c for c in ("rate_ratio", "rr_conf_low", "rr_conf_high", "p_value")
                         if c in out.columns]
        out = out.with_columns(pl.col("events").cast(pl.Int64))
        return out.with_columns(
            [pl.when(hidden).then(None).otherwise(pl.col(c)).alias(c)
             for c in ("events", "rate", "conf_low", "conf_high") if c in out.columns]
            + [pl.when(hidden | pl.lit(ref_hidden)).then(None).otherwise(pl.col(c)).alias(c)
               for c in ratio_columns])

    # -- tests -------------------------------------------------------------------------------
    def logrank_table(self, lr: Any) -> pl.DataFrame:
        """Per group of a log-rank test: n, observed, expected as released counts.

        ``o_minus_e`` and the variance are withheld: with the exact expected counts
        they would undo the rounding of the observed ones.
        """
        s = lr.summary
        return self.counts(s.select("group", "n", "observed", "expected"),
                           ["n", "observed", "expected"])

    # -- curves ------------------------------------------------------------------------------
    def kaplan_meier(self, df: pl.DataFrame, *, time: str, event: str, by: str | None = None,
                     grid: float) -> Any:
        """Kaplan-Meier curves computed from released counts (see the module docstring).

        Parameters
        ----------
        df : one row per participant.
        time, event : follow-up time and its 0/1 event column.
        by : optional grouping column (a group whose size is suppressed has no curve).
        grid : width of the time grid (in the unit of ``time``); times are rounded up to it.

        Returns
        -------
        cohort.survival.KaplanMeier
            Its ``summary`` is the released table (what the plot draws); with
            disclosure control off, the fit of the data as they are.

        Examples
        --------
        >>> import polars as pl
        >>> df = pl.DataFrame({"t": [i / 10 for i in range(1, 131)], "e": [1] + [0] * 129})
        >>> km = Disclosure().kaplan_meier(df, time="t", event="e", grid=1.0)
        >>> int(km.summary["n_event"].sum()), km.summary["n_risk"][0]   # the event merged away
        (0, 130)
        >>> sorted(set(km.summary["survival"].to_list()))
        [1.0]
        """
        from cohort import survival as sv

        if not self.enabled:
            return sv.kaplan_meier(df, time=time, event=event, by=by)
        records = self.released_records(df, time=time, status=event, by=by, grid=grid)
        fit = sv.kaplan_meier(records, time="time", event="status",
                              by=None if by is None else "group")
        keep = {g: (fit._group(g)["n_risk"] > self.threshold).to_numpy() for g in fit.groups}
        summary = pl.concat([fit._group(g).filter(pl.Series(keep[g])) for g in fit.groups])
        summary = self.counts(summary, ["n_risk", "n_event", "n_censor"])
        return replace(fit, summary=summary,
                       _se_log={g: se[keep[g]] for g, se in fit._se_log.items()})

    def cumulative_incidence(self, df: pl.DataFrame, *, time: str, event: str, cause: Any,
                             by: str | None = None, grid: float) -> Any:
        """Aalen-Johansen cumulative incidence computed from released counts.

        ``event`` holds 0 for censored and a code per cause; every cause's events and
        the censorings are released by the rule of the module docstring, and the curve
        of ``cause`` is fitted to them (competing causes included). Gray's test is that
        of the data as they are (statistic, df and p-value only).

        Examples
        --------
        >>> import polars as pl
        >>> df = pl.DataFrame({"t": [i / 10 for i in range(1, 132)],
        ...                    "cause": [1] + [2] * 20 + [0] * 110})
        >>> ci = Disclosure().cumulative_incidence(df, time="t", event="cause", cause=1, grid=1.0)
        >>> float(ci.summary["estimate"].max())    # not 1/131
        0.0
        """
        from cohort import survival as sv

        raw = sv.cumulative_incidence(df, time=time, event=event, cause=cause, by=by)
        if not self.enabled:
            return raw
        records = self.released_records(df, time=time, status=event, by=by, grid=grid)
        if not (records["status"] == cause).any():
            summary = records.group_by("group").agg(time=pl.col("time").max()).with_columns(
                n_risk=pl.lit(None, pl.Int64), n_event=pl.lit(0, pl.Int64),
                n_competing=pl.lit(None, pl.Int64), estimate=pl.lit(0.0),
                std_error=pl.lit(0.0), conf_low=pl.lit(0.0), conf_high=pl.lit(0.0)).sort("group")
            return replace(raw, summary=summary, groups=tuple(summary["group"].to_list()))
        fit = sv.cumulative_incidence(records, time="time", event="status", cause=cause,
                                      by=None if by is None else "group")
        summary = self.counts(fit.summary.filter(pl.col("n_risk") > self.threshold),
                              ["n_risk", "n_event", "n_competing"])
        return replace(fit, summary=summary, tests=raw.tests)

    def released_records(self, df: pl.DataFrame, *, time: str, status: str,
                         by: str | None, grid: float) -> pl.DataFrame:
        """One record per released participant: group, time (on the grid), status.

        Per group, the group size is released by :meth:`count`; times are rounded up
        to ``grid``; for each status (0 = censored, each cause) the cumulative count
        over the grid is rounded and moves only by more than ``threshold`` (smaller
        steps wait for the next one); whoever is left is censored at the last time.

        Examples
        --------
        >>> import polars as pl
        >>> df = pl.DataFrame({"t": [1.0] * 12 + [2.0] * 3 + [3.0] * 10, "s": [1] * 25})
        >>> r = Disclosure().released_records(df, time="t", status="s", by=None, grid=1.0)
        >>> r.group_by("time", "status").len().sort("time").rows()
        [(1.0, 1, 10), (3.0, 1, 15)]
        """
        if grid <= 0:
            raise ValueError(f"disclosure: the time grid must be > 0, got {grid}")
        frame = df.select(
            _time=(pl.col(time).cast(pl.Float64) / grid).ceil() * grid,
            _status=pl.col(status).cast(pl.Int64),
            _group=pl.lit("all") if by is None else pl.col(by).cast(pl.String),
        ).drop_nulls()
        parts = [self._group_records(frame.filter(pl.col("_group") == g), g)
                 for g in sorted(frame["_group"].unique().to_list())]
        schema = {"group": pl.String, "time": pl.Float64, "status": pl.Int64}
        records = pl.DataFrame([r for p in parts for r in p], schema=schema, orient="row")
        if records.height == 0:
            raise ModelSpecError(
                f"disclosure: no curve can be released: every group has {self.threshold} or "
                "fewer participants; combine groups or report without the curve")
        return records

    def _group_records(self, frame: pl.DataFrame, group: str) -> list[tuple[str, float, int]]:
        size = self.count(frame.height) or 0
        if size == 0:
            return []
        times = np.sort(frame["_time"].unique().to_numpy())
        statuses = sorted(frame["_status"].unique().to_list(), key=lambda s: (s == _CENSORED, s))
        records: list[tuple[str, float, int]] = []
        left = size
        for s in statuses:
            per_time = (frame.filter(pl.col("_status") == s).group_by("_time").len()
                        .rename({"len": "n"}))
            raw = dict(zip(per_time["_time"].to_list(), per_time["n"].to_list(), strict=True))
            cumulative = np.cumsum([raw.get(t, 0) for t in times])
            released = self._released_cumulative(cumulative, cap=left)
            steps = np.diff(np.concatenate([[0], released]))
            records += [(group, float(t), s) for t, k in zip(times, steps, strict=True)
                        for _ in range(int(k))]
            left -= int(released[-1]) if released.size else 0
        records += [(group, float(times[-1]), _CENSORED)] * left
        return records

    def _released_cumulative(self, cumulative: np.ndarray, *, cap: int) -> np.ndarray:
        """Rounded cumulative counts that move by more than ``threshold`` or not at all."""
        out, last = [], 0
        for c in cumulative:
            rounded = min(_round_to(float(c), self.rounding), cap)
            if rounded - last > self.threshold:
                last = rounded
            out.append(last)
        return np.asarray(out, dtype=np.int64)

    # -- writing -----------------------------------------------------------------------------
    @property
    def settings(self) -> dict[str, Any]:
        """The rules as they go in every JSON output."""
        return {"threshold": self.threshold, "rounding": self.rounding, "enabled": self.enabled}

    def stamped(self, results: dict[str, Any]) -> dict[str, Any]:
        """``results`` with ``disclosure`` settings and, with control off, a first
        ``not_for_release`` key."""
        stamp = {} if self.enabled else {"not_for_release": NOT_FOR_RELEASE_TEXT}
        return {**stamp, **results, "disclosure": self.settings}

    def write_json(self, results: dict[str, Any], path: str | Path) -> Path:
        """Write ``results`` as JSON (stamped, see :meth:`stamped`; NaN written as null)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(_finite(self.stamped(results)), indent=2, default=str)
        path.write_text(text, encoding="utf-8")
        return path

    def write_csv(self, df: pl.DataFrame, path: str | Path) -> Path:
        """Write ``df`` as CSV; with control off its first line is the NOT FOR RELEASE stamp."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = df.write_csv()
        head = "" if self.enabled else f"# {NOT_FOR_RELEASE_TEXT}\n"
        path.write_text(head + body, encoding="utf-8")
        return path

    def note(self) -> str:
        """The sentence a report shows about its disclosure control."""
        if not self.enabled:
            return NOT_FOR_RELEASE_TEXT
        return (f"Counts from 1 to {self.threshold} are suppressed (empty or [REDACTED]) and "
                f"other counts rounded to {self.rounding}; percentages, rates and curves are "
                "computed from the released counts (curves on a coarsened time grid, small "
                "steps merged into the next).")


def _finite(value: Any) -> Any:
    """NaN and infinities as None, recursively (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
