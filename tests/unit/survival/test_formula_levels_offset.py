"""Reference levels of categorical covariates do not depend on row order, and offset() in cox.

R reference: tests/reference/formula/make_reference.R -> formula.json (coxph on
survival::lung with dose = c("low", "high", "Mid")[(row %% 3) + 1], levels in the C locale;
cmprsk::crr on survival::mgus2 with the same rule, on the model matrix R builds from the factor).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from survival_ref import load_data

from cohort import survival as sv
from cohort.errors import ModelSpecError

CASES = json.loads((Path(__file__).resolve().parents[2] / "reference" / "formula" / "formula.json").read_text())[
    "cases"
]


def _lung() -> pl.DataFrame:
    d = load_data("lung")
    rows = np.arange(1, d.height + 1)
    return d.with_columns(dose=pl.Series(np.array(["low", "high", "Mid"])[rows % 3]))


def _ordered(d: pl.DataFrame, order: str) -> pl.DataFrame:
    if order == "file":
        return d
    if order == "reversed":
        return d.reverse()
    return d.sort("dose", descending=True, maintain_order=True)  # "low" rows first


def _r_names(case: dict, prefix: str) -> list[str]:
    """R's coefficient names (``dosehigh``) in cohort's spelling (``dose[T.high]``)."""
    return [f"{prefix}[T.{t[4:]}]" if t.startswith("dose") else t for t in case["term"]]


def _assert_cox(fit: sv.CoxFit, case: dict, prefix: str = "dose") -> None:
    assert list(fit.names) == _r_names(case, prefix)
    np.testing.assert_allclose(fit.coef, case["estimate"], rtol=1e-7)
    np.testing.assert_allclose(fit.summary["std_error"].to_numpy(), case["std_error"], rtol=1e-7)
    np.testing.assert_allclose([fit.loglik_null, fit.loglik], case["loglik"], rtol=1e-10)
    assert fit.n == case["n"] and fit.n_events == case["nevent"]


@pytest.mark.parametrize("order", ["file", "reversed", "low_first"])
@pytest.mark.parametrize("kind", ["string", "polars_categorical", "pandas_categorical"])
def test_unordered_levels_sorted_as_r_whatever_the_row_order(kind: str, order: str, dose_as) -> None:
    case = CASES["cox_string"]
    assert case["levels"] == ["Mid", "high", "low"]  # R's factor() in the C locale
    fit = sv.cox(dose_as(_ordered(_lung(), order), kind), "age + dose", time="time", event="status")
    _assert_cox(fit, case)


@pytest.mark.parametrize("order", ["file", "reversed", "low_first"])
@pytest.mark.parametrize("kind", ["polars_enum", "pandas_ordered", "polars_enum_unused_level"])
def test_declared_order_kept_and_unused_levels_dropped(kind: str, order: str, dose_as) -> None:
    case = CASES["cox_declared"]
    fit = sv.cox(dose_as(_ordered(_lung(), order), kind), "age + dose", time="time", event="status")
    _assert_cox(fit, case)
    assert fit.converged and not fit.aliased


@pytest.mark.parametrize("spelling", ["C(dose, reference='low')", 'treatment(dose, reference="low")',
                                      "C(dose, base='low')"])
@pytest.mark.parametrize("kind", ["string", "polars_categorical", "pandas_categorical"])
def test_reference_override_as_relevel(spelling: str, kind: str, dose_as) -> None:
    fit = sv.cox(dose_as(_ordered(_lung(), "low_first"), kind), "age + " + spelling, time="time", event="status")
    _assert_cox(fit, CASES["cox_reference"], prefix="C(dose)")


@pytest.mark.parametrize("order", ["file", "reversed"])
def test_cox_offset_matches_r(order: str) -> None:
    case = CASES["cox_offset"]
    fit = sv.cox(_ordered(_lung(), order), case["formula"], time="time", event="status")
    _assert_cox(fit, case)
    assert fit.concordance == pytest.approx(case["concordance"], rel=1e-10)


def test_offset_refusals() -> None:
    d = _lung().with_columns(zero=pl.when(pl.col("age") > 70).then(0.0).otherwise(1.0))
    first = np.flatnonzero(d["age"].to_numpy() > 70)[:2].tolist()
    n_zero = int((d["age"] > 70).sum())
    with pytest.raises(ModelSpecError, match=rf"offset\(log\(zero\)\) is not finite in {n_zero} row\(s\) "
                       rf"\(row indices {first[0]}, {first[1]}, "):
        sv.cox(d, "sex + offset(log(zero))", time="time", event="status")
    with pytest.raises(ModelSpecError, match="term of its own"):
        sv.cox(d, "sex + offset(age):sex", time="time", event="status")
    with pytest.raises(ModelSpecError, match="numpy engine"):
        sv.cox(d, "sex + offset(log(age))", time="time", event="status", engine="lifelines")
    fit = sv.cox(d, "sex + offset(log(age))", time="time", event="status")
    with pytest.raises(ModelSpecError, match="offset"):
        fit.predict(d)
    with pytest.raises(ModelSpecError, match="offset"):
        fit.baseline_hazard()
    with pytest.raises(ModelSpecError, match="supported by cox and gee"):
        sv.fine_gray(d, "sex + offset(log(age))", time="time", event="status")


def test_offset_column_with_missing_value_is_a_model_column() -> None:
    d = _lung().with_columns(pt=pl.when(pl.int_range(pl.len()) == 4).then(None).otherwise(pl.col("age")))
    with pytest.raises(ModelSpecError, match=r"'pt' at"):
        sv.cox(d, "sex + offset(log(pt))", time="time", event="status", missing="raise")
    fit = sv.cox(d, "sex + offset(log(pt))", time="time", event="status")
    assert fit.n == d.height - 1


@pytest.mark.parametrize("order", ["file", "reversed"])
@pytest.mark.parametrize("kind", ["polars_categorical", "pandas_categorical"])
def test_fine_gray_levels_as_crr_on_rs_model_matrix(kind: str, order: str, dose_as) -> None:
    case = CASES["crr_string"]
    mg = load_data("mgus2")
    mg = mg.with_columns(dose=pl.Series(np.array(["low", "high", "Mid"])[np.arange(1, mg.height + 1) % 3]))
    mg = mg.reverse() if order == "reversed" else mg
    fit = sv.fine_gray(dose_as(mg, kind), "age + dose", time="etime", event="event", cause=1)
    assert list(fit.summary["term"]) == _r_names(case, "dose")
    np.testing.assert_allclose(fit.summary["estimate"].to_numpy(), case["estimate"], rtol=1e-6)
    np.testing.assert_allclose(fit.summary["std_error"].to_numpy(), case["std_error"], rtol=1e-5)


def test_cox_offset_with_strata_and_robust_variance_matches_r() -> None:
    case = CASES["cox_offset_strata_robust"]
    fit = sv.cox(_ordered(_lung(), "reversed"), case["formula"], time="time", event="status", strata="ph.ecog",
                 robust=True)
    np.testing.assert_allclose(fit.coef, case["estimate"], rtol=1e-7)
    np.testing.assert_allclose(fit.summary["std_error"].to_numpy(), case["naive_se"], rtol=1e-7)
    np.testing.assert_allclose(fit.summary["robust_std_error"].to_numpy(), case["robust_se"], rtol=1e-7)
    np.testing.assert_allclose([fit.loglik_null, fit.loglik], case["loglik"], rtol=1e-10)
    assert fit.concordance == pytest.approx(case["concordance"], rel=1e-10)
