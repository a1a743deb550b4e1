"""Benchmark `imdiag replay` on a generated 20 MB JSON Lines capture: wall time and peak memory.

Run: `.venv/bin/python benchmarks/bench_replay.py [--mb 20]`. The capture is generated into a
temporary directory (never committed) from the catalog: heartbeats, account status, updates and
full snapshots. Each limit is replayed in its own process, so each peak (ru_maxrss) is its own.
Prints figures and the targets (peak < 3 x the largest message + 100 MB, and under 150 MB; the
masters run in processes of their own and are shown apart); asserts nothing.
Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def generate(path: Path, megabytes: int) -> tuple[int, int]:
    """Write the capture; return (messages, largest message in bytes)."""
    sys.path.insert(0, str(ROOT))
    from imdiag.core.catalog import TYPE_NAMES, Catalog

    catalog = Catalog(7)
    natural = {}
    for type_name in TYPE_NAMES:
        obj = catalog.natural(type_name).obj()
        obj.pop("id", None)
        natural[type_name] = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    cycle = ["worker:heartbeat", "worker:account:status", "worker:conversations:update", "worker:heartbeat",
             "worker:messages:update", "worker:comments:update", "worker:heartbeat", "worker:data:sync"]
    target = megabytes * 1_000_000
    written = count = largest = 0
    with path.open("w", encoding="utf-8") as out:
        while written < target and count < 100_000:
            type_name = cycle[count % len(cycle)]
            body = natural[type_name]
            line = f'{{"t":{count * 2.5:.1f},"event":"message",' + body[1:] + "\n"
            out.write(line)
            written += len(line.encode())
            largest = max(largest, len(body.encode()))
            count += 1
    return count, largest


def run_one(capture: str, limit: int) -> None:
    sys.path.insert(0, str(ROOT))
    from imdiag.runners.replay import ReplaySettings, run_replay

    start = time.perf_counter()
    cells: list = []
    report = asyncio.run(run_replay(ReplaySettings(path=capture, limits=(limit,)), cells))
    wall = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux
    # The masters run in processes of their own: the largest of them, apart.
    master_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    delivered = sum(c.delivered for c in report.cells)
    print(json.dumps({"limit": limit, "wall_s": round(wall, 2), "peak_mb": round(peak_kb / 1000, 1),
                      "master_peak_mb": round(master_kb / 1000, 1), "cells": len(report.cells),
                      "delivered": delivered}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=20)
    parser.add_argument("--one", nargs=2, metavar=("CAPTURE", "LIMIT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(args.one[0], int(args.one[1]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        capture = Path(tmp) / "capture.jsonl"
        messages, largest = generate(capture, max(1, min(args.mb, 500)))
        size = capture.stat().st_size
        target_mb = (3 * largest + 100_000_000) / 1e6
        print(f"capture: {size / 1e6:.1f} MB, {messages} messages, largest message {largest:,} B "
              f"(target peak: under {target_mb:.1f} MB)")
        for limit in (1_000_000, 100_000_000):
            result = subprocess.run([sys.executable, __file__, "--one", str(capture), str(limit)],
                                    check=False, capture_output=True, text=True, timeout=1800)
            if result.returncode != 0:
                print(f"limit {limit:,}: failed: {result.stderr.strip()[-500:]}")
                continue
            figures = json.loads(result.stdout.strip().splitlines()[-1])
            verdict = "under" if figures["peak_mb"] < target_mb else "OVER"
            print(f"limit {limit:>11,}: {figures['wall_s']:7.2f} s wall, peak {figures['peak_mb']:6.1f} MB "
                  f"({verdict} the target; largest master process {figures['master_peak_mb']:.1f} MB), "
                  f"{figures['cells']} cells, {figures['delivered']} delivered")


if __name__ == "__main__":
    main()
