"""Formula handling shared by the longitudinal models: data in, design matrices out.

Formulas are parsed with formulaic; the intercept is named ``(Intercept)`` as in R,
and ``ns(x, df=...)`` gives R's natural cubic spline basis (``splines::ns``), with
the knots kept for prediction on new data.

Levels of categorical covariates follow one rule, whatever the row order (see
:mod:`cohort._levels`): strings sorted as R's ``factor()`` in the C locale, polars
``Enum`` and pandas ordered Categoricals in their declared order, other Categoricals
sorted as strings; the first level is the reference unless ``C(x, reference="b")`` or
``treatment(x, reference="b")`` names another (the columns are then ``C(x)[T.a]``).
``offset(expr)`` (gee only) adds ``expr`` to the linear predictor with its coefficient
fixed at 1, as R's ``offset()`` (see :mod:`cohort._offset`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from formulaic import Formula, ModelSpec, model_matrix
from formulaic.materializers import FactorValues
from formulaic.transforms import stateful_transform
from scipy.interpolate import BSpline

from cohort._levels import pandas_with_levels, readable_name, rewrite_reference
from cohort._missing import check_missing, incomplete_rows, rows_text
from cohort._offset import offset_columns, offset_values, split_offsets
from cohort.errors import ModelSpecError
from cohort.frames import as_polars

__all__ = ["ns", "DesignInfo", "build_design"]

INTERCEPT = "(Intercept)"


def _spline_design(knots: np.ndarray, x: np.ndarray, deriv: int = 0) -> np.ndarray:
    """Cubic B-spline basis (as R's ``splines::splineDesign(knots, x, 4, deriv)``)."""
    nb = len(knots) - 4
    spline = BSpline(knots, np.eye(nb), 3, extrapolate=True)
    if deriv:
        spline = spline.derivative(deriv)
    return np.asarray(spline(np.asarray(x, dtype=float)), dtype=float).reshape(len(x), nb)


def ns_basis(
    x: np.ndarray,
    *,
    knots: Sequence[float],
    boundary: tuple[float, float],
    intercept: bool = False,
) -> np.ndarray:
    """R's ``splines::ns`` basis at ``x`` for given interior and boundary knots."""
    x = np.asarray(x, dtype=float)
    lo, hi = boundary
    aknots = np.sort(np.concatenate([[lo] * 4, np.asarray(knots, dtype=float), [hi] * 4]))
    nb = len(aknots) - 4
    basis = np.zeros((len(x), nb))
    below, above = x < lo, x > hi
    inside = ~(below | above)
    if inside.any():
        basis[inside] = _spline_design(aknots, x[inside])
    for mask, pivot in ((below, lo), (above, hi)):
        if mask.any():
            tt = np.vstack([_spline_design(aknots, [pivot]), _spline_design(aknots, [pivot], 1)])
            basis[mask] = np.column_stack([np.ones(mask.sum()), x[mask] - pivot]) @ tt
    const = _spline_design(aknots, [lo, hi], 2)
    if not intercept:
        const, basis = const[:, 1:], basis[:, 1:]
    q, _ = np.linalg.qr(const.T, mode="complete")
    return basis @ q[:, 2:]


@stateful_transform
def ns(
    x: Any,
    df: int | None = None,
    knots: Iterable[float] | None = None,
    intercept: bool = False,
    boundary_knots: tuple[float, float] | None = None,
    _state: dict = {},  # noqa: B006 (formulaic replaces it with the transform state)
) -> FactorValues:
    """Natural cubic spline basis, as R's ``splines::ns`` (use inside formulas).

    Knots default to quantiles of ``x`` (``df - 1 - intercept`` interior knots) and
    the boundary knots to its range; both are remembered for prediction.

    Examples
    --------
    >>> import numpy as np
    >>> from formulaic import model_matrix
    >>> import pandas as pd
    >>> from cohort.longitudinal import ns
    >>> mm = model_matrix("y ~ ns(t, df=3)", pd.DataFrame({"y": [1.0] * 6, "t": np.arange(6.0)}),
    ...                   context={"ns": ns})
    >>> mm.rhs.shape
    (6, 4)
    """
    x = np.asarray(x, dtype=float)
    if "knots" not in _state:
        if boundary_knots is None:
            boundary_knots = (float(np.nanmin(x)), float(np.nanmax(x)))
        lo, hi = boundary_knots
        if knots is None:
            n_inner = (df or 1) - 1 - int(intercept)
            inside = x[(x >= lo) & (x <= hi)]
            probs = np.linspace(0, 1, n_inner + 2)[1:-1]
            knots = np.quantile(inside, probs).tolist() if n_inner > 0 else []
        _state["knots"] = [float(k) for k in knots]
        _state["boundary"] = [float(lo), float(hi)]
    basis = ns_basis(x, knots=_state["knots"], boundary=tuple(_state["boundary"]), intercept=intercept)
    return FactorValues(
        {i + 1: basis[:, i] for i in range(basis.shape[1])},
        kind="numerical",
        spans_intercept=intercept,
        drop_field=None,
        format="{name}[{field}]",
        encoded=False,
    )


CONTEXT = {"ns": ns}


def _columns_in(formula: str, frame_columns: Sequence[str]) -> list[str]:
    needed = Formula(formula).required_variables
    return [c for c in frame_columns if c in needed]


def _complete_cases(frame: pl.DataFrame, used: Sequence[str], *, model: str,
                    missing: str) -> tuple[pl.DataFrame, str | None]:
    """Rows of ``frame`` complete in ``used``, as R's ``na.omit`` (see :mod:`cohort._missing`)."""
    why = ("valid under the likelihood if visits are missing at random" if model == "lmm" else
           "the estimates stay valid if visits are missing completely at random")
    bad, note = incomplete_rows(frame, used, rows=frame["__row__"].to_numpy(), model=model,
                                missing=missing, why=why)
    return (frame.filter(pl.Series(~bad)) if note else frame), note


def _prior_weights(frame: pl.DataFrame, column: str, *, model: str) -> np.ndarray:
    """The weights of the complete rows; negative or infinite ones (and zero ones in lmm) are refused.

    lmer and geeglm (through glm.fit) refuse negative weights; an infinite one fails in both.
    A zero weight keeps the row in the fit in both: lmer counts it in ``nobs`` and the REML
    degrees of freedom, so lmm refuses it (it is not dropping the row); geeglm keeps it in its
    cluster's working correlation, and gee follows geeglm (accepted; the caller notes it).
    A missing weight is a missing value (handled before, as na.omit).
    """
    if not frame.schema[column].is_numeric():
        raise ModelSpecError(f"{model}: weights column {column!r} is {frame.schema[column]}; give numbers > 0")
    w = frame[column].cast(pl.Float64).to_numpy()
    zero_ok = model == "gee"
    bad = ~(np.isfinite(w) & ((w >= 0) if zero_ok else (w > 0)))
    if bad.any():
        kind = "negative or infinite" if zero_ok else "zero, negative or infinite"
        why = ("geeglm refuses negative weights" if zero_ok else
               "lmer refuses negative weights, and a zero weight does not drop the row")
        raise ModelSpecError(
            f"{model}: weights column {column!r} has {int(bad.sum())} row(s) with a {kind} "
            f"weight (at {rows_text(frame['__row__'].to_numpy()[bad])}); weights must be "
            f"{'>= 0' if zero_ok else '> 0'} ({why}): remove those rows or fix the weights"
        )
    return w


def _rename(cols: Sequence[str]) -> list[str]:
    return [INTERCEPT if c == "Intercept" else readable_name(c) for c in cols]


@dataclass(frozen=True)
class DesignInfo:
    """What is needed to rebuild the design matrices on new data (and the fit's offset, or None)."""

    fixed_spec: Any
    random_spec: Any | None
    fixed_names: tuple[str, ...]
    random_names: tuple[str, ...]
    response: str
    group_codes: dict = field(default_factory=dict, repr=False)
    offset: np.ndarray | None = field(default=None, repr=False)
    weights: np.ndarray | None = field(default=None, repr=False)  # prior weights of the rows used

    def fixed(self, data: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.fixed_spec.get_model_matrix(data, context=CONTEXT), dtype=float)

    def random(self, data: pd.DataFrame) -> np.ndarray:
        assert self.random_spec is not None
        return np.asarray(self.random_spec.get_model_matrix(data, context=CONTEXT), dtype=float)


def build_design(
    data: pl.DataFrame,
    formula: str,
    *,
    random: str | None,
    group_cols: Sequence[str],
    model: str,
    missing: str = "drop",
    weights: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, pd.DataFrame, DesignInfo, list[str]]:
    """Parse formulas, drop incomplete rows (reported) or refuse them, build y, X and Z.

    Returns y, X, Z, the complete-case pandas frame, the design info (with the
    ``offset(...)`` terms summed in ``info.offset``) and notes.
    """
    check_missing(missing, model=model)
    if "~" not in formula:
        raise ModelSpecError(
            f"{model}: formula {formula!r} has no '~'; write it as 'response ~ terms', e.g. 'score ~ years'"
        )
    formula, offsets = split_offsets(rewrite_reference(formula))
    if offsets and model != "gee":
        raise ModelSpecError(f"{model}: offset({offsets[0]}) is not available; offset() is supported by gee and cox")
    for g in group_cols:
        if g not in data.columns:
            raise ModelSpecError(
                f"{model}: grouping column {g!r} is not in the data (columns: {', '.join(data.columns)})"
            )
    try:
        used = _columns_in(formula, data.columns)
        off_cols = offset_columns(offsets, data.columns)
        used += [c for c in off_cols if c not in used]
        if random is not None:
            used += [c for c in _columns_in(random, data.columns) if c not in used]
    except Exception as exc:  # noqa: BLE001
        raise ModelSpecError(f"{model}: cannot parse formula {formula!r}: {exc}") from None
    response = formula.split("~")[0].strip()
    if response not in data.columns:
        raise ModelSpecError(
            f"{model}: response column {response!r} is not in the data (columns: {', '.join(data.columns)})"
        )
    if weights is not None and weights not in data.columns:
        raise ModelSpecError(
            f"{model}: weights column {weights!r} is not in the data (columns: {', '.join(data.columns)})"
        )
    used = list(dict.fromkeys([response, *used, *group_cols, *([weights] if weights else [])]))
    frame = data.select(used).with_row_index("__row__")
    frame, note = _complete_cases(frame, used, model=model, missing=missing)
    notes: list[str] = [note] if note else []
    w = None if weights is None else _prior_weights(frame, weights, model=model)
    if frame.height == 0:
        raise ModelSpecError(f"{model}: no complete rows in {', '.join(used)}")
    codes: dict[str, tuple[list[str], np.ndarray]] = {}
    for g in group_cols:
        key = frame[g].cast(pl.String)
        codes[g] = (key.unique().sort().to_list(), (key.rank("dense") - 1).cast(pl.Int64).to_numpy())
    in_formulas = set(_columns_in(formula, frame.columns)) | set(off_cols)
    if random is not None:
        in_formulas |= set(_columns_in(random, frame.columns))
    pdf = pandas_with_levels(frame, [c for c in used if c in in_formulas])
    offset = offset_values(pdf, offsets, rows=frame["__row__"].to_numpy(), context=CONTEXT)
    try:
        mm = model_matrix(formula, pdf, context=CONTEXT)
    except Exception as exc:  # noqa: BLE001
        raise ModelSpecError(f"{model}: cannot build the design of {formula!r}: {exc}") from None
    y = np.asarray(mm.lhs, dtype=float).ravel()
    X = np.asarray(mm.rhs, dtype=float)
    fixed_names = tuple(_rename(list(mm.rhs.columns)))
    rank = np.linalg.matrix_rank(X)
    if rank < X.shape[1]:
        raise ModelSpecError(
            f"{model}: the fixed-effects design of {formula!r} is rank deficient ({rank} of "
            f"{X.shape[1]} columns: {', '.join(fixed_names)}); remove collinear terms"
        )
    Z = None
    random_spec = None
    random_names: tuple[str, ...] = ()
    if random is not None:
        rf = random.strip()
        rf = rf if rf.startswith("~") else "~" + rf
        try:
            mz = model_matrix(rf, pdf, context=CONTEXT)
        except Exception as exc:  # noqa: BLE001
            raise ModelSpecError(f"{model}: cannot build the random-effects design {random!r}: {exc}") from None
        Z = np.asarray(mz, dtype=float)
        random_spec = mz.model_spec
        random_names = tuple(_rename(list(mz.columns)))
        if Z.shape[1] == 0:
            raise ModelSpecError(f"{model}: random={random!r} has no terms; use random='~1' for intercepts")
    info = DesignInfo(
        fixed_spec=mm.rhs.model_spec,
        random_spec=random_spec,
        fixed_names=fixed_names,
        random_names=random_names,
        response=response,
        group_codes=codes,
        offset=offset,
        weights=w,
    )
    return y, X, Z, pdf, info, notes


def new_frame(info: DesignInfo, newdata: Any, group_cols: Sequence[str]) -> pd.DataFrame:
    """New data as pandas with grouping columns as strings."""
    pdf = as_polars(newdata, what="newdata").to_pandas()
    for g in group_cols:
        if g in pdf.columns:
            pdf[g] = pdf[g].astype(str)
    return pdf


_ = ModelSpec  # re-exported type for annotations
