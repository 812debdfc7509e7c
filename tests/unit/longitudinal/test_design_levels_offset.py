"""Reference levels in lmm and gee do not depend on row order, and offset() in gee.

R reference: tests/reference/formula/make_reference.R -> formula.json, on MASS::epil
(tests/reference/longitudinal/epil.csv) with dose = c("low", "high", "Mid")[(subject %% 3) + 1]
and weeks = period + 1: lm and lmer (REML) for the levels (GEE gaussian with independence
working correlation has lm's point estimates), glm(family=poisson) with offsets for gee's
offset (geepack is not installed here: GEE poisson with independence working correlation has
glm's point estimates, and its robust SEs are the cluster sandwich the R script computes by
hand from the glm fit).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cohort import longitudinal as lg
from cohort.errors import ModelSpecError

REF = Path(__file__).resolve().parents[2] / "reference"
CASES = json.loads((REF / "formula" / "formula.json").read_text())["cases"]


def _epil(order: str = "file") -> pl.DataFrame:
    d = pl.read_csv(REF / "longitudinal" / "epil.csv")
    d = d.with_columns(
        dose=pl.Series(np.array(["low", "high", "Mid"])[d["subject"].to_numpy() % 3]),
        weeks=pl.col("period") + 1,
    )
    if order == "reversed":
        return d.reverse()
    if order == "low_first":
        return d.sort("dose", descending=True, maintain_order=True)
    return d


def _names(case: dict, prefix: str = "dose") -> list[str]:
    return [f"{prefix}[T.{t[4:]}]" if t.startswith("dose") else t for t in case["term"]]


def _gee(data, formula: str, family: str = "gaussian") -> lg.GEEResult:
    return lg.gee(data, formula, groups="subject", family=family, correlation="independence")


@pytest.mark.parametrize("order", ["file", "reversed", "low_first"])
@pytest.mark.parametrize("kind", ["string", "polars_categorical", "pandas_categorical"])
def test_gee_and_lmm_levels_sorted_as_r_whatever_the_row_order(kind: str, order: str, dose_as) -> None:
    data = dose_as(_epil(order), kind)
    lm, lmer = CASES["lm_string"], CASES["lmer_string"]
    g = _gee(data, "y ~ lage + dose")
    assert g.summary["term"].to_list() == _names(lm)
    np.testing.assert_allclose(g.summary["estimate"].to_numpy(), lm["estimate"], rtol=1e-8)
    m = lg.lmm(data, "y ~ lage + dose", groups="subject")
    assert m.summary["term"].to_list() == _names(lmer)
    np.testing.assert_allclose(m.summary["estimate"].to_numpy(), lmer["estimate"], rtol=1e-6)
    np.testing.assert_allclose(m.summary["std_error"].to_numpy(), lmer["std_error"], rtol=1e-5)


@pytest.mark.parametrize("order", ["file", "reversed", "low_first"])
@pytest.mark.parametrize("kind", ["polars_enum", "polars_enum_unused_level", "pandas_ordered"])
def test_gee_declared_order_kept(kind: str, order: str, dose_as) -> None:
    case = CASES["lm_declared"]
    g = _gee(dose_as(_epil(order), kind), "y ~ lage + dose")
    assert g.summary["term"].to_list() == _names(case)
    np.testing.assert_allclose(g.summary["estimate"].to_numpy(), case["estimate"], rtol=1e-8)


@pytest.mark.parametrize("spelling", ["C(dose, reference='low')", "treatment(dose, reference='low')"])
def test_reference_override_in_gee_and_lmm(spelling: str) -> None:
    case = CASES["lm_declared"]  # relevel(factor(dose), "low") gives the same columns
    data = _epil("reversed").with_columns(pl.col("dose").cast(pl.Categorical))
    g = _gee(data, "y ~ lage + " + spelling)
    assert g.summary["term"].to_list() == _names(case, "C(dose)")
    np.testing.assert_allclose(g.summary["estimate"].to_numpy(), case["estimate"], rtol=1e-8)
    m = lg.lmm(data, "y ~ lage + " + spelling, groups="subject")
    assert m.summary["term"].to_list() == _names(case, "C(dose)")


@pytest.mark.parametrize("name", ["glm_offset", "glm_two_offsets"])
@pytest.mark.parametrize("order", ["file", "reversed"])
def test_gee_poisson_offset_matches_glm(name: str, order: str) -> None:
    case = CASES[name]
    g = _gee(_epil(order), case["formula"], family="poisson")
    assert g.summary["term"].to_list() == ["(Intercept)", "trt[T.progabide]", "lage"]
    np.testing.assert_allclose(g.summary["estimate"].to_numpy(), case["estimate"], rtol=1e-7)
    assert g.converged
    if "robust_se" in case:  # the sandwich computed by hand in R (what geepack gives for independence)
        np.testing.assert_allclose(g.summary["std_error"].to_numpy(), case["robust_se"], rtol=1e-7)


def test_gee_offset_varying_within_clusters_changes_the_fit() -> None:
    d = _epil()
    with_off = lg.gee(d, "y ~ trt + lage + offset(log(weeks))", groups="subject", family="poisson")
    without = lg.gee(d, "y ~ trt + lage", groups="subject", family="poisson")
    # log(weeks) varies within subjects: not absorbed by the intercept
    assert abs(with_off.summary["estimate"][2] - without.summary["estimate"][2]) > 1e-3


def test_offset_refusals_longitudinal() -> None:
    d = _epil().with_columns(zero=pl.when(pl.col("period") == 2).then(0.0).otherwise(1.0))
    # period 2 is the 2nd of 4 rows of each of 59 subjects: data rows 1, 5, 9, ...
    with pytest.raises(ModelSpecError, match=r"offset\(log\(zero\)\) is not finite in 59 row\(s\) "
                       r"\(row indices 1, 5, 9, "):
        _gee(d, "y ~ lage + offset(log(zero))", family="poisson")
    with pytest.raises(ModelSpecError, match="lmm: offset.*supported by gee and cox"):
        lg.lmm(d, "y ~ lage + offset(weeks)", groups="subject")
    with pytest.raises(ModelSpecError, match="one number per row"):
        _gee(d, "y ~ lage + offset(dose)", family="poisson")
