"""Nested random intercepts (1 | batch/cask) against lme4 + lmerTest
(tests/reference/longitudinal/make_reference_nested.R): balanced Pastes and an unbalanced
version with a covariate, REML and ML. Kept beside the GEE tests (that engineer's files).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cohort import longitudinal as lg

REF_DIR = Path(__file__).resolve().parents[2] / "reference" / "longitudinal"
NESTED = json.loads((REF_DIR / "nested_reference.json").read_text())
CASES = {
    "pastes_reml": ("pastes", "strength ~ 1", True),
    "pastes_ml": ("pastes", "strength ~ 1", False),
    "unbalanced_reml": ("pastes_unbalanced", "strength ~ x", True),
    "unbalanced_ml": ("pastes_unbalanced", "strength ~ x", False),
}


@pytest.mark.parametrize("key", list(CASES))
def test_nested_intercepts_match_lme4_and_lmertest(key):
    data, formula, reml = CASES[key]
    r = NESTED[key]
    m = lg.lmm(pl.read_csv(REF_DIR / f"{data}.csv"), formula, groups="batch/cask", reml=reml)
    s = m.summary
    np.testing.assert_allclose(s["estimate"].to_numpy(), r["estimate"], rtol=1e-7)
    np.testing.assert_allclose(s["std_error"].to_numpy(), r["std_error"], rtol=1e-6)
    # lmerTest differentiates numerically (numDeriv), as we do
    np.testing.assert_allclose(s["df"].to_numpy(), r["df"], rtol=1e-5)
    np.testing.assert_allclose(s["p_value"].to_numpy(), r["p_value"], rtol=1e-4)
    assert m.df_method == "Satterthwaite"
    vc = m.variance_components
    assert vc["group"].to_list() == r["varcorr"]["group"]
    np.testing.assert_allclose(vc["vcov"].to_numpy(), r["varcorr"]["vcov"], rtol=1e-6)
    assert m.loglik == pytest.approx(r["loglik"], abs=1e-8)
    assert m.sigma == pytest.approx(r["sigma"], rel=1e-6)
    json.dumps(m.to_dict(), default=str)
