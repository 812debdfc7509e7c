"""Survival analysis that matches R: Kaplan-Meier, log-rank, Cox, competing risks, rates.

>>> from cohort import survival as sv
>>> # sv.kaplan_meier(df, time="week", event="arrest", by="fin")
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
