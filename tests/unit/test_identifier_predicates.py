"""The cheap guards in front of the identifier regular expressions never change a verdict:
guarded and unguarded predicates agree on every value of a hostile corpus."""

from __future__ import annotations

import random

import duckdb
import polars as pl
import pytest

from cohort.identifiers import _value_predicates

KNOWN = [
    "12345678901", "123456 78901", "943 476 5919", "9434765919", "943-476-5919", "123-45-6789",
    "1 85 05 78 006 084 36", "185057800608436", "2 85 05 2A 006 084", "+47 22 33 44 55",
    "0047 22334455", "(020) 7946 0958", "22334455", "2233445", "2019-03-04", "04.03.2019",
    "20190304", "04032019", "2019/03/04", "1234-56-78", "12 Main Street", "4B, Storgata gate",
    "1 rue de la Paix", "a.b@c.no", "x@y", "anne@example.org", "@", "", " ", "0", "MADRS",
    "0001234", "12.0", "-5", "1e10", "9999999999999999999999",
]
ALPHABET = "0123456789-- ./+()@aZé,"


def _corpus(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    digits_heavy = "0123456789" * 4 + ALPHABET
    out = list(KNOWN)
    for _ in range(n):
        length = rng.randint(0, 26)
        pool = digits_heavy if rng.random() < 0.8 else ALPHABET
        out.append("".join(rng.choice(pool) for _ in range(length)).strip())
    # ISO-date-shaped strings and near misses around the guard's shape
    for _ in range(n // 10):
        y, m, d = rng.randint(0, 9999), rng.randint(0, 99), rng.randint(0, 99)
        sep = rng.choice("-/. ")
        out.append(f"{y:04d}{sep}{m:02d}{sep}{d:02d}")
        out.append(f"{y:04d}-{m:02d}-{d:02d}{rng.randint(0, 99)}")
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_guarded_predicates_agree_with_the_regular_expressions(seed: int) -> None:
    values = _corpus(20_000, seed)
    con = duckdb.connect()
    con.register("corpus", pl.DataFrame({"v": values}))
    guarded = _value_predicates("v")
    exact = _value_predicates("v", guarded=False)
    found = {}
    for kind in guarded:
        disagree = con.execute(
            f"select v, coalesce({guarded[kind]}, false) as g, coalesce({exact[kind]}, false) as e "
            "from corpus where g <> e limit 5").fetchall()
        assert not disagree, (kind, disagree)
        found[kind] = con.execute(f"select count_if({exact[kind]}) from corpus").fetchone()[0]
    # the corpus holds values of every kind, so agreement is not agreement on "no"
    assert all(n > 0 for n in found.values()), found


def test_a_vocabulary_is_screened_once_and_only_when_clean() -> None:
    from cohort.identifiers import _vocabulary_is_clean
    from cohort.tables import TABLES, table_columns

    con = duckdb.connect()
    assert not _vocabulary_is_clean(con, None)  # free text: every value is screened
    assert not _vocabulary_is_clean(con, ("MADRS", "kari@example.no"))
    assert not _vocabulary_is_clean(con, ("MADRS", "+47 22 33 44 55"))
    vocabularies = [c.allowed for t in TABLES for c in table_columns(t) if c.allowed]
    assert vocabularies and all(_vocabulary_is_clean(con, v) for v in vocabularies)
