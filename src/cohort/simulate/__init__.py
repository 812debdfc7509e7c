"""Synthetic multi-site cohort of ketamine therapy with known truth (the demo data).

:func:`simulate` returns the canonical tables (``cohort.tables``) of a
simulated long-term follow-up together with the true parameters that
generated it (:class:`Truth`); :meth:`SimulatedCohort.write_site_files`
writes what each site would upload, in its own format and names, optionally
with seeded defects; :func:`simulate_to_parquet` streams huge cohorts to
Parquet in bounded memory.

The story (every number is a field of :class:`Truth`):

- 3 sites (oslo/OSL, lyon/LYN, leeds/LDS) enrol adults (18-75) uniformly over
  the first two years (at most 40 % of the follow-up window); day 0 is
  ``enrolled_on`` and the first session. Each participant has one treatment:
  IV racemic ketamine (about 0.5 mg/kg, escalating at a participant-specific
  rate, 30 % flat, capped at 0.98 mg/kg) or intranasal esketamine (28/56/84 mg,
  stepping up 28 -> 56 -> 84 mg for 60 %); the mix depends on the site.
  Sessions: twice weekly for 4 weeks, then every 7/14/21/28 days (fixed per
  participant, +-1 day) until exit. Weight drifts a little.
- MADRS every 28 (+-3) days: high at baseline, remitted (<= 10) after the
  induction, >= 22 during relapse episodes. A relapse is recorded in
  ``events`` on its onset day, with MADRS >= 22 on that day and on a
  confirmation visit 5-15 days later (regular visits near it are skipped), so
  the DESIGN.md definition finds the same onset. A ``remission`` event is
  recorded at each visit with MADRS <= 10 that follows a visit above 10.
  Hospitalisation (term "depression") and suicide attempts happen only
  within relapse episodes, on or after the onset.
- MoCA and DSST on day 0 and every 182 (+-7) days (8 % of follow-up visits
  missed at random) follow linear mixed models in years since enrolment and
  cumulative dose (g, sessions strictly before).
- Harms: ketamine use disorder (at most once), non-prescribed use (Poisson),
  adverse events "dissociation" and "hypertension" on session days,
  "cystitis" with a rate rising with cumulative dose (at most one adverse
  event per session interval).
- Exits: death, withdrawal and loss to follow-up at constant rates,
  independent of everything else; the others exit as "completed" at the
  administrative end. No record falls on or after a participant's exit date
  (except seeded defects in site files).

Generation runs in chunks of ``CHUNK_SIZE`` participants, each with its own
random stream derived from ``seed`` and the chunk number, so the result is the
same on any machine and with any number of threads.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

import numpy as np
import polars as pl

from cohort.errors import ModelSpecError
from cohort.simulate._generate import Config, generate_chunk
from cohort.simulate._sites import SiteFile, SiteFiles, write_site_files
from cohort.simulate._truth import DEFAULT_TRUTH, SITES, Site, Truth

__all__ = [
    "simulate",
    "simulate_to_parquet",
    "iter_chunks",
    "SimulatedCohort",
    "SiteFiles",
    "SiteFile",
    "Truth",
    "Site",
    "SITES",
    "CHUNK_SIZE",
    "TABLE_NAMES",
]

#: Participants per generated chunk (fixed: results do not depend on the machine).
CHUNK_SIZE = 10_000
TABLE_NAMES = ("participants", "treatment_sessions", "assessments", "events", "exits")
_EPOCH = _dt.date(1970, 1, 1)
_T = TypeVar("_T")


@dataclass(frozen=True)
class SimulatedCohort:
    """A simulated cohort: canonical ``tables``, the ``truth`` behind them and the arguments.

    Attributes
    ----------
    tables : Mapping[str, polars.DataFrame]
        participants, treatment_sessions, assessments, events, exits, with the
        columns and types of :data:`cohort.tables.TABLES`.
    truth : Truth
        The true parameters (see :class:`Truth`; ``truth.to_dict()`` for JSON).
    """

    tables: Mapping[str, pl.DataFrame]
    truth: Truth
    n_participants: int
    seed: int
    start: _dt.date
    admin_end: _dt.date
    n_sites: int
    info: Mapping[str, object] = field(default_factory=dict)

    def write_site_files(self, out_dir: str | os.PathLike[str], *, defects: bool = False) -> SiteFiles:
        """Write each site's upload files (its own names and format) and its mapping spec.

        See :func:`cohort.simulate._sites.write_site_files` for the layout and the
        defect manifest (``SiteFiles.defects``) conventions.

        Examples
        --------
        >>> import tempfile
        >>> sim = simulate(60, seed=3)
        >>> files = sim.write_site_files(tempfile.mkdtemp(), defects=True)
        >>> sorted({f.site_id for f in files.files})
        ['LDS', 'LYN', 'OSL']
        """
        return write_site_files(self, Path(out_dir), defects=defects)


def _config(n: int, years: float, n_sites: int, start: _dt.date, admin_end: _dt.date | None,
            ) -> tuple[Config, _dt.date]:
    if not isinstance(n, int | np.integer) or n < 1:
        raise ModelSpecError(f"n_participants must be a positive integer, got {n!r}")
    if not 1 <= n_sites <= len(SITES):
        raise ModelSpecError(f"n_sites must be between 1 and {len(SITES)}, got {n_sites!r}")
    if admin_end is None:
        if not (isinstance(years, int | float) and math.isfinite(years) and years > 0):
            raise ModelSpecError(f"years must be a positive number, got {years!r}")
        admin_end = start + _dt.timedelta(days=round(years * 365.25))
    total = (admin_end - start).days
    if total < 60:
        raise ModelSpecError(
            f"follow-up window {start} .. {admin_end} is {total} days; give at least 60 days "
            "(years >= 0.17 or a later admin_end)")
    window = min(DEFAULT_TRUTH.participants["enrolment_window_days"], int(0.4 * total))
    start_day = (start - _EPOCH).days
    cfg = Config(start_day=start_day, admin_end_day=start_day + total, enrol_window=window,
                 n_sites=int(n_sites), id_width=max(6, len(str(int(n)))))
    return cfg, admin_end


def _chunk_rng(seed: int, chunk: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(chunk,))))


def iter_chunks(
    n_participants: int,
    *,
    years: float = 5.0,
    n_sites: int = 3,
    seed: int = 1,
    start: _dt.date = _dt.date(2019, 1, 1),
    admin_end: _dt.date | None = None,
    threads: int | None = None,
) -> Iterator[dict[str, pl.DataFrame]]:
    """Yield the canonical tables chunk by chunk (``CHUNK_SIZE`` participants each), in order.

    Chunks are generated by up to ``threads`` worker threads (default: the
    number of CPUs, at most 2 chunks in flight per thread) and yielded in chunk
    order, so memory stays bounded whatever ``n_participants``.

    Examples
    --------
    >>> sum(c["participants"].height for c in iter_chunks(25_000, seed=2))
    25000
    """
    yield from _run_chunks(n_participants, years=years, n_sites=n_sites, seed=seed, start=start,
                           admin_end=admin_end, threads=threads, then=lambda c, tables: tables)


def _run_chunks(
    n_participants: int, *, years: float, n_sites: int, seed: int, start: _dt.date,
    admin_end: _dt.date | None, threads: int | None,
    then: Callable[[int, dict[str, pl.DataFrame]], _T],
) -> Iterator[_T]:
    """Generate chunk ``c`` and apply ``then(c, tables)`` in worker threads; yield in chunk order."""
    cfg, _ = _config(n_participants, years, n_sites, start, admin_end)
    n_chunks = -(-int(n_participants) // CHUNK_SIZE)
    threads = max(1, threads or os.cpu_count() or 1)

    def one(c: int) -> _T:
        lo = c * CHUNK_SIZE
        size = min(CHUNK_SIZE, int(n_participants) - lo)
        return then(c, generate_chunk(_chunk_rng(seed, c), size, lo, cfg, DEFAULT_TRUTH))

    if threads == 1 or n_chunks == 1:
        for c in range(n_chunks):
            yield one(c)
        return
    with ThreadPoolExecutor(threads) as pool:
        pending = []
        nxt = 0
        while nxt < n_chunks and len(pending) < 2 * threads:
            pending.append(pool.submit(one, nxt))
            nxt += 1
        while pending:
            out = pending.pop(0).result()
            if nxt < n_chunks:
                pending.append(pool.submit(one, nxt))
                nxt += 1
            yield out


def simulate(
    n_participants: int = 2000,
    *,
    years: float = 5.0,
    n_sites: int = 3,
    seed: int = 1,
    start: _dt.date = _dt.date(2019, 1, 1),
    admin_end: _dt.date | None = None,
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SimulatedCohort:
    """Simulate a multi-site long-term follow-up of ketamine therapy with known truth.

    Parameters
    ----------
    n_participants : int
        Number of participants (all sites together).
    years : float
        Length of the study window from ``start`` to the administrative end
        (ignored when ``admin_end`` is given). Enrolment runs over the first
        two years (at most 40 % of the window).
    n_sites : int
        1 to 3: the first sites of oslo (OSL), lyon (LYN), leeds (LDS).
    seed : int
        Seed; identical arguments give identical frames on any machine.
    start, admin_end : datetime.date
        First possible enrolment and administrative end of follow-up
        (default ``start + years``).
    threads : int, optional
        Worker threads (default: CPU count); does not change the result.
    progress : callable, optional
        Called as ``progress(participants_done, n_participants)`` after each chunk
        (e.g. to advance a rich progress bar).

    Returns
    -------
    SimulatedCohort
        ``.tables`` (canonical polars frames), ``.truth`` (:class:`Truth`, every
        true parameter: relapse log hazard ratios and Weibull baseline,
        cognition fixed effects, random-effect SDs and correlation, residual
        SDs, harm and exit rates, dosing rules), ``.write_site_files()``.

    Examples
    --------
    >>> sim = simulate(200, seed=7)
    >>> sim.tables["participants"].height
    200
    >>> sim.truth["relapse_log_hr"]["trd"]
    0.4
    """
    cfg, admin_end = _config(n_participants, years, n_sites, start, admin_end)
    parts: dict[str, list[pl.DataFrame]] = {t: [] for t in TABLE_NAMES}
    for chunk in iter_chunks(n_participants, years=years, n_sites=n_sites, seed=seed, start=start,
                             admin_end=admin_end, threads=threads):
        for t in TABLE_NAMES:
            parts[t].append(chunk[t])
        if progress is not None:
            progress(sum(p.height for p in parts["participants"]), int(n_participants))
    tables = {t: pl.concat(parts[t], rechunk=len(parts[t]) > 1 and n_participants <= 200_000)
              for t in TABLE_NAMES}
    return SimulatedCohort(
        tables=MappingProxyType(tables), truth=DEFAULT_TRUTH, n_participants=int(n_participants),
        seed=int(seed), start=start, admin_end=admin_end, n_sites=int(n_sites),
        info=MappingProxyType({"enrolment_window_days": cfg.enrol_window}))


def simulate_to_parquet(
    out_dir: str | os.PathLike[str],
    *,
    n_participants: int,
    years: float = 5.0,
    n_sites: int = 3,
    seed: int = 1,
    start: _dt.date = _dt.date(2019, 1, 1),
    admin_end: _dt.date | None = None,
    threads: int | None = None,
    compression: str = "zstd",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Path]:
    """Stream a (huge) canonical cohort to Parquet, one folder per table, one file per chunk.

    Memory stays bounded (a few chunks in flight; about 0.8 GB at 2 threads).
    ``progress(participants_done, n_participants)`` is called after each chunk.
    The same arguments give the
    same rows as :func:`simulate`. Read back with
    ``pl.scan_parquet(out_dir / "assessments" / "*.parquet")``.

    Returns
    -------
    dict
        Table name -> folder holding ``part-00000.parquet`` ...

    Examples
    --------
    >>> import tempfile
    >>> dirs = simulate_to_parquet(tempfile.mkdtemp(), n_participants=500, seed=1)
    >>> pl.scan_parquet(dirs["exits"] / "*.parquet").select(pl.len()).collect().item()
    500
    """
    out = Path(out_dir)
    dirs = {t: out / t for t in TABLE_NAMES}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
        for old in d.glob("part-*.parquet"):
            old.unlink()

    def write(c: int, tables: dict[str, pl.DataFrame]) -> int:
        for t in TABLE_NAMES:
            tables[t].write_parquet(dirs[t] / f"part-{c:05d}.parquet", compression=compression)
        return tables["participants"].height

    done = 0
    for size in _run_chunks(n_participants, years=years, n_sites=n_sites, seed=seed, start=start,
                            admin_end=admin_end, threads=threads, then=write):
        done += size
        if progress is not None:
            progress(done, int(n_participants))
    return dirs
