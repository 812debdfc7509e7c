"""Survival analysis that matches R: Kaplan-Meier, log-rank, Cox, competing risks, rates.

Every estimator is checked against R (survival, cmprsk) on published datasets
in tests/reference/survival.

- :func:`kaplan_meier` (survfit): ``.summary``, ``.at(times)``, ``.median()``, ``.plot()``
- :func:`logrank` (survdiff): stratified, Fleming-Harrington rho, test for trend
- :func:`cox` (coxph): Efron/Breslow ties, (start, stop] data (time-varying
  covariates, delayed entry, Andersen-Gill and PWP recurrent events), strata,
  weights, cluster-robust SEs; ``.check_proportional_hazards()`` (cox.zph, transforms
  km/rank/identity/log), ``.concordance`` (weighted pairs with case weights),
  ``.baseline_hazard()``, ``.tests``; predictions ``.predict_survival(newdata)`` /
  ``.survival_function(newdata)`` (survfit.coxph) and ``.predict(newdata, type=)``
  (predict.coxph); collinear columns give NaN coefficients (R's NA, listed in
  ``.aliased``); fast exact NumPy engine (``fit.engine == "numpy"``) with lifelines
  as the general path

KM, log-rank and Cox merge nearly equal times as R does (``timefix=True``, R's
aeqSurv); pass ``timefix=False`` to keep every float time distinct.
- :func:`cumulative_incidence` (cuminc): Aalen-Johansen with Gray's test
- :func:`fine_gray` (crr): subdistribution hazards
- :func:`incidence_rate` (poisson.test): exact Poisson CIs and rate ratios

>>> import polars as pl
>>> from cohort import survival as sv
>>> df = pl.DataFrame({"week": [3, 8, 8, 12, 20, 26, 30, 52], "arrest": [1, 1, 0, 1, 0, 1, 0, 0],
...                    "fin": [0, 0, 0, 0, 1, 1, 1, 1]})
>>> sv.kaplan_meier(df, time="week", event="arrest", by="fin").median()["median"].to_list()
[10.0, None]
"""

from cohort.survival.competing import (
    CumulativeIncidence,
    FineGrayFit,
    cumulative_incidence,
    fine_gray,
)
from cohort.survival.cox import CoxFit, cox
from cohort.survival.kaplan_meier import KaplanMeier, kaplan_meier
from cohort.survival.logrank import LogRank, logrank
from cohort.survival.rates import IncidenceRates, incidence_rate

__all__ = [
    "CumulativeIncidence",
    "FineGrayFit",
    "IncidenceRates",
    "cumulative_incidence",
    "fine_gray",
    "incidence_rate",
    "CoxFit",
    "cox",
    "KaplanMeier",
    "LogRank",
    "kaplan_meier",
    "logrank",
]
