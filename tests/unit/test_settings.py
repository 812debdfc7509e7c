"""cohort.tomlcheck (the schema walk) and cohort.settings (cohort.toml, read once)."""

from __future__ import annotations

import datetime as dt

import pytest

import cohort
from cohort.errors import ConfigError, UserError
from cohort.settings import DEFAULT_MEMORY_LIMIT, Settings, load_settings, study_timezone
from cohort.tomlcheck import At, Key, Names, check_table, did_you_mean, known_names, number, shown
from cohort.validate import ValidationConfig


def test_places_are_written_as_toml_key_paths():
    assert str(At("f.toml")) == ""
    assert str(At("f.toml", ("site_id",))) == "site_id"
    assert str(At("f.toml", ("read", "delimiter"))) == "[read] delimiter"
    assert str(At("f.toml", ("validation", "site_missingness", "a.b"))) == \
        '[validation.site_missingness] "a.b"'


def test_values_are_shown_as_written_in_toml():
    assert [shown(v) for v in ("two", True, 1.5, [1, "a"], {"a": 1}, dt.date(2026, 1, 2))] == \
        ['"two"', "true", "1.5", '[1, "a"]', "a table", "2026-01-02"]
    assert len(shown("x" * 500)) == 60


def test_did_you_mean_names_the_closest_or_lists_them_all():
    assert did_you_mean("delimeter", ["delimiter", "quote"]) == "; did you mean delimiter?"
    assert did_you_mean("Quote", ["delimiter", "quote"]) == "; did you mean quote?"
    assert did_you_mean("zzz", ["b", "a"]) == "; known: a, b"


def test_the_walk_checks_nested_tables_and_free_names():
    schema = {"t": Names(Key(number(low=0, high=1), "share"), name=known_names(["ab"], "a name"))}
    assert check_table({"t": {"ab": 0.5}}, schema, At("f")) == {"t": {"ab": 0.5}}
    with pytest.raises(UserError, match=r"^f: \[t\] abc: not a name; did you mean ab\?$"):
        check_table({"t": {"abc": 0.5}}, schema, At("f"))
    with pytest.raises(UserError, match=r"^f: t: expected a table, got 3$"):
        check_table({"t": 3}, schema, At("f"))
    with pytest.raises(UserError, match=r"^f: \[t\] ab: expected a number from 0 to 1, got true$"):
        check_table({"t": {"ab": True}}, schema, At("f"))


def test_defaults_without_cohort_toml(tmp_path):
    s = load_settings(tmp_path)
    assert s == Settings(tmp_path)
    assert (s.memory_limit, s.threads, s.input_root, s.timezone) == (DEFAULT_MEMORY_LIMIT, None, None, "UTC")
    assert s.validation == ValidationConfig() and s.file == tmp_path / "cohort.toml"
    assert study_timezone(tmp_path) == "UTC"


def test_the_study_timezone_is_read_and_checked(tmp_path):
    (tmp_path / "cohort.toml").write_text('[study]\ntimezone = "Pacific/Auckland"\n')
    assert study_timezone(tmp_path) == "Pacific/Auckland"
    (tmp_path / "cohort.toml").write_text('[study]\ntimezone = "Mars/Olympus"\n')
    with pytest.raises(ConfigError, match=r"\[study\] timezone: expected an IANA time zone"):
        study_timezone(tmp_path)


def test_invalid_toml_and_non_utf8_are_one_line(tmp_path):
    (tmp_path / "cohort.toml").write_text("[database\n")
    with pytest.raises(ConfigError, match="cohort.toml: not valid TOML"):
        load_settings(tmp_path)
    (tmp_path / "cohort.toml").write_bytes(b'[study]\ntimezone = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(tmp_path)


def test_database_settings_reach_duckdb(tmp_path):
    (tmp_path / "cohort.toml").write_text('[database]\nthreads = 1\nmemory_limit = "256MiB"\n')
    with cohort.open(tmp_path / "s.duckdb", create=True) as study:
        assert study.con.execute("select current_setting('threads')").fetchone()[0] == 1
        assert study.con.execute("select current_setting('memory_limit')").fetchone()[0] == "256.0 MiB"


def test_validation_config_from_dict_names_its_source():
    with pytest.raises(ConfigError, match=r"^validation settings: dose_ratio: expected a number "
                                          r"greater than 1, got 1$"):
        ValidationConfig.from_dict({"dose_ratio": 1})
    assert ValidationConfig.from_dict({"today": "2026-02-03"}).today == dt.date(2026, 2, 3)
