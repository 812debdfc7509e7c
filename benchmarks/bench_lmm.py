"""y ~ time + x + (time | subject): lg.lmm (fast engine) vs statsmodels MixedLM, same run.

Our time includes everything behind ``summary`` (SEs, Satterthwaite df) and
``variance_components``. statsmodels at 100,000 x 10 takes minutes: ``quick`` skips it.
With COHORT_BENCH_R=1 and Rscript on the PATH, lme4's lmer (REML, default optimiser)
is timed on the same data too (fit only, data already in R). A last case has the shape
of statsmodels issue #9097 (125,000 groups), ours only.
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

_R = r"""
suppressPackageStartupMessages(library(lme4))
d <- read.csv(commandArgs(TRUE)[1])
t0 <- proc.time()[["elapsed"]]
m <- lmer(y ~ time + x + (time | subject), data = d, REML = TRUE)
cat(proc.time()[["elapsed"]] - t0, format(fixef(m), digits = 15), "\n")
"""


def _data(n_subjects: int, n_visits: int, seed: int):
    from cohort.longitudinal import example_data

    return example_data(n_subjects, n_visits, seed=seed)


def _ours(d):
    from cohort.longitudinal import lmm

    t0 = time.perf_counter()
    m = lmm(d, "y ~ time + x", groups="subject", random="~time", reml=True)
    return time.perf_counter() - t0, m


def _statsmodels(d):
    from statsmodels.regression.mixed_linear_model import MixedLM

    y = d["y"].to_numpy()
    t = d["time"].to_numpy()
    X = np.column_stack([np.ones_like(t), t, d["x"].to_numpy()])
    Z = X[:, :2]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = MixedLM(y, X, groups=d["subject"].to_numpy(), exog_re=Z).fit(reml=True)
    return time.perf_counter() - t0, res


def _lme4(d) -> tuple[float | None, np.ndarray | None]:
    if os.environ.get("COHORT_BENCH_R") != "1" or shutil.which("Rscript") is None:
        return None, None
    with tempfile.TemporaryDirectory() as tmp:
        data, script = Path(tmp) / "d.csv", Path(tmp) / "fit.R"
        d.write_csv(data)
        script.write_text(_R)
        out = subprocess.run(["Rscript", str(script), str(data)], capture_output=True, text=True,
                             check=True)
    values = [float(v) for v in out.stdout.split()]
    return values[0], np.array(values[1:])


def run(*, quick: bool) -> list[dict]:
    cases = [(20_000, 8), (100_000, 10)] if not quick else [(500, 8), (10_000, 10)]
    rows = []
    for n_subjects, n_visits in cases:
        d = _data(n_subjects, n_visits, seed=42)
        _ours(d.head(200))  # warm-up (imports)
        ours_s, m = _ours(d)
        row = {
            "case": f"lmm random slope {n_subjects * n_visits:,} rows ({n_subjects:,} x {n_visits})",
            "ours_s": round(ours_s, 3),
            "engine": m.engine,
            "converged": m.converged,
        }
        big = n_subjects * n_visits >= 100_000
        if quick and big:
            row.update({"baseline": "statsmodels MixedLM (skipped in quick mode)", "baseline_s": None, "ratio": None})
        else:
            sm_s, res = _statsmodels(d)
            beta_sm = np.asarray(res.fe_params)
            beta = m.summary["estimate"].to_numpy()
            row.update(
                {
                    "baseline": "statsmodels MixedLM",
                    "baseline_s": round(sm_s, 3),
                    "ratio": round(ours_s / sm_s, 5),
                    "speedup": round(sm_s / ours_s, 1),
                    "max_rel_diff_beta": float(np.max(np.abs(beta - beta_sm) / np.abs(beta))),
                    "loglik_ours_minus_statsmodels": float(m.loglik - res.llf),
                }
            )
        r_s, r_beta = _lme4(d)
        if r_s is not None:
            beta = m.summary["estimate"].to_numpy()
            row.update({"lme4_s": round(r_s, 3), "ratio_vs_lme4": round(ours_s / r_s, 4),
                        "max_rel_diff_beta_vs_lme4": float(np.max(np.abs(beta - r_beta) / np.abs(r_beta)))})
        rows.append(row)
    n_groups = 12_500 if quick else 125_000
    d = _data(n_groups, 4, seed=7)
    ours_s, m = _ours(d)
    rows.append({"case": f"lmm random slope, statsmodels #9097 shape: {n_groups:,} groups x 4",
                 "ours_s": round(ours_s, 3), "engine": m.engine, "converged": m.converged,
                 "baseline": "none (statsmodels: 41 min in the issue)", "baseline_s": None,
                 "ratio": None})
    return rows
