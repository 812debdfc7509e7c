"""Simulator throughput: participants per second at 1M (quick: 100k) and peak memory.

Each case runs in a fresh process (so its peak resident memory is its own).
- generate: every chunk of canonical tables built (polars frames) and dropped;
  baseline: numpy drawing as many standard normals as there are rows, in
  chunks of the same size (the floor of "one random draw per row").
- to_parquet: simulate_to_parquet to a temporary folder; baseline: polars
  writing prebuilt frames of the same size (one chunk written once per chunk,
  same number of threads), i.e. what writing the rows alone costs.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _generate(n: int) -> dict:
    from cohort.simulate import iter_chunks

    t0, c0 = time.perf_counter(), _cpu_s()
    rows = 0
    for chunk in iter_chunks(n, seed=1):
        rows += sum(df.height for df in chunk.values())
    ours = time.perf_counter() - t0
    cpu = _cpu_s() - c0
    peak = _peak_mb()

    import numpy as np

    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    left = rows
    while left:
        k = min(left, 1_500_000)
        rng.standard_normal(k)
        left -= k
    base = time.perf_counter() - t0
    return {"case": f"generate_{n}", "ours_s": ours, "baseline": "numpy_standard_normal_same_rows",
            "baseline_s": base, "ratio": ours / base, "participants_per_s": n / ours,
            "rows": rows, "rows_per_s": rows / ours, "cpu_s": cpu, "peak_rss_mb": peak,
            "load_avg_1min": os.getloadavg()[0]}


def _to_parquet(n: int) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    from cohort.simulate import CHUNK_SIZE, iter_chunks, simulate_to_parquet

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        t0 = time.perf_counter()
        simulate_to_parquet(out / "ours", n_participants=n, seed=1)
        ours = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in (out / "ours").rglob("*.parquet"))
        peak = _peak_mb()
        # baseline: write one prebuilt chunk as many times as there are chunks, same threads
        chunk = next(iter_chunks(CHUNK_SIZE, seed=1))
        n_chunks = -(-n // CHUNK_SIZE)
        (out / "base").mkdir()

        def write(c: int) -> None:
            for name, df in chunk.items():
                df.write_parquet(out / "base" / f"{name}-{c % 4}.parquet", compression="zstd")

        t0 = time.perf_counter()
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            list(pool.map(write, range(n_chunks)))
        base = time.perf_counter() - t0
    return {"case": f"to_parquet_{n}", "ours_s": ours, "baseline": "polars_write_parquet_prebuilt_frames",
            "baseline_s": base, "ratio": ours / base, "participants_per_s": n / ours,
            "parquet_mb": size / 2**20, "peak_rss_mb": peak}


def _in_fresh_process(fn, n: int) -> dict:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as ex:
        return ex.submit(fn, n).result()


def run(*, quick: bool) -> list[dict]:
    n = 100_000 if quick else 1_000_000
    return [_in_fresh_process(_generate, n), _in_fresh_process(_to_parquet, n)]
