"""Formula spellings for categorical covariates: formulaic's contrasts and treatment(x, reference=...)
give the same columns, names and R estimates (tests/reference/survival/cox.json, veteran_celltype)."""

from __future__ import annotations

import numpy as np
import pytest
from survival_ref import load_data, load_ref

from cohort import survival as sv
from cohort.errors import ModelSpecError
from cohort.survival.formula import design_matrix

REF = load_ref("cox")["veteran_celltype"]
BASE = "trt + karno + diagtime + age + prior + "
NAMES = ["trt", "karno", "diagtime", "age", "prior", "C(celltype)[T.adeno]", "C(celltype)[T.large]",
         "C(celltype)[T.smallcell]"]


@pytest.mark.parametrize(
    "spelling",
    [
        "treatment(celltype, reference='squamous')",
        'treatment(celltype, reference="squamous")',
        "treatment(celltype, base='squamous')",
        "treatment(celltype, 'squamous')",
        "C(celltype, contr.treatment(base='squamous'))",
        "C(celltype, contr.treatment('squamous'))",
        "C(celltype, Treatment(reference='squamous'))",
    ],
)
def test_treatment_spellings_match_r(spelling: str) -> None:
    fit = sv.cox(load_data("veteran"), BASE + spelling, time="time", event="status")
    assert list(fit.names) == NAMES
    assert list(fit.terms) == ["trt", "karno", "diagtime", "age", "prior", "C(celltype)"]
    np.testing.assert_allclose(fit.coef, REF["estimate"], rtol=1e-6)
    np.testing.assert_allclose(fit.summary["std_error"].to_numpy(), REF["std_error"], rtol=1e-6)


def test_treatment_default_reference_and_interactions() -> None:
    vet = load_data("veteran")
    # without a reference the first level (sorted) is the reference, as C(x)
    assert design_matrix(vet, "treatment(celltype)").names == design_matrix(vet, "C(celltype)").names
    inter = design_matrix(vet, "trt * treatment(celltype, reference='squamous')").names
    assert inter[-1] == "trt:C(celltype)[T.smallcell]" and len(inter) == 7
    # numeric codes and backticked names
    lung = load_data("lung")
    assert design_matrix(lung, "age + treatment(`ph.ecog`, reference=1)").names == (
        "age", "C(`ph.ecog`)[T.0]", "C(`ph.ecog`)[T.2]", "C(`ph.ecog`)[T.3]")
    # contr.treatment / Treatment inside C() are not rewritten twice
    assert design_matrix(vet, "C(celltype, contr.treatment(base='large'))").names[0] == "C(celltype)[T.adeno]"
    with pytest.raises(ModelSpecError, match="cannot build"):
        design_matrix(vet, "treatment(celltype, reference='nope')")
