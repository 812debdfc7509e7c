"""Cox regression: our exact NumPy engine against lifelines on the same data, in the same run.

Cases (full run): Efron ties, 5 covariates, 100,000 and 1,000,000 subjects
(times in days, so many ties); time-varying Cox on 1,000,000 (start, stop]
intervals (continuous times: lifelines' CoxTimeVaryingFitter does not handle
ties); the Andersen-Gill model with cluster-robust SEs on 1,000,000 intervals
(lifelines has no robust time-varying fit: its plain CoxTimeVaryingFitter is
the baseline).

With COHORT_BENCH_R=1 and Rscript on the PATH, R's coxph is timed on the same
data too (r_coxph_s; R is not part of CI, so it is only reported).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl

BETA = np.array([0.5, -0.3, 0.2, 0.1, -0.1])
COVS = [f"x{i}" for i in range(5)]

R_SCRIPT = r"""
suppressPackageStartupMessages({library(survival); library(data.table)})
args <- commandArgs(TRUE)
d <- fread(args[1])
f <- switch(args[2],
  tv = Surv(start, stop, event) ~ x0 + x1 + x2 + x3 + x4 + cluster(id),
  tvplain = Surv(start, stop, event) ~ x0 + x1 + x2 + x3 + x4,
  Surv(time, event) ~ x0 + x1 + x2 + x3 + x4)
