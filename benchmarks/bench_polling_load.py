"""Benchmark the python master's polling losses under concurrent clients: how many POSTs of a
few hundred KB, each under the limit and each answered 200, never reach the handler.

Run: `.venv/bin/python benchmarks/bench_polling_load.py [--clients 1,50] [--posts 1000]`.
`imdiag fake-master` (python, limit 1MB) runs in a process of its own, as it does for a real
worker; the clients are imdiag's own Engine.IO client over HTTP long-polling, all in this
process, each sending its share of the POSTs one after the other (one message per POST, frames
of 173-198 KB, all different). The master's live log says what arrived and which POST it failed
to decode (sid and size); its totals on Ctrl-C are printed too. Prints figures; asserts nothing.
Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import sys
import time

import aiohttp

from imdiag.clients.engineio import Endpoint, open_connection
from imdiag.core.catalog import Catalog
from imdiag.core.wire import Encoder, Transport, event_frame

NS = "/worker"
TIMEOUT = 30.0


async def start_master() -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "imdiag", "fake-master", "--port", "0", "--limit", "1MB", "--namespace", NS,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.stdout is not None
    banner = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode()
    found = re.search(r"listening on (http://\S+?)/socket\.io/", banner)
    if not found:
        raise SystemExit(f"fake-master did not start: {banner!r}")
    return proc, found.group(1)


async def client(url: str, frames: list[tuple[str, bytes]], statuses: list[int | None]) -> None:
    async with aiohttp.ClientSession() as session:
        conn = await open_connection(Endpoint(url, namespace=NS), Transport.POLLING, session, TIMEOUT)
        try:
            for _, frame in frames:
                result = await conn.send([frame])
                statuses.append(result.http_status)
        finally:
            await conn.close()


async def run(clients: int, posts: int, seed: int) -> None:
    rng = random.Random(seed)
    catalog = Catalog(seed)
    sizes = rng.sample(range(173_000, 198_001), posts)  # all different: each message has its own id
    messages = [catalog.sized("worker:data:sync", n, namespace=NS) for n in sizes]
    frames = [(m.id, event_frame(m.data, encoder=Encoder.NODE, namespace=NS)) for m in messages]
    proc, url = await start_master()
    statuses: list[int | None] = []
    start = time.perf_counter()
    try:
        shares = [frames[i::clients] for i in range(clients)]
        await asyncio.gather(*(client(url, share, statuses) for share in shares))
        wall = time.perf_counter() - start
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    log = out.decode(errors="replace")
    arrived = set(re.findall(r" arrival +worker:data:sync id=(\S+)", log))
    decode_errors = re.findall(r"decode-err sid=\S+ POST ([\d,]+) B", log)
    lost = [len(frame) for message_id, frame in frames if message_id not in arrived]
    answered_200 = sum(1 for s in statuses if s == 200)
    print(f"{clients:3} client(s): {posts} POSTs of 173-198 KB in {wall:.1f} s; answered 200: {answered_200}; "
          f"arrived: {len(arrived)}; lost: {len(lost)}"
          + (f" ({', '.join(f'{n:,} B' for n in sorted(lost)[:5])}{'...' if len(lost) > 5 else ''})" if lost else "")
          + f"; decode errors logged: {len(decode_errors)}")
    totals = log[log.find("totals after"):].strip().splitlines()
    for line in totals[:4]:
        print(f"      {line.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", default="1,50")
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    for clients in (int(c) for c in args.clients.split(",")):
        asyncio.run(run(clients, min(args.posts, 5000), args.seed))


if __name__ == "__main__":
    main()
