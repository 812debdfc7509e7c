"""Properties of the derivations on random cohorts (hypothesis): follow-up adds up, intervals are
well formed and never overlap, every event is counted once."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spec_helpers import load_frames

import cohort
from cohort.simulate import simulate

BASE = dt.date(2020, 1, 1)
SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def day(n: int) -> dt.date:
    return BASE + dt.timedelta(days=n)


@st.composite
def cohorts(draw):
    """A few participants with sessions, MADRS, events and exits crowded into 60 days, so that
    ties, same-day records and records on the origin or exit day are common."""
    n = draw(st.integers(1, 6))
    ids = [f"p{i}" for i in range(n)]
    days = st.integers(0, 60)
    rows = {t: [] for t in ("participants", "treatment_sessions", "assessments", "events", "exits")}
    for pid in ids:
        rows["participants"].append({"participant_id": pid, "site_id": "S", "sex": "female",
                                     "birth_year": 1970, "enrolled_on": day(0), "diagnosis": "TRD"})
        for d in draw(st.lists(days, max_size=6)):
            rows["treatment_sessions"].append({
                "participant_id": pid, "session_date": day(d), "drug": "racemic_ketamine",
                "route": "iv", "dose_mg": draw(st.sampled_from([35.0, 500.0, 1200.0])),
                "weight_kg": 70.0})
        for d in draw(st.lists(days, max_size=4)):
            rows["assessments"].append({"participant_id": pid, "assessed_on": day(d),
                                        "instrument": "MADRS", "score": float(draw(days))})
        for d in draw(st.lists(days, max_size=4)):
            rows["events"].append({"participant_id": pid, "event_date": day(d),
                                   "event_type": draw(st.sampled_from(["relapse", "remission"]))})
        if draw(st.booleans()):
            rows["exits"].append({"participant_id": pid, "exit_date": day(draw(days)),
                                  "reason": draw(st.sampled_from(["completed", "withdrew", "died"]))})
    schemas = {t: {c.name: c.dtype for c in cohort.tables.TABLES[t]} for t in rows}
    return {t: pl.DataFrame(r, schema={k: v for k, v in schemas[t].items()
                                       if not r or k in r[0]}) for t, r in rows.items()}


def with_study(tables, check) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        study = cohort.open(Path(tmp) / "s.duckdb", create=True)
        try:
            load_frames(study, tables)
            check(study)
        finally:
            study.close()


def assert_invariants(study, admin_end="2020-02-15") -> None:
    tte = study.derive("time_to_event", admin_end=admin_end)
    followed = tte.filter(pl.col("time_days") > 0)

    # total person-time is the sum of follow-up; events are counted once
    pt = study.derive("person_time", admin_end=admin_end, dose_bands_g=[0.5, 1, 2])
    assert pt["person_days"].sum() == tte["time_days"].sum()
    assert pt["events"].sum() == tte["event"].sum()
    assert (pt["person_days"] > 0).all()

    for recurrent in (False, True):
        cp = study.derive("counting_process", admin_end=admin_end, recurrent=recurrent)
        assert (cp["tstart"] < cp["tstop"]).all()
        prev = cp.with_columns(prev=pl.col("tstop").shift(1).over("participant_id"))
        # consecutive intervals of one participant meet exactly: no overlap, no gap
        assert prev.filter(pl.col("prev").is_not_null() & (pl.col("prev") != pl.col("tstart"))).height == 0
        assert cp.filter(pl.col("tstart") == 0).height == followed.height
        total = cp.group_by("participant_id").agg(pl.col("tstop").max(), pl.col("event").sum())
        diag = {(s, c): n for s, c, n, _, _ in study.derive(
            "counting_process_diagnostics", admin_end=admin_end, recurrent=recurrent).rows()}
        assert diag["intervals", "overlapping the previous interval"] == 0
        assert diag["intervals", "gap after the previous interval"] == 0
        assert diag["intervals", "intervals"] == cp.height
        if not recurrent:
            assert dict(total.select("participant_id", "tstop").rows()) == dict(
                followed.select("participant_id", "time_days").rows())
            assert cp["event"].sum() == followed["event"].sum()
            assert (total["event"] <= 1).all()
        else:
            rec = study.derive("recurrent_episodes", admin_end=admin_end)
            assert cp["event"].sum() == rec["event"].sum()
            assert (rec["gap_time"] > 0).all()
            assert (rec["tstop"] - rec["tstart"] == rec["gap_time"]).all()

    cr = study.derive("competing_risks", admin_end=admin_end, causes=["relapse", "death"])
    assert cr.height == tte.height
    assert (cr["cause"] > 0).sum() >= tte["event"].sum()
    assert (cr["time_days"] <= tte["time_days"]).all()

    lm = study.derive("landmark", admin_end=admin_end, landmarks=[0, 1])
    assert (lm["time_days"] > 0).all()
    assert lm.filter(pl.col("landmark_months") == 0).height == followed.height


@SETTINGS
@given(cohorts())
def test_invariants_on_crowded_random_rows(tables):
    with_study(tables, assert_invariants)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(20, 80), st.integers(0, 10_000))
def test_invariants_on_simulated_cohorts(n, seed):
    with_study(dict(simulate(n, seed=seed, years=2).tables),
               lambda study: assert_invariants(study, admin_end="2020-06-30"))
