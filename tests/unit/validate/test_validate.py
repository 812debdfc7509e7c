"""Batch-level outcomes, row-level completeness, broken suites, study suites, reports."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from validate_helpers import TODAY

from cohort.errors import UserError
from cohort.validate import (
    ConfigError,
    SuiteError,
    ValidationConfig,
    ValidationReport,
    load_suites,
    validate_relation,
)

CFG = ValidationConfig(today=TODAY)


def _suite_file(folder: Path, name: str, table: str, expectations: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps({"name": name, "meta": {"cohort": {"table": table}},
                                "expectations": expectations}))
    return path


def test_every_failing_row_is_identified_beyond_gx_sample(vstudy):
    rows = [{"participant_id": "P001", "instrument": "MoCA", "score": 31.0,
             "assessed_on": dt.date(2021, 2, 1) + dt.timedelta(days=i)} for i in range(500)]
    rows += [{"participant_id": f"X{i}", "assessed_on": dt.date(2021, 2, 1)} for i in range(300)]
    relation, _ = vstudy.stage("assessments", rows)
    report = validate_relation(vstudy.con, relation, "assessments",
                               config=ValidationConfig(today=TODAY, fatal_error_fraction=1.0))
    rng = report.findings.filter(pl.col("rule") == "assessments.score.range.MoCA")
    assert sorted(rng.get_column("source_line").to_list()) == list(range(2, 502))
    orphans = report.findings.filter(pl.col("rule") == "assessments.participant.orphan")
    assert sorted(orphans.get_column("source_line").to_list()) == list(range(502, 802))
    assert set(orphans.get_column("value")) == {f"X{i}" for i in range(300)}
    assert report.rows_to_quarantine == list(range(2, 802))
    assert report.status == "errors"
    # GX itself only sampled 20 of them
    gx = [r for r in report.gx_results["results"]
          if r["expectation_config"]["meta"]["rule"] == "assessments.score.range.MoCA"][0]
    assert gx["result"]["unexpected_count"] == 500
    assert len(gx["result"]["partial_unexpected_list"]) == 20


def test_empty_batch_is_fatal(vstudy):
    relation, _ = vstudy.stage("exits", [])
    report = validate_relation(vstudy.con, relation, "exits", config=CFG)
    assert report.status == "fatal"
    assert report.exit_code == 2
    assert report.findings.get_column("rule").to_list() == ["exits.batch.not_empty"]
    assert report.findings.get_column("severity").to_list() == ["fatal"]
    assert any("exits.batch.not_empty" in r for r in report.fatal_reasons)


def test_error_share_above_threshold_is_fatal(vstudy):
    rows = [{"participant_id": "P999"}, {"participant_id": "P001"}, {"participant_id": "P001",
                                                                      "assessed_on": dt.date(2021, 3, 1)}]
    relation, _ = vstudy.stage("assessments", rows)
    loose = validate_relation(vstudy.con, relation, "assessments",
                              config=ValidationConfig(today=TODAY, fatal_error_fraction=0.5))
    assert loose.status == "errors" and loose.exit_code == 1
    assert loose.rows_to_quarantine == [2]
    strict = validate_relation(vstudy.con, relation, "assessments",
                               config=ValidationConfig(today=TODAY, fatal_error_fraction=0.2))
    assert strict.status == "fatal"
    assert "1 of 3 rows" in strict.fatal_reasons[0]


def test_row_count_outside_expected_range_is_fatal(vstudy):
    relation, _ = vstudy.stage("assessments", [{"participant_id": "P001"}])
    cfg = ValidationConfig(today=TODAY, row_count_ranges={"assessments": (10, None)})
    report = validate_relation(vstudy.con, relation, "assessments", config=cfg)
    assert report.status == "fatal"
    assert "row count 1 outside" in report.fatal_reasons[0]


def test_site_missingness_threshold_warns_per_site(vstudy):
    rows = [{"participant_id": "P001", "weight_kg": None, "drug": "esketamine",
             "route": "intranasal", "dose_mg": 56.0, "session_date": dt.date(2021, 3, d)}
            for d in range(1, 4)]
    rows.append({"participant_id": "P002", "drug": "esketamine", "route": "intranasal",
                 "dose_mg": 56.0, "session_date": dt.date(2021, 3, 1)})
    relation, _ = vstudy.stage("treatment_sessions", rows)
    cfg = ValidationConfig(today=TODAY, site_missingness={"treatment_sessions.weight_kg": 0.5})
    report = validate_relation(vstudy.con, relation, "treatment_sessions", config=cfg)
    found = report.findings.filter(pl.col("rule") == "treatment_sessions.weight_kg.site_missingness")
    assert found.get_column("value").to_list() == ["S1: 3/3 missing (100%)"]
    assert found.get_column("severity").to_list() == ["warning"]
    assert report.status == "warnings" and report.exit_code == 0


def test_a_suite_naming_a_missing_column_is_an_error(vstudy, tmp_path):
    path = _suite_file(tmp_path / "study_suites", "extra.json", "assessments", [{
        "type": "expect_column_values_to_not_be_null", "kwargs": {"column": "scroe"},
        "meta": {"rule": "study.score.present", "severity": "error", "message": "m"}}])
    relation, _ = vstudy.stage("assessments", [{}])
    with pytest.raises(SuiteError) as err:
        validate_relation(vstudy.con, relation, "assessments", config=CFG,
                          suites_dirs=[path.parent])
    assert isinstance(err.value, UserError)
    assert str(path) in str(err.value) and "study.score.present" in str(err.value)
    assert "scroe" in str(err.value)


def test_sql_rule_with_a_bad_column_is_an_error(vstudy, tmp_path):
    path = _suite_file(tmp_path / "s", "sql.json", "assessments", [{
        "type": "unexpected_rows_expectation",
        "kwargs": {"unexpected_rows_query": "select * from {batch} where scroe > 3"},
        "meta": {"rule": "study.sql", "severity": "error", "message": "m"}}])
    relation, _ = vstudy.stage("assessments", [{}])
    with pytest.raises(SuiteError, match=r"sql\.json.*study\.sql.*scroe"):
        validate_relation(vstudy.con, relation, "assessments", config=CFG,
                          suites_dirs=[path.parent])


@pytest.mark.parametrize("meta, match", [
    ({"rule": "r", "severity": "error"}, "meta lacks message"),
    ({"rule": "r", "severity": "severe", "message": "m"}, "severity must be one of"),
])
def test_incomplete_rule_metadata_is_an_error(tmp_path, meta, match):
    _suite_file(tmp_path, "bad.json", "assessments", [{
        "type": "expect_column_values_to_not_be_null", "kwargs": {"column": "score"},
        "meta": meta}])
    with pytest.raises(SuiteError, match=match):
        load_suites("assessments", suites_dirs=[tmp_path])


def test_study_suite_adds_overrides_and_disables_rules(vstudy, tmp_path):
    folder = tmp_path / "study"
    _suite_file(folder, "local.json", "assessments", [
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "score", "max_value": 40,
                    "row_condition": {"type": "comparison", "column": {"name": "instrument"},
                                      "operator": "==", "parameter": "MADRS"}},
         "meta": {"rule": "study.madrs.ceiling", "severity": "warning",
                  "message": "MADRS above 40 at this site: double-check"}},
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "score", "min_value": 0, "max_value": 40,
                    "row_condition": {"type": "comparison", "column": {"name": "instrument"},
                                      "operator": "==", "parameter": "CADSS"}},
         "meta": {"rule": "assessments.score.range.CADSS", "severity": "error",
                  "message": "this study's CADSS version scores 0-40"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "score"},
         "meta": {"rule": "assessments.moca.drop", "severity": "warning", "message": "off",
                  "enabled": False}},
    ])
    rows = [{"participant_id": "P001", "instrument": "MADRS", "score": 45.0},
            {"participant_id": "P001", "instrument": "CADSS", "score": 50.0},
            {"participant_id": "P001", "instrument": "MoCA", "score": 12.0,
             "assessed_on": dt.date(2021, 2, 20)}]
    relation, _ = vstudy.stage("assessments", rows)
    report = validate_relation(vstudy.con, relation, "assessments", config=CFG,
                               suites_dirs=[folder])
    got = {(r["rule"], r["source_line"], r["severity"]) for r in report.findings.to_dicts()}
    assert got == {("study.madrs.ceiling", 2, "warning"),
                   ("assessments.score.range.CADSS", 3, "error")}


def test_validates_loaded_data_through_a_view(vstudy):
    vstudy.con.execute(
        "create view loaded_assessments as select t.* from store.assessments t "
        "join uploads u using (batch_id) where u.status = 'loaded'")
    report = validate_relation(vstudy.con, "loaded_assessments", "assessments", config=CFG)
    assert report.n_rows == 2
    assert report.status == "pass", report.findings


def test_report_outputs(vstudy, tmp_path):
    relation, _ = vstudy.stage("assessments", [{"participant_id": "P999"}, {}])
    report = validate_relation(vstudy.con, relation, "assessments", config=CFG)
    assert isinstance(report, ValidationReport)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["status"] == report.status == "fatal"  # 1 of 2 rows > 20%
    assert data["findings"][0]["rule"] == "assessments.participant.orphan"
    written = json.loads(report.write_json(tmp_path / "out" / "report.json").read_text())
    assert written["gx_results"]["results"]
    page = report.write_data_docs(tmp_path / "docs")
    text = page.read_text()
    assert "assessments.participant.orphan" in text and "P999" in text
    gx_page = (tmp_path / "docs" / page.name.replace("validation_", "gx_")).read_text()
    assert "Validation Results" in gx_page or "Overview" in gx_page   # GX's own renderer
    assert "participant_id" in gx_page
    failing = report.failing_summary()
    assert failing.get_column("rule").to_list() == ["assessments.participant.orphan"]
    assert failing.get_column("examples").to_list() == [["P999"]]
    with pytest.raises(AttributeError):
        report.table = "x"  # frozen


def test_config_from_toml_and_bad_settings(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text('[validation]\nfatal_error_fraction = 0.1\ntoday = "2026-01-01"\n'
                    '[validation.row_count_ranges]\nassessments = [1, 1000]\n'
                    '[validation.site_missingness]\n"treatment_sessions.weight_kg" = 0.3\n')
    cfg = ValidationConfig.from_toml(path)
    assert cfg.fatal_error_fraction == 0.1 and cfg.today == dt.date(2026, 1, 1)
    assert cfg.row_count_ranges == {"assessments": (1, 1000)}
    with pytest.raises(ConfigError, match="required column"):
        ValidationConfig(site_missingness={"assessments.score": 0.1})
    with pytest.raises(ConfigError, match="fatal_fraction: unknown key; did you mean fatal_error_fraction"):
        ValidationConfig.from_dict({"fatal_fraction": 0.1})


def test_bad_relation_is_a_user_error(vstudy):
    with pytest.raises(UserError, match="cannot read relation"):
        validate_relation(vstudy.con, "staging.nope", "assessments", config=CFG)
    with pytest.raises(UserError, match="schema.name"):
        validate_relation(vstudy.con, "staging.x; drop table uploads", "assessments")


def test_replacement_batch_is_not_a_duplicate_of_the_batch_it_replaces(vstudy):
    loaded = vstudy.con.execute(
        "select batch_id from uploads where table_name = 'assessments'").fetchall()[0][0]
    relation, _ = vstudy.stage("assessments", [{"participant_id": "P002", "instrument": "MADRS",
                                                "assessed_on": dt.date(2020, 5, 1)}])
    dup = validate_relation(vstudy.con, relation, "assessments", config=CFG)
    assert dup.findings.get_column("rule").to_list() == ["assessments.already_loaded"]
    replacing = validate_relation(vstudy.con, relation, "assessments", config=CFG,
                                  replaces=[loaded])
    assert replacing.status == "pass"
