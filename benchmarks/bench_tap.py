"""Benchmark `imdiag tap`: the real Node client to the real Node master, direct and through the tap.

Run: `.venv/bin/python benchmarks/bench_tap.py [--small 1000] [--large 512000] [--rounds 3]`.
The Node master (socket.io 4.8, acknowledging every message) and the worker (socket.io-client
4.8, default transports: polling, then the upgrade) run on loopback; the tap runs as the real
command (`imdiag tap`, not on a terminal: one JSON line per message, read and discarded).
Every message is acknowledged, so a figure counts only messages the master's handler took:
- 1 KB messages/s with 64 in flight, and the median round trip (emit to ack) one at a time;
- 512 KB throughput in MB/s with 4 in flight.
Each figure is the best of --rounds, direct and through the tap side by side. Prints the figures
and the targets (at least 50% of direct MB/s at 512 KB; under 1 ms added median latency at 1 KB);
asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import statistics
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from imdiag.masters.node import NodeMaster, node_ready
from tests.node_worker import NodeWorker, kind

NS = "/bench"
TIMEOUT = 120.0


@dataclass
class Figures:
    small_per_s: float = 0.0
    small_median_ms: float = 0.0
    large_mb_per_s: float = 0.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def tap_process(upstream: str) -> AsyncIterator[str]:
    """`imdiag tap` as users run it; its JSON lines are read (so it never blocks on its pipe) and dropped."""
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "imdiag", "tap", "--upstream", upstream, "--listen", f"127.0.0.1:{port}",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, limit=1 << 24,
    )
    assert proc.stdout is not None
    first = json.loads(await asyncio.wait_for(proc.stdout.readline(), TIMEOUT))
    assert first["event"] == "listening", first

    async def drain() -> None:
        assert proc.stdout is not None
        while await proc.stdout.readline():
            pass

    reader = asyncio.create_task(drain())
    try:
        yield f"http://{first['listen']}"
    finally:
        proc.terminate()  # SIGTERM: the tap stops cleanly
        await asyncio.wait_for(proc.wait(), TIMEOUT)
        await reader


async def run(worker: NodeWorker, size: int, count: int, window: int) -> dict[str, object]:
    done = sum(1 for e in worker.events if e.get("event") == "bench")
    worker.send(op="bench", bytes=size, count=count, window=window)
    return (await worker.wait_for(kind("bench"), TIMEOUT, count=done + 1))[-1]


async def measure(url: str, args: argparse.Namespace) -> Figures:
    figures = Figures()
    async with NodeWorker(url + NS) as worker:
        await worker.wait_for(kind("upgrade"), TIMEOUT)
        await run(worker, args.small, 200, 16)  # warm-up: JIT, buffers
        for _ in range(args.rounds):
            small = await run(worker, args.small, args.small_count, 64)
            figures.small_per_s = max(figures.small_per_s, float(small["count"]) / float(small["seconds"]))
            latency = await run(worker, args.small, args.latency_count, 1)
            median = statistics.median(latency["latencies_ms"])  # type: ignore[arg-type]
            figures.small_median_ms = median if not figures.small_median_ms else min(figures.small_median_ms, median)
            large = await run(worker, args.large, args.large_count, 4)
            mb = float(large["count"]) * args.large / 1e6 / float(large["seconds"])
            figures.large_mb_per_s = max(figures.large_mb_per_s, mb)
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=1000, help="bytes of the small messages")
    parser.add_argument("--large", type=int, default=512_000, help="bytes of the large messages")
    parser.add_argument("--small-count", type=int, default=5000)
    parser.add_argument("--latency-count", type=int, default=1000)
    parser.add_argument("--large-count", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    reason = node_ready()
    if reason is not None:
        print(f"skipped: {reason}")
        return
    async with NodeMaster(limit=1_000_000, namespace=NS) as master:
        direct = await measure(master.url, args)
        async with tap_process(master.url) as tap_url:
            tapped = await measure(tap_url, args)
        versions = ", ".join(f"{k} {v}" for k, v in master.versions.items())
    print(f"imdiag tap benchmark: real socket.io-client -> real Node master ({versions}), loopback, "
          f"every message acknowledged, best of {args.rounds}")
    print(f"{'':32} {'direct':>12} {'through tap':>12} {'tap / direct':>13}")
    rows = [
        (f"{args.small:,} B messages/s (64 in flight)", direct.small_per_s, tapped.small_per_s, "{:,.0f}"),
        (f"{args.small:,} B median round trip (ms)", direct.small_median_ms, tapped.small_median_ms, "{:.3f}"),
        (f"{args.large:,} B MB/s (4 in flight)", direct.large_mb_per_s, tapped.large_mb_per_s, "{:.1f}"),
    ]
    for name, a, b, fmt in rows:
        print(f"{name:32} {fmt.format(a):>12} {fmt.format(b):>12} {b / a if a else 0:>12.0%}")
    added = tapped.small_median_ms - direct.small_median_ms
    share = tapped.large_mb_per_s / direct.large_mb_per_s if direct.large_mb_per_s else 0
    print(f"targets: 512 KB throughput through the tap >= 50% of direct: {share:.0%} "
          f"({'met' if share >= 0.5 else 'NOT met'}); added median latency at 1 KB < 1 ms: {added:.3f} ms "
          f"({'met' if added < 1 else 'NOT met'})")


if __name__ == "__main__":
    asyncio.run(main())
