"""GEE y ~ time + x, clusters of repeated visits: lg.gee (geepack's algorithm in NumPy) vs
statsmodels GEE, same run, same data; geepack::geeglm timed too when ``Rscript`` is on the PATH.

Cases: gaussian exchangeable and binomial AR-1, 20,000 x 8 and 100,000 x 10 (quick: 2,000 x 6).
statsmodels uses its own estimators (not geepack's), so only times are compared here; agreement
with geepack is what tests/unit/longitudinal/test_gee_reference.py checks.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl

R_SCRIPT = r"""
suppressPackageStartupMessages(library(geepack))
args <- commandArgs(TRUE)
d <- read.csv(args[1]); fam <- get(args[2])
t0 <- proc.time()[["elapsed"]]
f <- geeglm(y ~ time + x, id = subject, data = d, family = fam, corstr = args[3])
cat(proc.time()[["elapsed"]] - t0, "\n")
"""


def _data(n_subjects: int, n_visits: int, family: str, seed: int = 42) -> pl.DataFrame:
    from cohort.longitudinal import example_data

    d = example_data(n_subjects, n_visits, seed=seed)
    if family == "binomial":
        d = d.with_columns((pl.col("y") > pl.col("y").median()).cast(pl.Int64).alias("y"))
    return d


def _ours(d, family, corr):
    from cohort.longitudinal import gee

    t0 = time.perf_counter()
    g = gee(d, "y ~ time + x", groups="subject", family=family, correlation=corr)
    return time.perf_counter() - t0, g


def _statsmodels(d, family, corr):
    import statsmodels.api as sm
    from statsmodels.genmod import cov_struct as cs

    y = d["y"].to_numpy().astype(float)
    X = np.column_stack([np.ones(d.height), d["time"].to_numpy(), d["x"].to_numpy()])
    groups = d["subject"].to_numpy()
    visit = d.select(pl.int_range(pl.len()).over("subject")).to_series().to_numpy()
    fam = sm.families.Gaussian() if family == "gaussian" else sm.families.Binomial()
    cov = cs.Exchangeable() if corr == "exchangeable" else cs.Autoregressive(grid=True)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sm.GEE(y, X, groups=groups, time=visit, family=fam, cov_struct=cov).fit(maxiter=25)
        _ = res.bse
    return time.perf_counter() - t0, res


def _geepack(d, family, corr) -> float | None:
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        csv, script = Path(tmp) / "d.csv", Path(tmp) / "fit.R"
        d.write_csv(csv)
        script.write_text(R_SCRIPT)
        out = subprocess.run(["Rscript", str(script), str(csv), family, corr],
                             capture_output=True, text=True, check=False, timeout=3600)
    try:
        return float(out.stdout.split()[-1])
    except (IndexError, ValueError):
        return None


def run(*, quick: bool) -> list[dict]:
    sizes = [(2_000, 6)] if quick else [(20_000, 8), (100_000, 10)]
    rows = []
    for n_subjects, n_visits in sizes:
        for family, corr in (("gaussian", "exchangeable"), ("binomial", "ar1")):
            d = _data(n_subjects, n_visits, family)
            _ours(d.head(60), family, corr)  # warm-up (imports)
            ours_s, g = _ours(d, family, corr)
            sm_s, res = _statsmodels(d, family, corr)
            r_s = _geepack(d, family, corr)
            rows.append({
                "case": f"gee {family} {corr} {d.height:,} rows ({n_subjects:,} x {n_visits})",
                "ours_s": round(ours_s, 3),
                "baseline": "statsmodels GEE",
                "baseline_s": round(sm_s, 3),
                "ratio": round(ours_s / sm_s, 3),
                "geepack_s": None if r_s is None else round(r_s, 3),
                "ratio_geepack": None if not r_s else round(ours_s / r_s, 3),
                "iterations": g.iterations,
                "converged": g.converged,
                "max_abs_diff_vs_statsmodels": float(np.max(np.abs(g.summary["estimate"].to_numpy()
                                                                   - np.asarray(res.params)))),
            })
    return rows
