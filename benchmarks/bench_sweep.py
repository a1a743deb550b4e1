"""Benchmark the default size sweep against the floor: what the same cells need at loopback speed.

Run: `make bench` (or `.venv/bin/python benchmarks/bench_sweep.py [--runs N] [--master python|node|both]`).
Each run is the whole `imdiag size-sweep --json FILE` process (start-up and rendering included),
then, in the same run, the floor: a bare aiohttp websocket client sending to a bare aiohttp
server (nothing of imdiag) the same cells' necessary bytes, one round trip per cell: every
delivered frame whole, a small frame for every other cell. Per run it prints:

- wall: the whole process; measured: the sweep itself (the report's elapsed_s); CPU of the
  process and its masters;
- bytes written (frame payloads and POST bodies, from the report's ``written_bytes``; a report
  without them, from before imdiag stopped at the server's answer, wrote every frame whole), the
  delivered frames, and the bytes the servers read: the delivered frames plus what was written
  into each other cell before the server's answer (its refusal, or its 200 after a cut read);
- peak RSS of the imdiag process, and of the largest master process;
- the floor (its seconds, and the loopback throughput they imply) and measured / floor.

Then the medians of the runs. Prints figures; it asserts nothing. Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

SMALL_FRAME = 64  # what a refused or lost cell needs, at least: a frame header and a few bytes
# Runs the CLI as `python -m imdiag` does, then reports the process's own peak RSS on stderr.
CLI = (
    "import resource, runpy, sys\n"
    "sys.argv = ['imdiag', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('imdiag', run_name='__main__', alter_sys=True)\n"
    "finally:\n"
    "    print('peak-rss-kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)


@dataclass(frozen=True)
class Run:
    wall_s: float
    measured_s: float
    cpu_s: float
    cells: int
    written: int
    delivered: int
    read: int
    peak_mb: float
    master_peak_mb: float
    floor_s: float
    floor_bytes: int

    @property
    def throughput(self) -> float:
        return self.floor_bytes / self.floor_s


def sweep(master: str, report: Path) -> tuple[float, float, float, float]:
    """The whole CLI process: wall, CPU (with its masters), its own peak and its tree's (MB)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CLI, "size-sweep", "--master", master, "--json", str(report)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)  # the tree's usage: the masters were waited for
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"imdiag size-sweep failed ({proc.returncode}): {stderr.strip()[-500:]}")
    own = next(int(line.split()[1]) for line in stderr.splitlines() if line.startswith("peak-rss-kb"))
    return wall, usage.ru_utime + usage.ru_stime, own / 1024, usage.ru_maxrss / 1024


def byte_figures(cells: list[dict]) -> tuple[int, int, int]:
    """Bytes written, delivered, and read by the servers (delivered + written before each answer).

    A report from before imdiag stopped at the server's answer has no ``written_bytes``: every
    frame was written whole, and what the servers read of the undelivered ones is not known."""
    stops = any("written_bytes" in c["observed"] for c in cells)
    written = delivered = read = 0
    for cell in cells:
        cell_written = (cell["observed"].get("written_bytes") or 0) if stops else cell["wire_bytes"]
        written += cell_written
        if cell["delivered"]:
            delivered += cell["wire_bytes"]
            read += cell["wire_bytes"]
        elif stops:
            read += cell_written
    return written, delivered, read


async def floor(cells: list[dict]) -> tuple[float, int]:
    """The same cells through a bare aiohttp client and server: seconds and bytes."""
    sizes = [c["wire_bytes"] if c["delivered"] else SMALL_FRAME for c in cells]

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_str(str(len(msg.data)))  # the answer that ends the cell's round trip
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    payload = b"x" * max(sizes)
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
        async with aiohttp.ClientSession() as session, session.ws_connect(url, max_msg_size=0) as ws:
            start = time.perf_counter()
            for size in sizes:
                await ws.send_frame(payload[:size], aiohttp.WSMsgType.TEXT)
                await ws.receive()
            seconds = time.perf_counter() - start
    finally:
        await runner.cleanup()
    return seconds, sum(sizes)


def one_run(master: str) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "report.json"
        wall, cpu, peak, tree_peak = sweep(master, report_path)
        report = json.loads(report_path.read_text())
    cells = report["cells"]
    written, delivered, read = byte_figures(cells)
    floor_s, floor_bytes = asyncio.run(floor(cells))
    return Run(wall, report["elapsed_s"], cpu, len(cells), written, delivered, read, peak, tree_peak,
               floor_s, floor_bytes)


def show(label: str, run: Run) -> None:
    mb = 1e6
    print(
        f"{label}: {run.wall_s:5.2f} s wall (measured {run.measured_s:5.2f} s, CPU {run.cpu_s:5.2f} s), "
        f"{run.cells} cells; written {run.written / mb:7.1f} MB, delivered {run.delivered / mb:6.1f} MB, "
        f"read by the servers {run.read / mb:7.1f} MB (written/read {run.written / max(run.read, 1):4.2f}x, "
        f"written/delivered {run.written / max(run.delivered, 1):5.2f}x); peak RSS {run.peak_mb:5.0f} MB "
        f"(largest master {run.master_peak_mb:4.0f} MB); floor {run.floor_s:5.2f} s "
        f"({run.floor_bytes / mb:5.1f} MB at {run.throughput / mb:5.0f} MB/s), "
        f"measured/floor {run.measured_s / run.floor_s:4.1f}x, wall/floor {run.wall_s / run.floor_s:4.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--master", choices=["python", "node", "both"], default="python")
    args = parser.parse_args()
    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{os.cpu_count()} CPUs; `imdiag size-sweep --master {args.master}`")
    runs = []
    for i in range(max(1, min(args.runs, 20))):
        runs.append(one_run(args.master))
        show(f"run {i + 1}", runs[-1])

    def median(field: str) -> float:
        return statistics.median(getattr(r, field) for r in runs)

    show("median", Run(*(median(f) for f in Run.__dataclass_fields__)))  # type: ignore[arg-type]
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"this process's own peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
