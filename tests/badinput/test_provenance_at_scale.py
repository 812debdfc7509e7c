"""Exact provenance at any size: on a big delimited file read by DuckDB with 1, 2 and many
threads, every stored and every quarantined row carries its true line.

A file of assessments with a few hundred defects at random places (bad dates, bad
numbers, values outside the allowed set, wrong case, wrong field counts, empty required
fields, exact duplicates of other rows) is loaded through the fast path; an independent
reader (Python's csv module and the rules of the mapping written out here in Python) says
what each line must give: its values in the study, or its rule in the quarantine. The two
are compared line for line.

Every participant id is unique except on the duplicated rows, so a row stored on another
record's line cannot pass unnoticed. On main before this test, a file of this shape read
with several threads had most rows on the wrong line (an ``in (...)`` list of allowed
instruments planned as a hash join reordered the typed read).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import cohort
import cohort.ingest
from cohort.tables import INSTRUMENTS

HEADER = "participant_id,assessed_on,instrument,score"
#: the defects, each as (what the generator writes, the rule the line must end in or None)
DEFECTS = ("bad_date", "iso_other_format", "bad_number", "not_finite", "unknown_instrument",
           "wrong_case", "extra_field", "missing_field", "empty_id", "padded_number", "duplicate")


def write_assessments(path: Path, n: int, *, defects: int, seed: int, pad: int = 0) -> None:
    """``n`` assessment records (unique ids, ``pad`` extra characters in each so that the
    file is bigger for the same rows) with ``defects`` defects at random lines."""
    rng = np.random.default_rng(seed)
    ids = pl.int_range(n, eager=True).cast(pl.String).str.zfill(8)
    frame = pl.DataFrame({
        "id": ("P" + "x" * pad + ids) if pad else ("P" + ids),
        "date": (pl.Series(np.datetime64("2019-01-01") + rng.integers(0, 5 * 365, n)
                           .astype("timedelta64[D]")).cast(pl.String)),
        "instrument": pl.Series(np.array(["MADRS", "MoCA", "DSST", "PHQ-9"])[rng.integers(0, 4, n)]),
        "score": pl.Series(rng.integers(0, 28, n)).cast(pl.String),
    })
    where = rng.choice(n, defects, replace=False)
    kinds = np.array(DEFECTS)[rng.integers(0, len(DEFECTS), defects)]

    def scatter(column: str, kind: str, value: str) -> None:
        nonlocal frame
        at = where[kinds == kind]
        frame = frame.with_columns(frame[column].scatter(at, [value] * len(at)))

    scatter("date", "bad_date", "2021-02-30")
    scatter("date", "iso_other_format", "13.05.2021")
    scatter("score", "bad_number", "n/a")
    scatter("score", "not_finite", "inf")
    scatter("score", "padded_number", " 12 ")
    scatter("instrument", "unknown_instrument", "MOCA-X")
    scatter("instrument", "wrong_case", "moca")
    scatter("id", "empty_id", "")
    lines = frame.select(pl.concat_str(pl.all(), separator=",")).to_series()
    extra, missing = where[kinds == "extra_field"], where[kinds == "missing_field"]
    lines = lines.scatter(extra, (lines.gather(extra) + ",extra"))
    lines = lines.scatter(missing, lines.gather(missing).str.replace(r",[^,]*$", ""))
    copies = where[kinds == "duplicate"]
    lines = lines.scatter(copies, lines.gather(rng.integers(0, n, len(copies))))
    path.write_text(HEADER + "\n" + "\n".join(lines.to_list()) + "\n", encoding="utf-8")


def expected(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """What an independent reader says each line gives: (the stored rows: source_line,
    participant_id, assessed_on, instrument, score) and (the quarantine: source_line, rule)."""
    spelled = {i.lower(): i for i in INSTRUMENTS}
    rows: list[tuple] = []
    quarantine: list[tuple[int, str]] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader)
        for line, record in enumerate(reader, start=2):
            if len(record) != 4:
                quarantine.append((line, "parse.record"))
                continue
            pid, day, instrument, score = (v.strip() for v in record)
            rules = []
            if not pid:
                rules.append("required.participant_id")
            try:
                date = dt.date.fromisoformat(day)
            except ValueError:
                date = None
                rules.append("coerce.assessed_on")
            if instrument.lower() not in spelled:
                rules.append("allowed.instrument")
            try:
                value = float(score)
            except ValueError:
                value = None
                rules.append("coerce.score")
            if value is not None and not math.isfinite(value):
                rules.append("coerce.score")
            if rules:
                quarantine += [(line, rule) for rule in rules]
            else:
                rows.append((line, pid, date, spelled[instrument.lower()], value))
    stored = pl.DataFrame(rows, orient="row", schema={
        "source_line": pl.Int64, "participant_id": pl.String, "assessed_on": pl.Date,
        "instrument": pl.String, "score": pl.Float64})
    return stored, pl.DataFrame(quarantine, orient="row",
                                schema={"source_line": pl.Int64, "rule": pl.String}).unique()


def load_fast(folder: Path, csv_file: Path, *, threads: int, monkeypatch) -> tuple:
    """Load ``csv_file`` into a new study in ``folder`` with DuckDB on ``threads`` threads;
    return the load result, the stored rows, the quarantine (line, rule) and whether the
    fast path kept the load."""
    taken: list[bool] = []
    fast_path = cohort.ingest.coerce_csv

    def observed(*args, **kwargs):
        result = fast_path(*args, **kwargs)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(cohort.ingest, "coerce_csv", observed)
    folder.mkdir()
    (folder / "cohort.toml").write_text(f"[database]\nthreads = {threads}\n")
    study = cohort.open(folder / "study.duckdb", create=True)
    try:
        assert study.query("select current_setting('threads') as t")["t"][0] == threads
        [result] = study.load(csv_file, table="assessments", validate=False)
        stored = study.query("select source_line, participant_id, assessed_on, instrument, score "
                             "from store.assessments order by source_line")
        quarantine = study.query("select distinct source_line, rule from quarantine")
    finally:
        study.close()
    return result, stored, quarantine, taken


def assert_true_lines(tmp_path: Path, csv_file: Path, *, threads: int, monkeypatch) -> None:
    want_rows, want_quarantine = expected(csv_file)
    result, rows, quarantine, taken = load_fast(tmp_path / f"threads{threads}", csv_file,
                                                threads=threads, monkeypatch=monkeypatch)
    assert taken == [True], "the fast path gave the file up"
    lines = want_rows.height + want_quarantine["source_line"].n_unique()
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (
        lines, want_rows.height, lines - want_rows.height)
    # row for row: each line's values, and each quarantined line's rules
    mismatched = rows.join(want_rows, on="source_line", how="full", nulls_equal=True,
                           suffix="_expected").filter(
        pl.any_horizontal(pl.col(c).ne_missing(pl.col(f"{c}_expected"))
                          for c in ("source_line", "participant_id", "assessed_on", "instrument", "score")))
    assert mismatched.height == 0, f"{mismatched.height} rows not on their line:\n{mismatched.head(5)}"
    assert quarantine.sort("source_line", "rule").equals(want_quarantine.sort("source_line", "rule"))


@pytest.mark.parametrize("threads", [1, 2, 8])
def test_every_row_keeps_its_line_on_a_file_of_300k_rows(tmp_path, monkeypatch, threads):
    # 300k rows of about 130 bytes: some 40 MB, several of DuckDB's CSV buffers, so that
    # the read runs on several threads (on main, the IN list then reordered it)
    csv_file = tmp_path / "assessments.csv"
    write_assessments(csv_file, 300_000, defects=300, seed=threads, pad=100)
    assert_true_lines(tmp_path, csv_file, threads=threads, monkeypatch=monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 2, 8])
def test_every_row_keeps_its_line_on_a_file_of_3m_rows(tmp_path, monkeypatch, threads):
    csv_file = tmp_path / "assessments.csv"
    write_assessments(csv_file, 3_000_000, defects=600, seed=10 + threads)
    assert_true_lines(tmp_path, csv_file, threads=threads, monkeypatch=monkeypatch)
