"""The command line every analysis script (analyses/) takes."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

__all__ = ["analysis_arguments"]


def analysis_arguments(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``--db``, ``--out`` and the small-count disclosure settings of an analysis.

    Examples
    --------
    >>> args = analysis_arguments("Relapse", ["--db", "study.duckdb", "--out", "out/relapse"])
    >>> (args.db.name, args.threshold, args.rounding)
    ('study.duckdb', 7, 5)
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--db", required=True, type=Path, help="the study database (study.duckdb)")
    p.add_argument("--out", required=True, type=Path, help="folder for report.html and results.json")
    p.add_argument("--threshold", type=int, default=7, help="counts 1..threshold are redacted")
    p.add_argument("--rounding", type=int, default=5, help="other counts are rounded to this")
    return p.parse_args(argv)
