"""Longitudinal models: mixed models matching lme4, GEE matching geepack, study helpers.

>>> from cohort import longitudinal as lg
>>> m = lg.lmm(lg.example_data(), "y ~ time + x", groups="subject", random="~time")
>>> m.engine
'fast'
"""

from cohort.longitudinal._design import ns
from cohort.longitudinal._example import EXAMPLE_TRUTH, example_data
from cohort.longitudinal.compare import CompareResult, compare
from cohort.longitudinal.gee import GEEResult, gee
from cohort.longitudinal.lmm import LMMResult, lmm
from cohort.longitudinal.plots import caterpillar, spaghetti
from cohort.longitudinal.study import dose_escalation, reliable_change

__all__ = [
    "lmm",
    "LMMResult",
    "gee",
    "GEEResult",
    "compare",
    "CompareResult",
    "ns",
    "reliable_change",
    "dose_escalation",
    "spaghetti",
    "caterpillar",
    "example_data",
    "EXAMPLE_TRUTH",
]