best <- Inf
for (i in 1:as.integer(args[3])) {
  t0 <- proc.time()[["elapsed"]]
  fit <- coxph(f, data = d, ties = "efron")
  best <- min(best, proc.time()[["elapsed"]] - t0)
}
cat(best, paste(coef(fit), collapse = " "), "\n")
"""


def _subjects(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    t = rng.exponential(365 / np.exp(X @ BETA))
    c = rng.uniform(30, 3 * 365, size=n)
    time_ = np.ceil(np.minimum(t, c))  # whole days: tied event times, as in registry data
    return pl.DataFrame({"time": time_, "event": (t <= c).astype(np.int8), **{k: X[:, i] for i, k in enumerate(COVS)}})


def _intervals(n_rows: int, seed: int, per: int = 4) -> pl.DataFrame:
    """About ``n_rows`` (start, stop] rows: subjects split into ``per`` intervals with a
    covariate that changes between them (an event ends a subject's follow-up)."""
    rng = np.random.default_rng(seed)
    n = int(n_rows / per / 0.66) + 1  # about 2/3 of the planned rows survive the events
    base = rng.normal(size=(n, 4))
    cuts = np.sort(rng.uniform(0, 2.0, size=(n, per - 1)), axis=1)
    start = np.hstack([np.zeros((n, 1)), cuts])
    stop = np.hstack([cuts, np.full((n, 1), 2.0)])
    tv = rng.normal(size=(n, per))
    # event time: exponential hazard piecewise constant in the intervals
    eta = (base @ BETA[:4])[:, None] + BETA[4] * tv
    haz = 0.6 * np.exp(eta)
    cum = np.cumsum(haz * (stop - start), axis=1)
    e = rng.exponential(size=n)
    k = (cum < e[:, None]).sum(axis=1)  # interval where the event falls (per = none)
    rows_keep = np.arange(per)[None, :] <= k[:, None]
    prev = np.where(k > 0, cum[np.arange(n), np.maximum(k - 1, 0)], 0.0)
    kk = np.minimum(k, per - 1)
    t_event = start[np.arange(n), kk] + (e - prev) / haz[np.arange(n), kk]
    stop = stop.copy()
    has = k < per
    stop[np.arange(n)[has], k[has]] = t_event[has]
    event = np.zeros((n, per), dtype=np.int8)
    event[np.arange(n)[has], k[has]] = 1
    ids = np.repeat(np.arange(n), per).reshape(n, per)
    m = rows_keep.ravel()
    df = pl.DataFrame(
        {
            "id": ids.ravel()[m],
            "start": start.ravel()[m],
            "stop": stop.ravel()[m],
            "event": event.ravel()[m],
            **{f"x{i}": np.repeat(base[:, i], per)[m] for i in range(4)},
            "x4": tv.ravel()[m],
        }
    )
    df = df.filter(pl.col("stop") > pl.col("start"))
    last_id = df["id"][min(n_rows, df.height) - 1]
    return df.filter(pl.col("id") < last_id)


def _time(fn, reps: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _r_time(df: pl.DataFrame, kind: str, reps: int) -> tuple[float | None, np.ndarray | None]:
    if os.environ.get("COHORT_BENCH_R") != "1" or shutil.which("Rscript") is None:
        return None, None
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "d.csv"
        script = Path(tmp) / "fit.R"
        df.write_csv(data)
        script.write_text(R_SCRIPT)
        out = subprocess.run(["Rscript", str(script), str(data), kind, str(reps)], capture_output=True, text=True,
                             check=True).stdout.split()
    return float(out[0]), np.array([float(v) for v in out[1:]])


def run(*, quick: bool) -> list[dict]:
    import pandas as pd  # noqa: F401  (lifelines needs it)
    from lifelines import CoxPHFitter, CoxTimeVaryingFitter

    from cohort import survival as sv

    rows = []
    formula = " + ".join(COVS)
    sizes = [20_000] if quick else [100_000, 1_000_000]
    sv.cox(_subjects(2000, seed=1), formula, time="time", event="event")  # warm-up (imports)
    for n in sizes:
        df = _subjects(n, seed=n)
        ours_s, fit = _time(lambda df=df: sv.cox(df, formula, time="time", event="event"), reps=3 if not quick else 1)
        pdf = df.to_pandas()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            base_s, cph = _time(lambda pdf=pdf: CoxPHFitter().fit(pdf, "time", "event"), reps=1)
        diff = float(np.max(np.abs(fit.coef - cph.params_.loc[COVS].to_numpy())))
        r_s, r_coef = _r_time(df, "rc", reps=3)
        row = {
            "case": f"cox_efron_5cov_{n}",
            "ours_s": round(ours_s, 3),
            "baseline": "lifelines CoxPHFitter",
            "baseline_s": round(base_s, 3),
            "ratio": round(ours_s / base_s, 4),
            "n_events": fit.n_events,
            "distinct_event_times": int(fit._data.G),
            "max_abs_coef_diff_vs_baseline": diff,
            "engine": fit.engine,
        }
        if r_s is not None:
            row.update({"r_coxph_s": r_s, "ratio_vs_r": round(ours_s / r_s, 4),
                        "max_abs_coef_diff_vs_r": float(np.max(np.abs(fit.coef - r_coef)))})
        rows.append(row)

    # lifelines' CoxTimeVaryingFitter scales quadratically here (5,000 intervals: 1.4 s,
    # 10,000: 6 s), so it is compared at a size it can do; the 1M-interval cases are
    # compared with R's coxph when COHORT_BENCH_R=1.
    small = _intervals(8_000 if quick else 20_000, seed=7)
    sv.cox(small, formula, start="start", time="stop", event="event")  # warm-up
    ours_s, fit = _time(lambda: sv.cox(small, formula, start="start", time="stop", event="event"), reps=3)
    pdf = small.to_pandas()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base_s, ctv = _time(
            lambda: CoxTimeVaryingFitter().fit(pdf, id_col="id", start_col="start", stop_col="stop", event_col="event"),
            reps=1,
        )
    rows.append({
        "case": f"cox_timevarying_{small.height}_intervals",
        "ours_s": round(ours_s, 4),
        "baseline": "lifelines CoxTimeVaryingFitter",
        "baseline_s": round(base_s, 3),
        "ratio": round(ours_s / base_s, 5),
        "n_events": fit.n_events,
        "max_abs_coef_diff_vs_baseline": float(np.max(np.abs(fit.coef - ctv.params_.loc[COVS].to_numpy()))),
        "engine": fit.engine,
    })
    big = _intervals(40_000 if quick else 1_000_000, seed=11)
    for case, kw, rkind in (("cox_timevarying", {}, "tvplain"), ("andersen_gill_robust", {"cluster": "id"}, "tv")):
        ours_s, fit = _time(
            lambda kw=kw: sv.cox(big, formula, start="start", time="stop", event="event", **kw),
            reps=3 if not quick else 1,
        )
        # R's robust variance for (start, stop] data grows like rows x events (27k intervals:
        # 3 s), so R is timed on the robust case only at moderate sizes
        r_s, r_coef = (None, None) if rkind == "tv" and big.height > 200_000 else _r_time(big, rkind, reps=1)
        rows.append({
            "case": f"{case}_{big.height}_intervals",
            "ours_s": round(ours_s, 3),
            "baseline": "R coxph" if r_s is not None else "none (lifelines: quadratic, not run at this size)",
            "baseline_s": r_s,
            "ratio": None if r_s is None else round(ours_s / r_s, 4),
            "n_events": fit.n_events,
            "max_abs_coef_diff_vs_r": None if r_coef is None else float(np.max(np.abs(fit.coef - r_coef))),
            "engine": fit.engine,
        })
    return rows
