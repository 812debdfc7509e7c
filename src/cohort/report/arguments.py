"""The command line every analysis script (analyses/) takes."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from cohort.report.disclosure import Disclosure

__all__ = ["analysis_arguments"]


def analysis_arguments(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``--db``, ``--out`` and the disclosure settings of an analysis.

    ``args.disclosure`` is the :class:`~cohort.report.disclosure.Disclosure` they make.

    Examples
    --------
    >>> args = analysis_arguments("Relapse", ["--db", "study.duckdb", "--out", "out/relapse"])
    >>> (args.db.name, args.threshold, args.rounding, args.disclosure)
    ('study.duckdb', 7, 5, Disclosure(threshold=7, rounding=5, enabled=True))
    >>> analysis_arguments("Relapse", ["--db", "s.duckdb", "--out", "o",
    ...                                "--no-disclosure-control"]).disclosure.enabled
    False
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--db", required=True, type=Path, help="the study database (study.duckdb)")
    p.add_argument("--out", required=True, type=Path, help="folder for report.html and results.json")
    p.add_argument("--threshold", type=int, default=7, help="counts 1..threshold are redacted")
    p.add_argument("--rounding", type=int, default=5, help="other counts are rounded to this")
    p.add_argument("--no-disclosure-control", action="store_true",
                   help="show counts as they are and stamp every output NOT FOR RELEASE")
    args = p.parse_args(argv)
    args.disclosure = Disclosure(threshold=args.threshold, rounding=args.rounding,
                                 enabled=not args.no_disclosure_control)
    return args
