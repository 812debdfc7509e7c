"""Strict configuration: mapping specs and cohort.toml are checked against a schema.

Every bad config is ONE line naming the file and the key path, and saying what is expected;
good configs (the shipped mappings, the README's example) still load.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import cohort
from cohort.errors import ConfigError, MappingError, UserError
from cohort.mapping import COLUMN_OPTIONS, DATE_DIRECTIVES, load_mapping, parse_mapping
from cohort.mapping import SCHEMA as MAPPING_SCHEMA
from cohort.settings import SCHEMA, load_settings

ROOT = Path(__file__).resolve().parents[2]

GOOD_MAPPING = '''site_id = "OSL"
format = "csv"
[read]
delimiter = ";"
decimal_comma = true
encoding = "latin-1"
date_format = "%d.%m.%Y"
[tables.participants]
file = "p.csv"
[tables.participants.columns]
participant_id = "patient_no"
sex = { from = "gender", recode = { F = "female", M = "male" } }
birth_year = "aar"
enrolled_on = { from = "dato", date_format = "%d.%m.%Y" }
diagnosis = "dx"
concomitant_antidepressant = { from = "ad", recode = { ja = true, nei = false } }
[tables.participants.drop]
columns = ["initials"]
'''

#: (what to replace in GOOD_MAPPING, by what; the key path named; a phrase of the message)
BAD_MAPPINGS = [
    ('delimiter = ";"', 'delimeter = ";"', "[read] delimeter", "did you mean delimiter?"),
    ('delimiter = ";"', 'delimiter = ";;"', "[read] delimiter", "expected one character"),
    ('delimiter = ";"', "delimiter = 59", "[read] delimiter", "got 59"),
    ("decimal_comma = true", 'decimal_comma = "false"', "[read] decimal_comma",
     'expected true or false, got "false"'),
    ("decimal_comma = true", "decimal_comma = 1", "[read] decimal_comma", "expected true or false"),
    ('encoding = "latin-1"', 'encoding = "latin-42"', "[read] encoding", "text encoding"),
    ('encoding = "latin-1"', 'encoding = "base64"', "[read] encoding", "text encoding"),
    ('date_format = "%d.%m.%Y"\n[tables', "date_format = 20200101\n[tables", "[read] date_format",
     "expected a date format"),
    ('date_format = "%d.%m.%Y"\n[tables', 'date_format = "%d.%m.%Q"\n[tables', "[read] date_format",
     "%Q is not a date format directive"),
    ('date_format = "%d.%m.%Y"\n[tables', 'date_format = "%d.%m"\n[tables', "[read] date_format",
     "has no year"),
    ("[read]", '[read]\nquote = ";"', "[read] delimiter", "also the quote character"),
    ("[read]", '[read]\nthousands = ","', "[read] thousands", "also the decimal mark"),
    ('format = "csv"', 'format = "xlsx"', "format", 'expected one of "csv"'),
    ('site_id = "OSL"', "site_id = 7", "site_id", "expected a non-empty text"),
    ("[read]", "[raed]\n[read]", "raed", "did you mean read?"),
    ("[tables.participants]", "[tables.particpants]\n[tables.participants]",
     "[tables] particpants", "did you mean participants?"),
    ('file = "p.csv"', 'files = "p.csv"', "[tables.participants] files", "did you mean file?"),
    ('diagnosis = "dx"', 'diagnosys = "dx"', "[tables.participants.columns] diagnosys",
     "did you mean diagnosis?"),
    ('diagnosis = "dx"', 'diagnosis = { frm = "dx" }',
     "[tables.participants.columns.diagnosis] frm", "did you mean from?"),
    ('diagnosis = "dx"', 'diagnosis = { from = "dx", recode = "TRD" }',
     "[tables.participants.columns.diagnosis] recode", "expected a table"),
    ('diagnosis = "dx"', 'diagnosis = { from = "dx", recode = { a = [1] } }',
     "[tables.participants.columns.diagnosis.recode] a", "expected the canonical value"),
    ('diagnosis = "dx"', 'diagnosis = { from = "dx", pseudonymise = "no" }',
     "[tables.participants.columns.diagnosis] pseudonymise", 'expected true or false, got "no"'),
    ('diagnosis = "dx"', 'diagnosis = { from = "dx", value = "TRD" }',
     "[tables.participants.columns] diagnosis", "exactly one of"),
    ('diagnosis = "dx"', 'diagnosis = { from = "dx", unit = "mg" }',
     "[tables.participants.columns.diagnosis] unit", "only dose_mg has a unit"),
    ('diagnosis = "dx"', 'diagnosis = { from = "dx", date_format = "%Y" }',
     "[tables.participants.columns.diagnosis] date_format", "not a date column"),
    ('diagnosis = "dx"', "diagnosis = 3", "[tables.participants.columns] diagnosis",
     "expected a source column name"),
    ('columns = ["initials"]', 'columns = "initials"', "[tables.participants.drop] columns",
     "expected a list of column names"),
    ('columns = ["initials"]', 'column = ["initials"]', "[tables.participants.drop] column",
     "did you mean columns?"),
]

GOOD_SETTINGS = '''[database]
memory_limit = "1GB"
threads = 2
[load]
input_root = "inbox"
[validation]
fatal_error_fraction = 0.1
today = 2026-01-01
[validation.row_count_ranges]
assessments = [1, 2000000]
events = [0, -1]
[validation.site_missingness]
"treatment_sessions.weight_kg" = 0.3
[study]
timezone = "Europe/Oslo"
'''

BAD_SETTINGS = [
    ("threads = 2", 'threads = "two"', "[database] threads",
     'expected a whole number >= 1, got "two"'),
    ("threads = 2", "threads = 0", "[database] threads", "expected a whole number >= 1"),
    ("threads = 2", "threads = true", "[database] threads", "got true"),
    ('memory_limit = "1GB"', 'memory_limit = "-1GB"', "[database] memory_limit", "a size"),
    ('memory_limit = "1GB"', "memory_limit = 2000000000", "[database] memory_limit", "a size"),
    ('memory_limit = "1GB"', 'memory_limit = "1KB"', "[database] memory_limit", "at least 64MB"),
    ('memory_limit = "1GB"', 'memory_limti = "1GB"', "[database] memory_limti",
     "did you mean memory_limit?"),
    ("[database]", "[databse]", "databse", "did you mean database?"),
    ('input_root = "inbox"', "input_root = 1", "[load] input_root", "expected a non-empty text"),
    ('input_root = "inbox"', 'inputroot = "inbox"', "[load] inputroot", "did you mean input_root?"),
    ("fatal_error_fraction = 0.1", 'fatal_error_fraction = "0.2"', "[validation] fatal_error_fraction",
     'expected a number from 0 to 1, got "0.2"'),
    ("fatal_error_fraction = 0.1", "fatal_error_fraction = 1.5", "[validation] fatal_error_fraction",
     "got 1.5"),
    ("fatal_error_fraction = 0.1", "fatal_error_fraction = nan", "[validation] fatal_error_fraction",
     "expected a number"),
    ("fatal_error_fraction = 0.1", "fatal_eror_fraction = 0.1", "[validation] fatal_eror_fraction",
     "did you mean fatal_error_fraction?"),
    ("assessments = [1, 2000000]", "assessments = 5", "[validation.row_count_ranges] assessments",
     "expected [min, max]"),
    ("assessments = [1, 2000000]", "assessments = [1, 2, 3]",
     "[validation.row_count_ranges] assessments", "expected [min, max]"),
    ("assessments = [1, 2000000]", "assessments = [9, 2]",
     "[validation.row_count_ranges] assessments", "above max"),
    ("assessments = [1, 2000000]", "asessments = [1, 2]",
     "[validation.row_count_ranges] asessments", "did you mean assessments?"),
    ("[validation.row_count_ranges]\nassessments = [1, 2000000]\nevents = [0, -1]",
     'row_count_ranges = "1-100"', "[validation] row_count_ranges", "expected a table"),
    ('"treatment_sessions.weight_kg" = 0.3', '"assessments.score" = 0.3',
     '[validation.site_missingness] "assessments.score"', "a required column"),
    ('"treatment_sessions.weight_kg" = 0.3', '"treatment_sessions.weight_kg" = 2',
     '[validation.site_missingness] "treatment_sessions.weight_kg"', "from 0 to 1"),
    ("today = 2026-01-01", 'today = "yesterday"', "[validation] today", "expected a date"),
    ('timezone = "Europe/Oslo"', 'timezone = "Europe/Olso"', "[study] timezone",
     "IANA time zone"),
    ('timezone = "Europe/Oslo"', 'timezone = "../../etc/passwd"', "[study] timezone",
     "IANA time zone"),
    ('timezone = "Europe/Oslo"', 'time_zone = "Europe/Oslo"', "[study] time_zone",
     "did you mean timezone?"),
]


def _one_line(exc: pytest.ExceptionInfo[UserError]) -> str:
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_the_good_mapping_loads():
    m = parse_mapping(GOOD_MAPPING, path="osl.toml")
    assert (m.read.delimiter, m.read.decimal_comma, m.read.encoding) == (";", True, "latin-1")
    cols = {c.canonical: c for c in m.for_table("participants").columns}
    assert cols["concomitant_antidepressant"].recode == (("ja", "true"), ("nei", "false"))
    assert cols["site_id"].constant == "OSL"
    assert m.for_table("participants").drop == ("initials",)


@pytest.mark.parametrize(("old", "new", "key", "phrase"), BAD_MAPPINGS,
                         ids=[f"{k} {p}"[:60] for _, _, k, p in BAD_MAPPINGS])
def test_a_bad_mapping_is_one_line_naming_file_and_key(tmp_path, old, new, key, phrase):
    assert old in GOOD_MAPPING
    spec = tmp_path / "oslo.toml"
    spec.write_text(GOOD_MAPPING.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(MappingError) as exc:
        load_mapping(spec)
    message = _one_line(exc)
    assert message.startswith(f"{spec}: {key}: "), message
    assert phrase in message, message


def test_the_message_of_a_misspelt_key_is_exactly_as_documented():
    with pytest.raises(MappingError) as exc:
        parse_mapping('[read]\ndelimeter = ";"\n', path="mappings/oslo.toml")
    assert str(exc.value) == "mappings/oslo.toml: [read] delimeter: unknown key; did you mean delimiter?"


@pytest.mark.parametrize("path", sorted((ROOT / "mappings").rglob("*.toml")), ids=lambda p: p.name)
def test_shipped_mappings_parse(path):
    assert load_mapping(path).tables


def test_the_readme_mapping_example_parses():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Mapping specs"):]
    example = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    assert parse_mapping(example, path="README.md").for_table("treatment_sessions").columns


def test_date_directives_are_those_duckdb_knows():
    import string

    import duckdb

    con = duckdb.connect()
    known = set()
    for spec in [*string.ascii_letters, "%"] + [f"-{c}" for c in string.ascii_letters]:
        try:
            con.execute("select try_strptime('x', ?)", [f"%{spec}"]).fetchall()
        except duckdb.Error:
            continue
        known.add(spec)
    assert known == DATE_DIRECTIVES


def _settings_folder(tmp_path: Path, text: str) -> Path:
    (tmp_path / "cohort.toml").write_text(text, encoding="utf-8")
    return tmp_path


def test_good_settings_load(tmp_path):
    s = load_settings(_settings_folder(tmp_path, GOOD_SETTINGS))
    assert (s.memory_limit, s.threads, s.input_root, s.timezone) == ("1GB", 2, "inbox", "Europe/Oslo")
    assert s.validation.fatal_error_fraction == 0.1
    assert s.validation.row_count_ranges == {"assessments": (1, 2000000), "events": (0, None)}
    assert s.validation.today.isoformat() == "2026-01-01"
    assert load_settings(tmp_path / "none").timezone == "UTC"   # no file: the defaults


@pytest.mark.parametrize(("old", "new", "key", "phrase"), BAD_SETTINGS,
                         ids=[f"{k} {p}"[:60] for _, _, k, p in BAD_SETTINGS])
def test_bad_settings_are_one_line_naming_file_and_key(tmp_path, old, new, key, phrase):
    assert old in GOOD_SETTINGS
    folder = _settings_folder(tmp_path, GOOD_SETTINGS.replace(old, new, 1))
    with pytest.raises(ConfigError) as exc:
        load_settings(folder)
    message = _one_line(exc)
    assert message.startswith(f"{folder / 'cohort.toml'}: {key}: "), message
    assert phrase in message, message


def test_a_bad_cohort_toml_refuses_to_open_the_study(tmp_path):
    cohort.open(tmp_path / "study.duckdb", create=True).close()
    _settings_folder(tmp_path, "[database]\nthreads = \"two\"\n")
    with pytest.raises(ConfigError, match=r'cohort.toml: \[database\] threads: expected a whole number >= 1, got "two"'):
        cohort.open(tmp_path / "study.duckdb")


def test_settings_are_read_once_per_study_and_again_only_when_changed(study):
    first = study.settings
    assert study.settings is first and study.validation_options()["config"] is first.validation
    study.settings_file.write_text("[validation]\nfatal_error_fraction = 0.5\n")
    assert study.settings.validation.fatal_error_fraction == 0.5


def test_every_key_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Study settings and rules"):readme.index("### Mapping specs")]
    for table, keys in SCHEMA.items():
        assert f"[{table}]" in section, table
        for key in keys:
            assert f"`{key}`" in section, f"[{table}] {key} is not in the README"


def test_every_mapping_key_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("Every source column must be mapped"):readme.index("## Layout")]
    keys = [*MAPPING_SCHEMA, *MAPPING_SCHEMA["read"], *MAPPING_SCHEMA["tables"].value,
            *COLUMN_OPTIONS]
    for key in keys:
        assert re.search(rf"`\[?{key}[]`.]", section), f"mapping key {key} is not in the README"


# -- the administrator's input folder can only be narrowed ---------------------------

@pytest.fixture
def admin_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "uploads"
    (root / "site_a").mkdir(parents=True)
    monkeypatch.setenv("COHORT_INPUT_ROOT", str(root))
    return root


def test_input_root_inside_the_administrators_is_allowed(study, admin_root):
    study.settings_file.write_text(f'[load]\ninput_root = "{admin_root / "site_a"}"\n')
    assert study.input_root == admin_root / "site_a"


@pytest.mark.parametrize("root", ["/", "..", "{tmp}"])
def test_input_root_outside_the_administrators_is_an_error(study, admin_root, tmp_path, root):
    study.settings_file.write_text(f'[load]\ninput_root = "{root.format(tmp=tmp_path)}"\n')
    with pytest.raises(ConfigError) as exc:
        _ = study.input_root
    message = _one_line(exc)
    assert "[load] input_root" in message and str(admin_root) in message
    assert str(study.settings_file) in message


def test_a_load_under_a_widened_root_is_refused(study, admin_root, corpus):
    study.settings_file.write_text('[load]\ninput_root = "/"\n')
    with pytest.raises(ConfigError, match="lies outside COHORT_INPUT_ROOT"):
        study.load(corpus / "assessments_ok.csv", table="assessments", validate=False)
    assert study.uploads().height == 0


def test_without_cohort_toml_the_administrators_root_holds(study, admin_root, corpus):
    assert study.input_root == admin_root
    with pytest.raises(UserError, match="outside the allowed input folder"):
        study.load(corpus / "assessments_ok.csv", table="assessments", validate=False)


def test_a_relative_administrators_root_is_an_error(study, monkeypatch):
    monkeypatch.setenv("COHORT_INPUT_ROOT", "uploads")
    with pytest.raises(ConfigError, match="COHORT_INPUT_ROOT=uploads: must be an absolute"):
        _ = study.input_root


def test_without_the_administrators_root_cohort_toml_decides(study, monkeypatch):
    monkeypatch.delenv("COHORT_INPUT_ROOT", raising=False)
    assert study.input_root is None
    study.settings_file.write_text('[load]\ninput_root = "inbox"\n')
    assert study.input_root == study.path.parent / "inbox"


# -- the command line ------------------------------------------------------------------

def test_cohort_load_with_a_bad_mapping_is_one_line_exit_3(tmp_path, corpus):
    db = tmp_path / "s.duckdb"
    cohort.open(db, create=True).close()
    spec = tmp_path / "bad.toml"
    spec.write_text('[read]\ndelimeter = ";"\n[tables.assessments.columns]\nparticipant_id = "p"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "cohort", "load", str(corpus / "assessments_ok.csv"),
         "--table", "assessments", "--mapping", str(spec), "--db", str(db)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(spec.name) in lines[0] and "delimeter: unknown key; did you mean delimiter?" in lines[0]
