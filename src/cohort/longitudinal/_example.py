"""Small simulated longitudinal data with known truth (docstrings, tests, benchmarks)."""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["example_data", "EXAMPLE_TRUTH"]

EXAMPLE_TRUTH = {
    "(Intercept)": 25.0,
    "time": -0.4,
    "x": 1.5,
    "sd_intercept": 3.0,
    "sd_slope": 0.5,
    "corr": -0.3,
    "sigma": 1.5,
}


def example_data(
    n_subjects: int = 60,
    n_visits: int = 6,
    *,
    seed: int = 1,
    truth: dict[str, float] | None = None,
    irregular: bool = True,
) -> pl.DataFrame:
    """Simulate ``y = b0 + b1*time + b2*x + u0 + u1*time + e`` (one row per visit).

    ``time`` is irregular (visits jittered around yearly) when ``irregular`` is set;
    ``x`` is a visit-level covariate. The truth is :data:`EXAMPLE_TRUTH` unless given.

    Examples
    --------
    >>> example_data(10, 4).shape
    (40, 4)
    """
    t = dict(EXAMPLE_TRUTH if truth is None else truth)
    rng = np.random.default_rng(seed)
    cov = np.array(
        [
            [t["sd_intercept"] ** 2, t["corr"] * t["sd_intercept"] * t["sd_slope"]],
            [t["corr"] * t["sd_intercept"] * t["sd_slope"], t["sd_slope"] ** 2],
        ]
    )
    u = rng.multivariate_normal(np.zeros(2), cov, size=n_subjects)
    subject = np.repeat(np.arange(n_subjects), n_visits)
    time = np.tile(np.arange(n_visits, dtype=float), n_subjects)
    if irregular:
        time = time + rng.uniform(-0.3, 0.3, size=time.size) * (time > 0)
    x = rng.normal(size=time.size)
    y = (
        t["(Intercept)"]
        + t["time"] * time
        + t["x"] * x
        + u[subject, 0]
        + u[subject, 1] * time
        + rng.normal(scale=t["sigma"], size=time.size)
    )
    return pl.DataFrame({"subject": subject, "time": time, "x": x, "y": y})
