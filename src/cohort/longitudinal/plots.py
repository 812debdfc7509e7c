"""Plots for longitudinal models: each returns a :class:`matplotlib.figure.Figure` built without
pyplot (matplotlib imported lazily, the backend never switched); ``ax`` draws on the caller's axes."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from cohort._figure import figure_and_axes
from cohort.errors import ModelSpecError

__all__ = ["spaghetti", "caterpillar", "forest"]


def spaghetti(
    model: Any,
    *,
    time: str,
    n_sample: int = 30,
    seed: int = 0,
    grid_points: int = 50,
    conf_level: float = 0.95,
    ax: Any = None,
):
    """Observed trajectories of a sample of participants, with the fitted mean and its CI.

    The mean trajectory is the population-level prediction over a grid of ``time`` with the
    other covariates at their mean (numeric) or most frequent value; the band is the
    pointwise CI from the fixed-effects covariance.

    Examples
    --------
    >>> from cohort.longitudinal import lmm, example_data
    >>> from cohort.longitudinal.plots import spaghetti
    >>> fig = spaghetti(lmm(example_data(), "y ~ time + x", groups="subject", random="~time"),
    ...                 time="time")
    """
    data: pl.DataFrame = model._data
    group = model._group_cols[-1]
    response = model._design.response
    if time not in data.columns:
        raise ModelSpecError(f"spaghetti: column {time!r} is not in the model's data")
    rng = np.random.default_rng(seed)
    levels = data[group].unique().to_list()
    chosen = set(rng.choice(len(levels), size=min(n_sample, len(levels)), replace=False).tolist())
    sample = [levels[i] for i in sorted(chosen)]
    fig, ax = figure_and_axes(ax, figsize=(7, 4.5))
    sub = data.filter(pl.col(group).is_in(sample)).sort([group, time])
    for _, part in sub.group_by(group, maintain_order=True):
        ax.plot(part[time].to_numpy(), part[response].to_numpy(), color="0.6", lw=0.8, alpha=0.7)
    tmin, tmax = data[time].min(), data[time].max()
    grid = np.linspace(float(tmin), float(tmax), grid_points)
    row: dict[str, Any] = {}
    for c in data.columns:
        if c == time:
            continue
        s = data[c]
        row[c] = s.mean() if s.dtype.is_numeric() else s.drop_nulls().mode().sort()[0]
    newdata = pl.DataFrame({**{c: [v] * grid_points for c, v in row.items()}, time: grid})
    X = model._design.fixed(newdata.to_pandas())
    beta = model.summary["estimate"].to_numpy()
    mean = X @ beta
    se = np.sqrt(np.einsum("ij,jk,ik->i", X, model.vcov, X))
    crit = stats.norm.ppf(0.5 + conf_level / 2)
    ax.fill_between(grid, mean - crit * se, mean + crit * se, color="C0", alpha=0.25,
                    label=f"{int(conf_level * 100)}% CI")
    ax.plot(grid, mean, color="C0", lw=2.5, label="fitted mean")
    ax.set_xlabel(time)
    ax.set_ylabel(response)
    ax.set_title(f"{len(sample)} of {len(levels)} participants")
    ax.legend(frameon=False)
    return fig


def caterpillar(model: Any, *, term: str | None = None, group: str | None = None, conf_level: float = 0.95,
                ax: Any = None):
    """BLUPs of one random-effect term of one grouping term, sorted, with conditional-SD intervals.

    ``group`` chooses the grouping term of nested groups (``"participant:site"`` or
    ``"site"``); the default is the first in ``random_effects`` (lme4's order).

    Examples
    --------
    >>> from cohort.longitudinal import lmm, example_data
    >>> fig = lmm(example_data(), "y ~ time", groups="subject", random="~time").plot(term="time")
    """
    re: pl.DataFrame = model.random_effects
    groups = re["group"].unique(maintain_order=True).to_list()
    group = groups[0] if group is None else group
    if group not in groups:
        raise ModelSpecError(f"caterpillar: group {group!r} has no random effects; choose one of {groups}")
    re = re.filter(pl.col("group") == group)
    terms = re["term"].unique(maintain_order=True).to_list()
    term = terms[0] if term is None else term
    if term not in terms:
        raise ModelSpecError(f"caterpillar: term {term!r} has no random effect; choose one of {terms}")
    part = re.filter(pl.col("term") == term).sort("estimate")
    crit = stats.norm.ppf(0.5 + conf_level / 2)
    est = part["estimate"].to_numpy()
    err = crit * part["cond_sd"].to_numpy()
    fig, ax = figure_and_axes(ax, figsize=(5, max(3.0, 0.12 * len(est) + 1)))
    pos = np.arange(len(est))
    ax.errorbar(est, pos, xerr=err, fmt="o", ms=3, color="C0", ecolor="0.6", lw=0.8)
    ax.axvline(0, color="k", lw=0.8)
    if len(est) <= 40:
        ax.set_yticks(pos, part["level"].to_list(), fontsize=7)
    else:
        ax.set_yticks([])
    ax.set_xlabel(f"{term} (conditional mode +- {crit:.2f} SD)")
    ax.set_title(f"Random effects by {part['group'][0]}")
    fig.tight_layout()
    return fig


def forest(summary: pl.DataFrame, *, ax: Any = None):
    """Forest plot of estimates with their confidence intervals."""
    fig, ax = figure_and_axes(ax, figsize=(6, 0.4 * summary.height + 1.2))
    pos = np.arange(summary.height)[::-1]
    est = summary["estimate"].to_numpy()
    ax.errorbar(est, pos, xerr=[est - summary["conf_low"].to_numpy(), summary["conf_high"].to_numpy() - est],
                fmt="s", color="C0")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(pos, summary["term"].to_list())
    fig.tight_layout()
    return fig
