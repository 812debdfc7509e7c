"""Run the benchmarks and print (and save) a table of ratios against baselines."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import platform
import sys
import time
from pathlib import Path

import benchmarks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("names", nargs="*", help="benchmark modules to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)
    available = sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")
    )
    chosen = [n if n.startswith("bench_") else f"bench_{n}" for n in args.names] or available
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}")
        return 2
    rows: list[dict] = []
    for name in chosen:
        module = importlib.import_module(f"benchmarks.{name}")
        started = time.perf_counter()
        for row in module.run(quick=args.quick):
            row = {"benchmark": name.removeprefix("bench_"), **row}
            rows.append(row)
            print(json.dumps(row, default=str), flush=True)
        print(f"# {name}: {time.perf_counter() - started:.1f} s", flush=True)
    out = Path("benchmarks/results")
    out.mkdir(parents=True, exist_ok=True)
    machine = {"python": sys.version.split()[0], "machine": platform.platform()}
    (out / "latest.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2, default=str))
    print(f"results written to {out / 'latest.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
