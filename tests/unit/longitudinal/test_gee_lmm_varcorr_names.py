"""Item 4 of the GEE/LMM work: variance-component rows named as R's as.data.frame(VarCorr()).

Lives beside the GEE tests (that engineer's files); the numbers themselves are checked in
test_lmm_reference.py.
"""

from __future__ import annotations

import pytest

from cohort import longitudinal as lg


@pytest.mark.parametrize(
    ("key", "data", "groups", "random", "cov"),
    [
        ("sleep_diag", "sleepstudy", "Subject", "~Days", "diagonal"),
        ("sleep_reml", "sleepstudy", "Subject", "~Days", "unstructured"),
        ("sleep_int", "sleepstudy", "Subject", "~1", "unstructured"),
    ],
)
def test_variance_component_groups_named_as_varcorr(ref, dataset, key, data, groups, random, cov):
    m = lg.lmm(dataset(data), "Reaction ~ Days", groups=groups, random=random, covariance=cov)
    assert m.variance_components["group"].to_list() == ref[key]["varcorr"]["group"]
