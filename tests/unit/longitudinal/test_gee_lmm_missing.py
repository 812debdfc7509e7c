"""Rows with missing values in lmm and gee follow R's na.omit (lmer, glm), against
tests/reference/longitudinal/make_reference_missing.R on nested_sites.csv (simulated by
make_reference_theta.R: NA in y at rows 2 and 16, in x at rows 7, 29 and 40, 0-based):
the same rows are left out, the fit is R's, ``warnings`` states the count per column;
``missing="raise"`` refuses them naming columns and rows.
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
MISSING = json.loads((REF_DIR / "missing_reference.json").read_text())


@pytest.fixture()
def sites() -> pl.DataFrame:
    # a column the models do not use, missing everywhere: R ignores it, so must we
    d = pl.read_csv(REF_DIR / "nested_sites.csv")
    return d.with_columns(pl.lit(None, dtype=pl.Float64).alias("unused"))


def _rows(dropped: list[int], column: str, sites: pl.DataFrame) -> list[int]:
    return [i for i in dropped if sites[column][i] is None]


def test_lmm_leaves_out_the_rows_lmer_leaves_out_and_states_them(sites):
    r = MISSING["lmer_site"]
    m = lg.lmm(sites, "y ~ x", groups="site")
    assert m.nobs == r["nobs"] == sites.height - len(r["dropped"])
    np.testing.assert_allclose(m.summary["estimate"].to_numpy(), r["fixef"], rtol=1e-7)
    np.testing.assert_allclose(m.theta, r["theta"], rtol=1e-6)
    assert m.sigma == pytest.approx(r["sigma"], rel=1e-6)
    assert m.loglik == pytest.approx(r["loglik"], abs=1e-7)
    (note,) = [w for w in m.warnings if "missing" in w]
    assert note.startswith(f"{len(r['dropped'])} row(s) with missing values left out (as R's na.omit)")
    for col in ("y", "x"):
        rows = _rows(r["dropped"], col, sites)
        assert len(rows) == MISSING["na_per_column"][col]
        assert f"{col!r} at rows {', '.join(map(str, rows))} ({len(rows)} rows)" in note
    assert "unused" not in note and "site" not in note.split(";")[0]
    # x unused: only the rows missing y are left out
    r = MISSING["lmer_y_only"]
    m = lg.lmm(sites, "y ~ 1", groups="site")
    assert m.nobs == r["nobs"]
    np.testing.assert_allclose(m.summary["estimate"].to_numpy(), r["fixef"], rtol=1e-7)
    (note,) = [w for w in m.warnings if "missing" in w]
    assert note.startswith(f"{len(r['dropped'])} row(s)") and "'x'" not in note


def test_gee_leaves_out_the_rows_glm_leaves_out(sites):
    r = MISSING["glm"]
    # gaussian, independence: geeglm's coefficients are glm's
    g = lg.gee(sites, "y ~ x", groups="site", correlation="independence")
    assert g.nobs == r["nobs"]
    np.testing.assert_allclose(g.summary["estimate"].to_numpy(), r["coef"], rtol=1e-8)
    (note,) = [w for w in g.warnings if "missing" in w]
    assert note.startswith(f"{len(r['dropped'])} row(s) with missing values left out")
    assert "__gee_row__" not in note and "completely at random" in note


@pytest.mark.parametrize("fit", [
    lambda d, **kw: lg.lmm(d, "y ~ x", groups="site/subject", **kw),
    lambda d, **kw: lg.lmm(d, "y ~ x", groups="site", **kw),
    lambda d, **kw: lg.gee(d, "y ~ x", groups="site", **kw),
], ids=["lmm-nested", "lmm", "gee"])
def test_missing_raise_refuses_naming_count_columns_and_rows(sites, fit):
    with pytest.raises(ModelSpecError) as exc:
        fit(sites, missing="raise")
    msg = str(exc.value)
    assert "\n" not in msg
    assert "5 row(s) have missing values" in msg
    assert "'y' at rows 2, 16 (2 rows)" in msg and "'x' at rows 7, 29, 40 (3 rows)" in msg
    assert "missing='drop'" in msg
    with pytest.raises(ModelSpecError, match="missing='omit'; use one of 'drop', 'raise'"):
        fit(sites, missing="omit")


def test_missing_raise_fits_complete_data_and_nan_is_missing(sites):
    complete = sites.drop_nulls(["y", "x"])
    m = lg.lmm(complete, "y ~ x", groups="site", missing="raise")
    assert m.nobs == MISSING["lmer_site"]["nobs"] and not any("missing" in w for w in m.warnings)
    # NaN in a float column (pandas' missing value) counts as missing, as R's NA
    pdf = sites.to_pandas()
    assert pdf["y"].isna().sum() == 2
    with pytest.raises(ModelSpecError, match="'y' at rows 2, 16"):
        lg.gee(pdf, "y ~ x", groups="site", missing="raise")

