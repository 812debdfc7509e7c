"""Study analyses: reliable change (cognition) and dose escalation (tolerance)."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from cohort.errors import ModelSpecError
from cohort.frames import as_polars

__all__ = ["reliable_change", "dose_escalation"]


def _need(frame: pl.DataFrame, cols: list[str], what: str) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ModelSpecError(f"{what}: column(s) {', '.join(missing)} not in the data (columns: {', '.join(frame.columns)})")


def reliable_change(
    data: Any,
    *,
    baseline: str,
    follow_up: str,
    reliability: float,
    sd_baseline: float | None = None,
    sd_follow_up: float | None = None,
    practice_effect: float = 0.0,
    method: str = "chelune",
    higher_is_better: bool = True,
    z: float = 1.96,
) -> pl.DataFrame:
    """Reliable change index per participant, with practice-effect correction.

    ``"jacobson-truax"``: ``RCI = (x2 - x1 - practice) / sqrt(2 SEM^2)``, ``SEM = SD1 sqrt(1 - r)``.
    ``"chelune"``: ``RCI = ((x2 - x1) - practice) / sqrt(SEM1^2 + SEM2^2)`` with ``SEM_i = SD_i sqrt(1-r)``
    (the practice effect is the mean retest gain in a control or normative sample).
    SDs default to the sample SDs of the two columns. ``change`` is ``"decline"`` when the RCI
    passes ``-z`` in the worse direction, ``"improvement"`` past ``+z``, else ``"no reliable change"``.

    Examples
    --------
    >>> import polars as pl
    >>> d = pl.DataFrame({"moca0": [26.0, 27, 25, 28], "moca2": [22.0, 27, 26, 28]})
    >>> reliable_change(d, baseline="moca0", follow_up="moca2", reliability=0.8,
    ...                 sd_baseline=2.5, practice_effect=0.5)["change"].to_list()
    ['decline', 'no reliable change', 'no reliable change', 'no reliable change']
    """
    frame = as_polars(data)
    _need(frame, [baseline, follow_up], "reliable_change")
    if not 0 <= reliability < 1:
        raise ModelSpecError(f"reliable_change: reliability={reliability} must be in [0, 1)")
    if method not in ("chelune", "jacobson-truax"):
        raise ModelSpecError(f"reliable_change: method={method!r}; use 'chelune' or 'jacobson-truax'")
    x1 = frame[baseline].cast(pl.Float64).to_numpy()
    x2 = frame[follow_up].cast(pl.Float64).to_numpy()
    sd1 = float(np.nanstd(x1, ddof=1)) if sd_baseline is None else float(sd_baseline)
    sd2 = float(np.nanstd(x2, ddof=1)) if sd_follow_up is None else float(sd_follow_up)
    sem1 = sd1 * np.sqrt(1 - reliability)
    sem2 = sd2 * np.sqrt(1 - reliability)
    s_diff = np.sqrt(2 * sem1**2) if method == "jacobson-truax" else np.sqrt(sem1**2 + sem2**2)
    rci = (x2 - x1 - practice_effect) / s_diff
    signed = rci if higher_is_better else -rci
    change = np.where(np.isnan(rci), None, np.where(signed <= -z, "decline", np.where(signed >= z, "improvement",
                                                                                    "no reliable change")))
    return frame.with_columns(
        pl.Series("rci", rci),
        pl.Series("change", change.tolist(), dtype=pl.String),
        pl.Series("p_value", 2 * stats.norm.sf(np.abs(rci))),
    )


def dose_escalation(
    sessions: Any,
    *,
    participant: str = "participant_id",
    time: str = "session_date",
    dose: str = "dose_mg_per_kg",
    threshold: float = 0.25,
    baseline_sessions: int = 1,
) -> pl.DataFrame:
    """Time to the first dose per kg at least ``threshold`` (25%) above a participant's baseline.

    The baseline is the mean dose of the first ``baseline_sessions`` sessions. Participants
    who never escalate are censored at their last session. Time is in days when ``time`` is a
    date/datetime column, otherwise in its own units.

    Returns one row per participant: participant, baseline_dose, max_ratio, event (bool),
    time (from the first session), escalation_dose.

    Examples
    --------
    >>> import polars as pl
    >>> s = pl.DataFrame({"participant_id": [1, 1, 1, 2, 2], "session_date": [0, 30, 60, 0, 30],
    ...                   "dose_mg_per_kg": [0.5, 0.55, 0.7, 0.5, 0.5]})
    >>> dose_escalation(s)["event"].to_list()
    [True, False]
    """
    frame = as_polars(sessions)
    _need(frame, [participant, time, dose], "dose_escalation")
    if threshold <= 0:
        raise ModelSpecError(f"dose_escalation: threshold={threshold} must be positive (0.25 = 25%)")
    bad = frame.with_row_index("row").filter(pl.col(dose).is_null() | (pl.col(dose) <= 0))
    if bad.height:
        rows = bad["row"].to_list()[:10]
        raise ModelSpecError(f"dose_escalation: column {dose!r} has missing or non-positive doses at rows {rows}")
    f = frame.sort([participant, time])
    t = pl.col(time)
    elapsed = (t - t.first().over(participant))
    if frame.schema[time].is_temporal():
        elapsed = elapsed.dt.total_days() if frame.schema[time] != pl.Date else (t - t.first().over(participant)).dt.total_days()
    f = f.with_columns(
        elapsed.cast(pl.Float64).alias("__t"),
        pl.int_range(pl.len()).over(participant).alias("__k"),
    )
    f = f.with_columns(
        pl.col(dose).filter(pl.col("__k") < baseline_sessions).mean().over(participant).alias("baseline_dose")
    ).with_columns((pl.col(dose) / pl.col("baseline_dose")).alias("__ratio"))
    f = f.with_columns(((pl.col("__ratio") >= 1 + threshold - 1e-12) & (pl.col("__k") >= baseline_sessions))
                       .alias("__hit"))
    out = f.group_by(participant, maintain_order=True).agg(
        pl.col("baseline_dose").first(),
        pl.col("__ratio").max().alias("max_ratio"),
        pl.col("__hit").any().alias("event"),
        pl.when(pl.col("__hit").any())
        .then(pl.col("__t").filter(pl.col("__hit")).first())
        .otherwise(pl.col("__t").last())
        .alias("time"),
        pl.col(dose).filter(pl.col("__hit")).first().alias("escalation_dose"),
    )
    return out
