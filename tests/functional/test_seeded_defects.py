"""Every defect the simulator seeds is caught by the rule meant for it, and nothing
else is flagged on the simulated site files (no false positives)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import cohort
from cohort.simulate import simulate
from cohort.tables import LOAD_ORDER

INTENDED = {
    "score_out_of_range": r"^assessments\.score\.range\.",
    "dose_mg_as_mg_per_kg": r"^treatment_sessions\.dose_per_kg\.iv_racemic$",
    "visit_before_enrolment": r"\.before_enrolment$",
    "visit_after_death": r"\.after_death$",
    "duplicated_visit": r"^assessments\.(duplicate_record|unique_per_day)$",
    "misspelled_instrument": r"^allowed\.instrument$",
    "orphan_participant": r"\.participant\.orphan$",
}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("defects")
    sim = simulate(600, seed=11)
    files = sim.write_site_files(out / "sites", defects=True)
    study = cohort.open(out / "study.duckdb", create=True)
    for table in LOAD_ORDER:
        for site_id, folder in files.site_dirs.items():
            for r in study.load(folder, table=table, mapping=files.specs[site_id]):
                assert r.status == "loaded", r.message
    yield study, files.defects
    study.close()


def _quarantined(study) -> pl.DataFrame:
    return study.query(
        "select u.site_id, q.table_name as table, q.source_line, q.rule from quarantine q "
        "join uploads u using (batch_id)")


def test_every_seeded_defect_is_caught_by_its_rule(loaded) -> None:
    study, defects = loaded
    assert set(defects["kind"]) == set(INTENDED)
    q = _quarantined(study)
    joined = defects.join(q, on=["site_id", "table", "source_line"], how="left")
    missed = joined.filter(pl.col("rule").is_null())
    assert missed.height == 0, missed
    per_defect = joined.with_columns(
        hit=pl.struct("kind", "rule").map_elements(
            lambda r: bool(pl.Series([r["rule"]]).str.contains(INTENDED[r["kind"]])[0]),
            return_dtype=pl.Boolean)
    ).group_by("site_id", "table", "source_line", "kind").agg(pl.col("hit").any())
    wrong = per_defect.filter(~pl.col("hit"))
    assert wrong.height == 0, wrong


def test_nothing_else_is_quarantined(loaded) -> None:
    study, defects = loaded
    q = _quarantined(study)
    flagged = q.join(defects.select("site_id", "table", "source_line"),
                     on=["site_id", "table", "source_line"], how="anti")
    # a duplicated visit with a different score puts its original in quarantine too
    dup_originals = flagged.filter(pl.col("rule") == "assessments.unique_per_day")
    others = flagged.filter(pl.col("rule") != "assessments.unique_per_day")
    assert others.height == 0, others
    assert dup_originals.height <= defects.filter(kind="duplicated_visit").height
    assert study.query("select count(*) as n from validation_findings "
                       "where severity = 'error'")["n"][0] == 0


def test_counts_add_up(loaded) -> None:
    study, _ = loaded
    u = study.uploads()
    assert (u["rows_read"] == u["rows_loaded"] + u["rows_quarantined"]).all()
    assert Path(study.path).exists()
