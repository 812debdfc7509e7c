"""gee corner cases against geepack::geeglm (tests/reference/longitudinal/make_reference_gee_corners.R).

Data: gee_rates.csv, a Poisson rate data set simulated by that R script (set.seed; 80
participants, up to 5 visits with gaps, counts over ``years`` of follow-up, prior weights ``w``
and ``z``, the latter with four zero weights), and gee_rates_na.csv, the same with missing
values in y, dose, years, age and w. Every case is ``y ~ age + dose + offset(log(years))``,
Poisson log link, ``waves="visit"``, exchangeable or AR-1, with geepack's default stopping rule
and a tight one (1e-10): estimates, robust and naive SEs, the correlation parameter and the
scale must agree to 1e-9 (relative; 1.3e-13 measured), and the rows left out must be geeglm's (na.omit).
Weighted fits of the other families: geepack's ohio (binomial) and dietox (gaussian) with
weights drawn by the script (stored in the reference JSON).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cohort import longitudinal as lg
from cohort.errors import ModelSpecError

REF_DIR = Path(__file__).resolve().parents[2] / "reference" / "longitudinal"
REF = json.loads((REF_DIR / "gee_corners_reference.json").read_text())
CASES = REF["cases"]
RTOL = 1e-9  # measured: 1.3e-13 at worst (robust SE)


def _data(name: str) -> pl.DataFrame:
    if name in ("ohio", "dietox"):  # weights drawn by the R script, stored in the JSON
        w = pl.Series("w", REF["drawn_weights"][name], pl.Float64)
        return pl.read_csv(REF_DIR / f"{name}.csv").with_columns(w)
    rates = pl.read_csv(REF_DIR / "gee_rates.csv")
    if name == "rates":
        return rates
    na = pl.read_csv(REF_DIR / "gee_rates_na.csv")
    if name == "rates_na_yw":  # as the R script: missing values in y and w only
        na = na.with_columns(rates.select("age", "dose", "years"))
    return na


def _fit(case: dict, data: pl.DataFrame | None = None) -> lg.GEEResult:
    return lg.gee(_data(case["data"]) if data is None else data, case["formula"], groups=case["id"],
                  family=case["family"], correlation=case["corstr"], waves=case["waves"],
                  weights=case["weights"], tol=case["tol"], maxiter=case["maxiter"])


def _left_out(g: lg.GEEResult) -> list[int]:
    """The 0-based rows named in the missing-values note (all of them: fewer than 10 here)."""
    note = next((w for w in g.warnings if "missing values left out" in w), None)
    if note is None:
        return []
    rows: set[int] = set()
    for part in note.split(": ", 1)[1].split("; ")[:-1]:
        listed = part.split("at row", 1)[1].split("(")[0].lstrip("s ").rstrip(" ")
        rows |= {int(r) for r in listed.split(", ")}
    return sorted(rows)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gee_corner_case_matches_geeglm(name: str) -> None:
    case = CASES[name]
    assert case["error"] == 0
    g = _fit(case)
    assert g.converged and g.nobs == case["nobs"]
    assert len(case["term"]) == g.summary.height and g.summary["term"][1] == case["term"][1]
    for col in ("estimate", "std_error", "naive_std_error"):
        np.testing.assert_allclose(g.summary[col].to_numpy(), case[col], rtol=RTOL, err_msg=col)
    assert g.correlation_params == pytest.approx(case["alpha"], rel=RTOL)
    assert g.scale == pytest.approx(case["scale"], rel=RTOL)
    assert _left_out(g) == case["dropped"]
    assert g.weights == case["weights"]


def test_gee_zero_weights_kept_as_geeglm_and_noted() -> None:
    case = CASES["zero_weights_exchangeable_tight"]
    g = _fit(case)
    note = next(w for w in g.warnings if "is zero" in w)
    assert "weights column 'z' is zero at rows 2, 39, 40, 199 (4 rows)" in note
    # not the same as leaving those rows out (geeglm keeps them in the working correlation)
    dropped = _data("rates").with_row_index("r").filter(~pl.col("r").is_in([2, 39, 40, 199])).drop("r")
    g2 = _fit(case, dropped)
    assert g2.nobs == g.nobs - 4
    assert abs(g2.summary["estimate"][0] - g.summary["estimate"][0]) > 1e-5


@pytest.mark.parametrize(("value", "kind"), [(-1.0, "negative"), (float("inf"), "infinite")])
def test_gee_refuses_negative_or_infinite_weights(value: float, kind: str) -> None:
    case = CASES["weights_ar1"]
    data = _data("rates").with_row_index("r").with_columns(
        pl.when(pl.col("r").is_in([7, 120])).then(value).otherwise(pl.col("w")).alias("w")).drop("r")
    with pytest.raises(ModelSpecError) as err:
        _fit(case, data)
    msg = str(err.value)
    assert "\n" not in msg
    assert "weights column 'w' has 2 row(s) with a negative or infinite weight (at rows 7, 120 (2 rows))" in msg


def test_gee_missing_weight_is_a_missing_value() -> None:
    case = CASES["missing_weights_ar1"]
    with pytest.raises(ModelSpecError, match=r"'w' at rows 30, 259 \(2 rows\)"):
        lg.gee(_data("rates_na"), case["formula"], groups="id", family="poisson", correlation="ar1",
               waves="visit", weights="w", missing="raise")
