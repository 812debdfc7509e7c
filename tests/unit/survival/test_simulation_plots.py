"""Coverage of 95% CIs on simulated cohorts with known hazard ratios, and plot smoke tests."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import polars as pl
import pytest
from survival_ref import load_data

from cohort import survival as sv

TRUE = np.array([0.5, -0.7])


def _cohort(rng: np.random.Generator, n: int, *, ties: bool, entry: bool) -> pl.DataFrame:
    """Exponential event times with log-HRs TRUE, uniform censoring, optional delayed entry."""
    x1 = rng.normal(size=n)
    x2 = rng.binomial(1, 0.4, size=n).astype(float)
    t = rng.exponential(1 / (0.1 * np.exp(TRUE[0] * x1 + TRUE[1] * x2)))
    c = rng.uniform(2, 15, size=n)
    time = np.minimum(t, c)
    event = (t <= c).astype(int)
    if ties:
        time = np.ceil(time * 2) / 2  # half-year visits: many tied times
    df = pl.DataFrame({"time": time, "event": event, "x1": x1, "x2": x2})
    if entry:
        e = rng.uniform(0, 3, size=n)
        df = df.with_columns(entry=pl.Series(e)).filter(pl.col("time") > pl.col("entry"))
    return df


def _recurrent(rng: np.random.Generator, n: int) -> pl.DataFrame:
    """Recurrent relapses with a shared gamma frailty (Andersen-Gill data, (start, stop] rows)."""
    x1 = rng.normal(size=n)
    x2 = rng.binomial(1, 0.5, size=n).astype(float)
    frail = rng.gamma(2.0, 0.5, size=n)
    rate = 0.3 * frail * np.exp(TRUE[0] * x1 + TRUE[1] * x2)
    follow = rng.uniform(3, 8, size=n)
    rows = []
    for i in range(n):
        t = 0.0
        while True:
            gap = rng.exponential(1 / rate[i])
            if t + gap >= follow[i]:
                rows.append((i, t, follow[i], 0, x1[i], x2[i]))
                break
            rows.append((i, t, t + gap, 1, x1[i], x2[i]))
            t += gap
    return pl.DataFrame(rows, schema=["id", "start", "stop", "event", "x1", "x2"], orient="row")


def _coverage(reps: int, n: int, seed: int, kind: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hits = np.zeros((reps, 2), dtype=bool)
    for r in range(reps):
        if kind == "ag":
            fit = sv.cox(_recurrent(rng, n), "x1 + x2", start="start", time="stop", event="event", cluster="id")
        else:
            df = _cohort(rng, n, ties=kind == "ties", entry=kind == "entry")
            kw = {"start": "entry"} if kind == "entry" else {}
            fit = sv.cox(df, "x1 + x2", time="time", event="event", **kw)
        lo = np.log(fit.summary["conf_low"].to_numpy())
        hi = np.log(fit.summary["conf_high"].to_numpy())
        hits[r] = (lo <= TRUE) & (TRUE <= hi)
    return hits.mean(axis=0)


@pytest.mark.parametrize("kind", ["ties", "entry", "ag"])
def test_ci_coverage_small(kind: str) -> None:
    cov = _coverage(reps=120 if kind != "ag" else 60, n=150, seed=11, kind=kind)
    # 120 replications: binomial SD of the coverage about 0.02
    assert np.all(cov >= 0.86) and np.all(cov <= 1.0), cov


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["ties", "entry", "ag"])
def test_ci_coverage_full(kind: str) -> None:
    cov = _coverage(reps=1000 if kind != "ag" else 400, n=400, seed=2026, kind=kind)
    lo = 0.93 if kind != "ag" else 0.915
    assert np.all(cov >= lo) and np.all(cov <= 0.97), cov


def test_plots_return_figures() -> None:
    from matplotlib.figure import Figure

    rossi = load_data("rossi")
    km = sv.kaplan_meier(rossi, time="week", event="arrest", by="fin")
    assert isinstance(km.plot(), Figure)
    assert isinstance(km.plot(at_risk=False, conf_int=False), Figure)
    mg = load_data("mgus2")
    assert isinstance(sv.cumulative_incidence(mg, time="etime", event="event", by="sex").plot(), Figure)
    fit = sv.cox(rossi, "fin + age + prio", time="week", event="arrest")
    fig = fit.plot()
    assert isinstance(fig, Figure) and len(fig.axes[0].get_yticklabels()) == 3
    assert isinstance(sv.fine_gray(mg, "age + male", time="etime", event="event").plot(), Figure)
    import matplotlib.pyplot as plt

    plt.close("all")
