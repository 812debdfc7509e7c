"""Plots: Kaplan-Meier and cumulative incidence curves with numbers at risk, forest plots.

matplotlib is imported lazily; every function returns a :class:`matplotlib.figure.Figure`
built without pyplot (no backend switch, nothing registered with pyplot).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cohort._figure import new_figure

__all__ = ["plot_km", "plot_cif", "plot_forest"]


def _step_curves(
    result: Any,
    value: str,
    *,
    start_value: float,
    conf_int: bool,
    at_risk: bool,
    risk_times: Sequence[float] | None,
    title: str | None,
    xlabel: str,
    ylabel: str,
    ylim: tuple[float, float] | None,
):
    import matplotlib

    groups = list(result.groups)
    if at_risk:
        fig = new_figure(figsize=(7, 5 + 0.25 * len(groups)))
        ax, tab = fig.subplots(2, 1, gridspec_kw={"height_ratios": [4, 0.6 + 0.3 * len(groups)]}, sharex=True)
    else:
        fig = new_figure(figsize=(7, 5))
        ax = fig.subplots()
        tab = None
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    tmax = float(result.summary["time"].max())
    for i, g in enumerate(groups):
        sub = result.summary.filter(result.summary["group"] == g)
        t = np.concatenate([[0.0], sub["time"].to_numpy()])
        y = np.concatenate([[start_value], sub[value].to_numpy()])
        c = colors[i % len(colors)]
        label = g if len(groups) > 1 or g != "all" else None
        ax.step(t, y, where="post", color=c, label=label)
        if conf_int:
            lo = np.concatenate([[start_value], sub["conf_low"].to_numpy()])
            hi = np.concatenate([[start_value], sub["conf_high"].to_numpy()])
            ax.fill_between(t, lo, hi, step="post", color=c, alpha=0.2, linewidth=0)
        cens = sub.filter(sub["n_censor"] > 0) if "n_censor" in sub.columns else None
        if cens is not None and cens.height:
            ax.plot(cens["time"].to_numpy(), cens[value].to_numpy(), "|", color=c, markersize=6)
    ax.set_ylabel(ylabel)
    ax.set_ylim(*(ylim or (0, 1.02)))
    ax.set_xlim(0, tmax * 1.02)
    if title:
        ax.set_title(title)
    if len(groups) > 1:
        ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    if tab is not None:
        ticks = np.asarray(risk_times) if risk_times is not None else ax.get_xticks()
        ticks = ticks[(ticks >= 0) & (ticks <= tmax)]
        at = result.at(ticks) if hasattr(result, "at") else None
        for i, g in enumerate(groups):
            sub = result.summary.filter(result.summary["group"] == g)
            st = sub["time"].to_numpy()
            nr = sub["n_risk"].to_numpy()
            nxt = np.searchsorted(st, ticks, side="left")
            counts = np.where(nxt < st.size, nr[np.minimum(nxt, st.size - 1)], 0)
            yv = len(groups) - i
            for x, n in zip(ticks, counts, strict=True):
                tab.text(x, yv, f"{int(round(n))}", ha="center", va="center", fontsize=8,
                         color=colors[i % len(colors)])
        del at
        tab.set_ylim(0.3, len(groups) + 0.7)
        tab.set_yticks(range(len(groups), 0, -1))
        tab.set_yticklabels(groups, fontsize=8)
        tab.set_title("Number at risk", fontsize=9, loc="left")
        for s in ("top", "right", "left"):
            tab.spines[s].set_visible(False)
        tab.tick_params(axis="y", length=0, pad=22)
        tab.set_xlabel(xlabel)
        tab.set_xticks(ticks)
    else:
        ax.set_xlabel(xlabel)
    fig.tight_layout()
    return fig


def plot_km(
    km: Any,
    *,
    conf_int: bool = True,
    at_risk: bool = True,
    risk_times: Sequence[float] | None = None,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str = "Survival probability",
):
    """Kaplan-Meier curves (steps, censoring ticks, CI bands) with a numbers-at-risk table.

    Examples
    --------
    >>> import polars as pl
    >>> from cohort import survival as sv
    >>> km = sv.kaplan_meier(pl.DataFrame({"t": [1, 2, 3, 4], "e": [1, 0, 1, 1]}), time="t", event="e")
    >>> fig = km.plot()
    """
    return _step_curves(km, "survival", start_value=1.0, conf_int=conf_int, at_risk=at_risk,
                        risk_times=risk_times, title=title, xlabel=xlabel or km.time_name, ylabel=ylabel, ylim=None)


def plot_cif(
    ci: Any,
    *,
    conf_int: bool = True,
    at_risk: bool = True,
    risk_times: Sequence[float] | None = None,
    title: str | None = None,
    xlabel: str = "time",
    ylabel: str | None = None,
):
    """Cumulative incidence curves (Aalen-Johansen) with CI bands and numbers at risk."""
    top = float(np.nanmax(ci.summary["conf_high"].fill_nan(None).fill_null(0).to_numpy())) if conf_int else float(
        ci.summary["estimate"].max()
    )
    return _step_curves(ci, "estimate", start_value=0.0, conf_int=conf_int, at_risk=at_risk, risk_times=risk_times,
                        title=title, xlabel=xlabel, ylabel=ylabel or f"Cumulative incidence of cause {ci.cause}",
                        ylim=(0, min(1.0, max(0.05, top * 1.1))))


def plot_forest(fit: Any, *, title: str | None = None, log_scale: bool = True, terms: Sequence[str] | None = None):
    """Forest plot of hazard ratios with confidence intervals (one row per term).

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> from cohort import survival as sv
    >>> rng = np.random.default_rng(0)
    >>> df = pl.DataFrame({"t": rng.exponential(size=80), "e": [1] * 80, "x": rng.normal(size=80)})
    >>> fig = sv.cox(df, "x", time="t", event="e").plot()
    """
    s = fit.summary
    if terms is not None:
        s = s.filter(s["term"].is_in(list(terms)))
    names = s["term"].to_list()
    hr = s["hazard_ratio"].to_numpy()
    lo = s["conf_low"].to_numpy()
    hi = s["conf_high"].to_numpy()
    fig = new_figure(figsize=(7, 1.2 + 0.45 * len(names)))
    ax = fig.subplots()
    y = np.arange(len(names))[::-1]
    ax.errorbar(hr, y, xerr=[hr - lo, hi - hr], fmt="s", color="black", ecolor="black", capsize=3, markersize=5)
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(y)
    ax.set_yticklabels(names)
    if log_scale:
        from matplotlib.ticker import FuncFormatter

        ax.set_xscale("log")
        fmt = FuncFormatter(lambda v, _: f"{v:g}")
        ax.xaxis.set_major_formatter(fmt)
        ax.xaxis.set_minor_formatter(fmt)
        ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("Hazard ratio (95% CI)" if getattr(fit, "conf_level", 0.95) == 0.95 else "Hazard ratio")
    for yi, h, a, b in zip(y, hr, lo, hi, strict=True):
        ax.text(1.02, yi, f"{h:.2f} ({a:.2f}-{b:.2f})", transform=ax.get_yaxis_transform(), va="center", fontsize=8)
    if title:
        ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
