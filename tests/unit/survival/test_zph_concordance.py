"""cox.zph with every transform and concordance with case weights, against R
(tests/reference/survival/zph_concordance.json)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from survival_ref import load_data, load_ref

from cohort import survival as sv
from cohort.errors import ModelSpecError

REF = load_ref("zph_concordance")


def _rossi() -> pl.DataFrame:
    return load_data("rossi").with_columns(w=1 + (pl.col("prio") % 3) / 2, w2=1 + (pl.col("age") % 3))


CASES = {
    "rossi": lambda: sv.cox(_rossi(), "fin + age + prio", time="week", event="arrest"),
    "rossi_weights": lambda: sv.cox(_rossi(), "fin + age + prio", time="week", event="arrest", weights="w"),
    "rossi_int_weights": lambda: sv.cox(_rossi(), "fin + age + prio", time="week", event="arrest", weights="w2"),
    "heart": lambda: sv.cox(load_data("heart"), "age + year + surgery + transplant", start="start", time="stop",
                            event="event"),
    "cgd_weights_strata": lambda: sv.cox(load_data("cgd").with_columns(w=1 + (pl.col("id") % 4) / 4), "treat + age",
                                         start="tstart", time="tstop", event="status", weights="w",
                                         strata="hos_cat"),
    "veteran_strata": lambda: sv.cox(load_data("veteran"), "karno + age + treatment(celltype, reference='squamous')",
                                     time="time", event="status", strata="trt"),
}
_fits: dict[str, sv.CoxFit] = {}


def _fit(case: str) -> sv.CoxFit:
    if case not in _fits:
        _fits[case] = CASES[case]()
    return _fits[case]


@pytest.mark.parametrize("case", sorted(CASES))
def test_concordance_matches_r(case: str) -> None:
    fit, ref = _fit(case), REF[case]["concordance"]
    assert fit.concordance == pytest.approx(ref["concordance"], rel=1e-12)
    got = fit.concordance_detail
    for k in ("concordant", "discordant", "tied_x", "tied_y", "tied_xy"):
        assert got[k] == pytest.approx(ref["counts"][k.replace("_", ".")], rel=1e-12), k


@pytest.mark.parametrize("transform", ["identity", "rank", "log", "km"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_cox_zph_transforms_match_r(case: str, transform: str) -> None:
    z = _fit(case).check_proportional_hazards(transform=transform)
    ref = REF[case]["zph"][transform]
    assert z["term"].to_list()[:-1] == [t.replace("celltype", "C(celltype)") for t in ref["term"][:-1]]
    np.testing.assert_allclose(z["chisq"].to_numpy(), ref["chisq"], rtol=1e-8)
    np.testing.assert_allclose(z["df"].to_numpy(), ref["df"])
    np.testing.assert_allclose(z["p_value"].to_numpy(), ref["p"], rtol=1e-8)


def test_unknown_transform() -> None:
    with pytest.raises(ModelSpecError, match="'km', 'rank', 'identity' or 'log'"):
        _fit("rossi").check_proportional_hazards(transform="sqrt")
