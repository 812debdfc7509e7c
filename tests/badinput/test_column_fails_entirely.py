"""A column that fails on every row (the mapping's date_format or decimal_comma does not
match the site's file) is a batch the fatal-fraction rule rejects, every row quarantined
with its reason and accounted for; it once crashed coercion ("zip() argument 2 is longer
than argument 1": DuckDB's reader rejected every record, so no typed row was left to
place the rejects among)."""

from __future__ import annotations

from pathlib import Path

import pytest

COLUMNS = """
[tables.assessments.columns]
participant_id = "pid"
assessed_on = "day"
instrument = "instrument"
score = "score"
"""

CASES = {
    # US dates where the mapping says day.month.year (and they are not ISO either)
    "date_format": ('date_format = "%d.%m.%Y"\n', ",", "P{i},01/{d:02d}/2020,MoCA,{s}",
                    "coerce.assessed_on", "a date in format %d.%m.%Y"),
    # decimal commas where the mapping says there are none
    "decimal_comma": ('delimiter = ";"\ndecimal_comma = false\n', ";", "P{i};2020-01-{d:02d};MoCA;{s},5",
                      "coerce.score", "set decimal_comma"),
}


@pytest.mark.parametrize("n", [100, 100_000])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_column_that_fails_on_every_row_rejects_the_batch_with_every_row_quarantined(
        study, tmp_path: Path, case: str, n: int):
    read, delimiter, line, rule, hint = CASES[case]
    mapping = tmp_path / "site.toml"
    mapping.write_text(f'site_id = "S1"\n[read]\n{read}{COLUMNS}')
    csv = tmp_path / "visits.csv"
    csv.write_text(delimiter.join(["pid", "day", "instrument", "score"]) + "\n" + "".join(
        line.format(i=i, d=1 + i % 28, s=i % 30) + "\n" for i in range(n)))

    [r] = study.load(csv, table="assessments", mapping=mapping, validate=False)

    assert r.status == "rejected"
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (n, 0, n)
    assert f"{n} of {n} records (100.0%)" in r.message
    quarantine = study.quarantine(batch=r.batch_id)
    assert quarantine["source_line"].to_list() == list(range(2, n + 2))
    assert set(quarantine["rule"]) == {rule}
    assert all(hint in m for m in quarantine["message"].unique())
    assert study.query("select count(*) as n from store.assessments")["n"][0] == 0

