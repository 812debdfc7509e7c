"""trajectories: time since first dose, baseline, visit number, exposure before each visit."""

from __future__ import annotations

import datetime as dt

import pytest

IV = ("racemic_ketamine", "iv")


def test_exposure_strictly_before_the_visit_and_same_day_sessions(make_study):
    study = make_study(
        participants=[("a", "male", 1970, "2020-01-01", "MDD")],
        sessions=[("a", "2020-01-10", *IV, 35.0, 70.0), ("a", "2020-02-01", *IV, 40.0, 70.0),
                  ("a", "2020-02-01", *IV, 5.0, 70.0)],  # two sessions on one day
        assessments=[("a", "2020-01-10", "MoCA", 27), ("a", "2020-02-01", "MoCA", 26),
                     ("a", "2020-02-02", "MoCA", 25), ("a", "2020-02-02", "MADRS", 12)],
    )
    out = study.derive("trajectories", instruments=["MoCA"])
    D = dt.date.fromisoformat
    assert out.select("assessed_on", "visit", "score", "baseline", "change", "cumulative_dose_mg",
                      "sessions_before").rows() == [
        (D("2020-01-10"), 1, 27.0, 27.0, 0.0, 0.0, 0),   # a session on the visit day comes after
        (D("2020-02-01"), 2, 26.0, 27.0, -1.0, 35.0, 1),
        (D("2020-02-02"), 3, 25.0, 27.0, -2.0, 80.0, 3),
    ]
    assert out["years"].to_list() == pytest.approx([0.0, 22 / 365.25, 23 / 365.25])
    assert out["cumulative_dose_g"].to_list() == pytest.approx([0.0, 0.035, 0.080])
    assert study.derive("trajectories").height == 4


def test_participant_without_sessions_has_no_trajectory(make_study):
    study = make_study(participants=[("a", "male", 1970, "2020-01-01", "MDD")],
                       assessments=[("a", "2020-01-10", "MoCA", 27)])
    assert study.derive("trajectories").height == 0
