"""Benchmark the default size sweep: wall time, cell count and cells per second.

Run: `make bench` (or `.venv/bin/python benchmarks/bench_sweep.py [--runs N] [--master python|node|both]`).
Prints figures; it asserts nothing. Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from imdiag.core.plan import SweepSettings
from imdiag.runners.sweep import run_sweep


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--master", choices=["python", "node", "both"], default="python")
    args = parser.parse_args()
    masters = ("python", "node") if args.master == "both" else (args.master,)
    target = 30 if args.master == "both" else 15
    walls = []
    for i in range(max(1, min(args.runs, 20))):
        cells: list = []
        start = time.perf_counter()
        report = asyncio.run(run_sweep(SweepSettings(masters=masters), cells))
        wall = time.perf_counter() - start
        walls.append(wall)
        print(f"run {i + 1}: {wall:6.2f} s wall, {len(report.cells)} cells, {len(report.cells) / wall:6.1f} cells/s")
    print(
        f"median: {statistics.median(walls):.2f} s for the default `imdiag size-sweep --master {args.master}` "
        f"(target: under {target} s)"
    )


if __name__ == "__main__":
    main()
