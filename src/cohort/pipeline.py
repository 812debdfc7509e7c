"""The main job (`cohort demo`): simulate -> load -> validate -> derive -> fit -> report.

Every stage is real: site files on disk in each site's own format, a DuckDB
study file, Great Expectations validation, SQL derivations, model fits, and a
self-contained HTML report with a JSON of all results beside it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
from rich.console import Console
from rich.markup import escape

import cohort
from cohort.describe import table1
from cohort.report import Disclosure, HtmlReport
from cohort.tables import LOAD_ORDER

__all__ = ["DemoResult", "run_demo", "LOAD_ORDER", "COX_TERMS"]

#: Cox covariates of the demo, as the simulator's truth names them.
COX_TERMS = ("age_per_10y", "male", "trd", "route_iv", "prior_episodes",
             "concomitant_antidepressant")
T = TypeVar("T")
#: Released curves of the demo are computed on this time grid (years): a month.
GRID_YEARS = 1 / 12
#: Count columns of the uploads table.
LOAD_COUNTS = ("rows_read", "rows_loaded", "rows_quarantined", "rows_warned")


@dataclass(frozen=True)
class DemoResult:
    """Where the demo put its outputs, its time per stage and its key estimates."""

    out: Path
    database: Path
    report: Path
    results_json: Path
    stage_seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    loads: pl.DataFrame | None = None
    cox: pl.DataFrame | None = None
    lmm: pl.DataFrame | None = None

    def summary_text(self) -> str:
        lines = [f"Study database: {self.database}", f"Report:         {self.report}",
                 f"Results (JSON): {self.results_json}", "Time per stage:"]
        lines += [f"  {k:<12} {v:7.2f} s" for k, v in self.stage_seconds.items()]
        lines.append("Rows in force: " + ", ".join(f"{k} {v}" for k, v in self.counts.items()))
        if self.cox is not None:
            lines.append("Cox model of relapse (hazard ratios):")
            for row in self.cox.iter_rows(named=True):
                lines.append(f"  {row['term']:<28} HR {row['hazard_ratio']:.3f} "
                             f"[{row['conf_low']:.3f}, {row['conf_high']:.3f}]  "
                             f"true {row['true_hr']:.3f}")
        if self.lmm is not None:
            lines.append("Mixed model of MoCA:")
            for row in self.lmm.iter_rows(named=True):
                lines.append(f"  {row['term']:<28} {row['estimate']:8.4f} "
                             f"[{row['conf_low']:.4f}, {row['conf_high']:.4f}]  "
                             f"true {row['true_value'] if row['true_value'] is not None else '-'}")
        return "\n".join(lines)


class _Stages:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, what: str) -> Iterator[Callable[[str], None]]:
        """Time a stage; the context gives a function to report progress within it."""
        started = time.perf_counter()
        with self.console.status(f"[bold]{name}[/]: {what} ...") as status:
            yield lambda detail: status.update(f"[bold]{name}[/]: {what}: {escape(detail)}")
        self.seconds[name] = time.perf_counter() - started
        self.console.print(f"[green]done[/] {name:<10} {what} ({self.seconds[name]:.2f} s)",
                           highlight=False)


def _load_sites(study: cohort.Study, site_files: Any,
                report: Callable[[str], None]) -> pl.DataFrame:
    rows = []
    for table in LOAD_ORDER:
        for site_id, folder in site_files.site_dirs.items():
            for r in study.load(folder, table=table, mapping=site_files.specs[site_id],
                                progress=report):
                rows.append({"site": site_id, **r.to_dict()})
    return pl.DataFrame(rows)


def _cox_frame(tte: pl.DataFrame) -> pl.DataFrame:
    return tte.filter(pl.col("time_days") > 0).with_columns(
        age_per_10y=(pl.col("age_at_origin") - 45) / 10,
        male=(pl.col("sex") == "male").cast(pl.Int8),
        trd=(pl.col("diagnosis") == "TRD").cast(pl.Int8),
        route_iv=(pl.col("route") == "iv").cast(pl.Int8),
        prior_episodes=pl.col("prior_episodes") - 2,
        concomitant_antidepressant=pl.col("concomitant_antidepressant").cast(pl.Int8),
    )


def _timed(stages: _Stages, name: str, what: str, fn: Callable[[Callable[[str], None]], T]) -> T:
    with stages.stage(name, what) as report:
        return fn(report)


def run_demo(*, n_participants: int = 2000, out: Path = Path("out/demo"), seed: int = 2024,
             years: float = 5.0, console: Console | None = None,
             disclosure: Disclosure | None = None) -> DemoResult:
    """Run the whole pipeline on a simulated cohort; everything lands in ``out``.

    ``report.html``, ``results.json`` and ``km_relapse.csv`` pass ``disclosure``
    (default: :class:`~cohort.report.Disclosure`, counts 1-7 suppressed, others rounded
    to 5, curves from released counts); ``Disclosure(enabled=False)`` stamps them NOT FOR
    RELEASE. ``study.duckdb``, ``sites/`` and ``validation/`` hold row-level data and
    stay inside the study.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from rich.console import Console
    >>> r = run_demo(n_participants=300, out=pathlib.Path(tempfile.mkdtemp()),
    ...              console=Console(quiet=True))
    >>> r.report.exists() and r.results_json.exists()
    True
    """
    from cohort import longitudinal as lg
    from cohort import survival as sv
    from cohort.simulate import simulate

    console = console or Console()
    release = disclosure or Disclosure()
    stages = _Stages(console)
    out = Path(out)
    if out.exists():
        for name in ("study.duckdb", "study.duckdb.wal", "sites", "validation"):
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    out.mkdir(parents=True, exist_ok=True)
    db_path = out / "study.duckdb"

    sim = _timed(stages, "simulate", f"{n_participants} participants over {years:g} years",
                 lambda report: simulate(n_participants, years=years, seed=seed,
                                         progress=lambda done, total: report(f"{done:,}/{total:,}")))
    site_files = _timed(stages, "site files", "per-site CSV, Excel and Parquet with defects",
                        lambda report: sim.write_site_files(out / "sites", defects=True))
    with cohort.open(db_path, create=True) as study:
        loads = _timed(stages, "load", "stage, coerce, validate and promote every file",
                       lambda report: _load_sites(study, site_files, report))
        reports = _timed(stages, "validate", "Great Expectations suites on the loaded study",
                         lambda report: study.validate())
        with stages.stage("report GX", "Data Docs and JSON per table"):
            for name, rep in reports.items():
                rep.write_json(out / "validation" / f"{name}.json")
                rep.write_data_docs(out / "validation" / f"data_docs_{name}")
        tte, traj = _timed(stages, "derive", "time to first relapse, cognition trajectories",
                           lambda report: (study.derive("time_to_event", event_type="relapse"),
                                           study.derive("trajectories", instruments=["MoCA"])))
        counts = study.counts()

    def fit(report: Callable[[str], None]) -> tuple[Any, Any, Any]:
        km = release.kaplan_meier(tte.filter(pl.col("time_days") > 0), time="time_years",
                                  event="event", by="route", grid=GRID_YEARS)
        cox = sv.cox(_cox_frame(tte), " + ".join(COX_TERMS), time="time_years", event="event")
        lmm = lg.lmm(traj, "score ~ years + cumulative_dose_g", groups="participant_id",
                     random="~years", reml=True)
        return km, cox, lmm

    km, cox, lmm = _timed(stages, "fit", "Kaplan-Meier by route, Cox, mixed model of MoCA", fit)

    truth = sim.truth
    cox_table = cox.summary.with_columns(
        true_log_hr=pl.col("term").replace_strict(dict(truth["relapse_log_hr"]), default=None),
    ).with_columns(true_hr=pl.col("true_log_hr").exp()).with_columns(
        # the Cox summary gives the 95% CI of the hazard ratio
        covers_truth=(pl.col("conf_low") <= pl.col("true_hr"))
        & (pl.col("true_hr") <= pl.col("conf_high")),
    )
    moca = truth["moca"]
    true_fixed = {"(Intercept)": None, "years": moca["b_years"], "cumulative_dose_g": moca["b_cum"]}
    lmm_table = lmm.summary.with_columns(
        true_value=pl.col("term").replace_strict(true_fixed, default=None, return_dtype=pl.Float64)
    )

    with stages.stage("report", "HTML report and JSON"):
        report_path, json_path = _write_report(
            out, n_participants=n_participants, seed=seed, loads=loads, counts=counts, km=km,
            cox=cox, cox_table=cox_table, lmm=lmm, lmm_table=lmm_table,
            reports=reports, tte=tte, truth=truth, stage_seconds=stages.seconds,
            release=release)
    return DemoResult(out=out, database=db_path, report=report_path, results_json=json_path,
                      stage_seconds=dict(stages.seconds), counts=counts, loads=loads,
                      cox=cox_table, lmm=lmm_table)


def _write_report(out: Path, *, n_participants: int, seed: int, loads: pl.DataFrame,
                  counts: dict[str, int], km: Any, cox: Any, cox_table: pl.DataFrame, lmm: Any,
                  lmm_table: pl.DataFrame, reports: dict[str, Any],
                  tte: pl.DataFrame, truth: Any, stage_seconds: dict[str, float],
                  release: Disclosure) -> tuple[Path, Path]:
    (out / "validation" / "NOT_FOR_RELEASE.txt").write_text(
        "Validation results hold row-level findings (values of quarantined and flagged rows):\n"
        "they are for the study's data managers and must not leave the study. The released\n"
        "summary is in ../results.json and ../report.html.\n", encoding="utf-8")
    r = HtmlReport("cohort demo: long-term follow-up after ketamine therapy (synthetic)",
                   not_for_release=not release.enabled)
    r.text(f"A simulated cohort of {n_participants} participants (seed {seed}) from three sites, "
           "loaded from each site's own files, validated, derived in SQL and analysed. "
           + release.note())
    uploads = release.counts(loads.select("site", "table", "status", *LOAD_COUNTS),
                             list(LOAD_COUNTS))
    validation = {name: _released_validation(rep, release) for name, rep in reports.items()}
    released_counts = {k: release.count(v) for k, v in counts.items()}
    r.heading("Uploads")
    r.table(uploads)
    r.heading("Validation of the loaded study")
    for name, rep in validation.items():
        r.text(f"{name}: {rep['status']}")
        if rep["summary"]:
            r.table(pl.DataFrame(rep["summary"]))
    r.heading("Participants by route (Table 1)")
    table_one = table1(tte, by="route", variables=["age_at_origin", "sex", "diagnosis",
                                                    "prior_episodes", "concomitant_antidepressant",
                                                    "baseline_weight_kg", "site_id"],
                       categorical=["sex", "diagnosis", "concomitant_antidepressant", "site_id"],
                       nonnormal=["prior_episodes"])
    table_one = release.apply(table_one)
    r.table(table_one.summary, max_rows=80)
    r.heading("Time to first relapse")
    r.text(f"{release.count(tte.height) or 'A few'} participants, "
           f"{release.count(int(tte['event'].sum())) or 'a few'} first relapses; time from the "
           "first session, censored at exit, death or the end of the study.", note=True)
    r.figure(km.plot(at_risk=False),
             "Kaplan-Meier estimate of relapse-free survival by route, with 95% CIs "
             "(drawn from the released table, km_relapse.csv)")
    r.text("Numbers at risk (suppressed and rounded as above):", note=True)
    at_risk = _at_risk(tte, years=range(6), release=release)
    r.table(at_risk)
    r.table(km.median())
    r.heading("Cox model of relapse (Efron ties)")
    r.table(cox_table.select("term", "estimate", "std_error", "hazard_ratio", "conf_low",
                             "conf_high", "p_value", "true_hr", "covers_truth"))
    r.text(f"Concordance {cox.concordance:.3f}; log-likelihood {cox.loglik:.2f} "
           f"(null {cox.loglik_null:.2f}); engine {getattr(cox, 'engine', 'n/a')}.", note=True)
    r.heading("Cognition: MoCA over years since the first dose")
    r.table(lmm_table)
    r.table(lmm.variance_components)
    from cohort.longitudinal.plots import spaghetti

    r.figure(spaghetti(lmm, time="years"),
             "MoCA trajectories of a sample of participants with the fitted mean and its 95% CI")
    r.heading("Run")
    r.table(pl.DataFrame({"stage": list(stage_seconds), "seconds": list(stage_seconds.values())}))
    report_path = r.write(out / "report.html")
    release.write_csv(km.summary, out / "km_relapse.csv")
    results = {
        "n_participants": n_participants, "seed": seed, "counts": released_counts,
        "stage_seconds": stage_seconds, "uploads": uploads.to_dicts(),
        "validation": validation, "table1": table_one.to_dict(),
        "kaplan_meier": {**km.to_dict(), "grid_years": GRID_YEARS,
                         "at_risk": at_risk.to_dicts()},
        "cox": _released_model(cox.to_dict(), release, ("n", "n_events", "n_clusters")),
        "lmm": _released_model(lmm.to_dict(), release, ("nobs", "ngroups")),
        "truth": truth.to_dict() if hasattr(truth, "to_dict") else dict(truth),
    }
    json_path = release.write_json(results, out / "results.json")
    return report_path, json_path


def _at_risk(tte: pl.DataFrame, *, years: range, release: Disclosure) -> pl.DataFrame:
    """Participants still followed at each whole year, by route, with disclosure control."""
    at = tte.filter(pl.col("time_days") > 0).group_by("route").agg(
        [(pl.col("time_years") >= y).sum().alias(f"year {y}") for y in years]).sort("route")
    return release.counts(at, [f"year {y}" for y in years])


def _released_model(fit: dict[str, Any], release: Disclosure,
                    count_keys: tuple[str, ...]) -> dict[str, Any]:
    """A model's JSON with the counts that come with it (subjects, events) released."""
    return {**fit, **{k: release.count(fit[k]) for k in count_keys if k in fit},
            "warnings": [release.text(w) for w in fit.get("warnings", [])]}


def _released_validation(rep: Any, release: Disclosure) -> dict[str, Any]:
    """What leaves the study of a validation report: its status and counts, released.

    Row-level findings (values of rows) and examples stay in validation/ inside the study.
    """
    summary = rep.summary.drop([c for c in ("examples",) if c in rep.summary.columns])
    count_columns = [c for c, dtype in summary.schema.items()
                     if dtype.is_integer() and c not in ("batch_id",)]
    return {"table": rep.table, "status": rep.status, "n_rows": release.count(rep.n_rows),
            "n_findings": release.count(rep.findings.height),
            "summary": release.counts(summary, count_columns).to_dicts()}
