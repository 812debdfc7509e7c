"""Performance runs: `make bench` (python -m benchmarks [NAME ...]).

Each ``bench_*.py`` module defines ``run(*, quick: bool) -> list[dict]``; a row
names the case, our time, the baseline measured in the same run and the ratio.
"""
