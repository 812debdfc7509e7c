"""The general path: lifelines' CoxPHFitter / CoxTimeVaryingFitter behind the CoxFit result.

Used for what the fast engine does not do (penalised fits) and to cross-check it.
lifelines' CoxPHFitter uses Efron ties; its CoxTimeVaryingFitter does not
handle tied event times the way R does, so it is refused on tied data.
"""

from __future__ import annotations

import warnings as _warnings

import numpy as np

from cohort.errors import ModelSpecError

__all__ = ["fit_lifelines"]


def fit_lifelines(
    X: np.ndarray,
    stop: np.ndarray,
    event: np.ndarray,
    *,
    start: np.ndarray | None,
    strata: np.ndarray | None,
    weights: np.ndarray | None,
    names: tuple[str, ...],
    terms: dict[str, list[int]],
    formula: str,
    ties: str,
    conf_level: float,
    penalizer: float,
    cluster: np.ndarray | None,
    warn: list[str],
):
    import pandas as pd
    from lifelines import CoxPHFitter, CoxTimeVaryingFitter

    from cohort.survival.cox import CoxFit, _summary

    if ties != "efron":
        raise ModelSpecError("the lifelines engine only does Efron ties; use engine='numpy' for Breslow")
    cols = [f"x{i}" for i in range(X.shape[1])]
    pdf = pd.DataFrame(X, columns=cols)
    pdf["_stop"] = stop
    pdf["_event"] = event.astype(int)
    if weights is not None:
        pdf["_w"] = weights
    if cluster is not None:
        pdf["_cluster"] = cluster
    if strata is not None:
        pdf["_strata"] = strata
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        if start is None:
            m = CoxPHFitter(penalizer=penalizer, alpha=1 - conf_level)
            m.fit(
                pdf,
                duration_col="_stop",
                event_col="_event",
                weights_col="_w" if weights is not None else None,
                cluster_col="_cluster" if cluster is not None else None,
                strata=["_strata"] if strata is not None else None,
                robust=cluster is not None,
            )
        else:
            ev_times = stop[event]
            if np.unique(ev_times).size < ev_times.size:
                raise ModelSpecError(
                    "lifelines' CoxTimeVaryingFitter does not handle tied event times as R does; "
                    "use engine='numpy' (the default) for (start, stop] data with ties"
                )
            if cluster is not None or weights is not None:
                raise ModelSpecError("the lifelines time-varying engine takes no cluster or weights here")
            pdf["_start"] = start
            pdf["_id"] = np.arange(len(pdf))
            m = CoxTimeVaryingFitter(penalizer=penalizer, alpha=1 - conf_level)
            m.fit(pdf, id_col="_id", start_col="_start", stop_col="_stop", event_col="_event",
                  strata=["_strata"] if strata is not None else None)
    order = [list(m.params_.index).index(c) for c in cols]
    coef = m.params_.to_numpy()[order]
    full = np.asarray(m.variance_matrix_)[np.ix_(order, order)]
    if start is None and cluster is not None:
        # lifelines' robust variance is in variance_matrix_; the model-based one is the inverse Hessian
        robust = full
        vcov = np.linalg.inv(-m._hessian_) if hasattr(m, "_hessian_") else robust
    else:
        robust = None
        vcov = full
    loglik = float(m.log_likelihood_)
    ll0 = float(getattr(m, "_ll_null_", np.nan)) if hasattr(m, "_ll_null_") else float("nan")
    return CoxFit(
        summary=_summary(names, coef, vcov, robust, conf_level),
        coef=coef,
        vcov=vcov,
        robust_vcov=robust,
        loglik=loglik,
        loglik_null=ll0,
        n=int(X.shape[0]),
        n_events=int(event.sum()),
        n_clusters=None if cluster is None else int(np.unique(cluster).size),
        ties=ties,
        formula=formula,
        terms=terms,
        iterations=-1,
        converged=True,
        warnings=tuple(warn),
        engine="lifelines",
        conf_level=conf_level,
    )
