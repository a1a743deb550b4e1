"""Benchmark `imdiag probe`: trials and wall time per transport, against both masters.

Run: `.venv/bin/python benchmarks/bench_probe.py [--limits 1MB,10MB] [--ack] [--no-guess]`
(--no-guess: plain bisection, the worst case, as against a server that advertises no maxPayload).
Each master (python-socketio, and the real Node.js socket.io when installed) is started on a
loopback port at each limit and probed with the default settings. Prints figures; it asserts
nothing. Targets: under 10 s per master; with --no-guess (24 trials per transport to 16 MiB)
under 2 s per master (the probe itself: a live master is not started by imdiag).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from imdiag.core.probe_result import ProbeSettings
from imdiag.core.units import format_size, parse_limit
from imdiag.masters.kinds import Master, PythonMaster
from imdiag.masters.ledger import Ledger
from imdiag.masters.node import NodeMaster, node_ready
from imdiag.runners.probe import probe

NS = "/worker"


async def bench(master: Master, ack: bool, guess: bool) -> float:
    """The probe's own seconds (the master's start and stop are shown apart)."""
    start = time.perf_counter()
    async with master:
        result = await probe(ProbeSettings(url=master.url + NS, ack=ack, guess_advertised=guess))
    wall = time.perf_counter() - start
    hs = result.handshake
    for t in result.transports:
        print(
            f"  {master.server:6} limit {format_size(master.limit):>6}  {t.transport.value:9}  "
            f"accepted {t.max_accepted or 0:>11,} B  refused {t.first_rejected or 0:>11,} B  "
            f"trials {len(t.trials):2}  {t.seconds:6.3f} s  (maxPayload {hs.max_payload or 0:,} B)"
        )
    print(f"  {master.server:6} limit {format_size(master.limit):>6}  probe {result.elapsed_s:.2f} s "
          f"({'under' if result.elapsed_s < 2 else 'OVER'} 2 s), with master start/stop {wall:.2f} s")
    return result.elapsed_s


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limits", default="1MB,10MB")
    parser.add_argument("--ack", action="store_true", help="prove acceptance by the masters' acks")
    parser.add_argument("--no-guess", action="store_true",
                        help="plain bisection up to --max-bytes (16MiB), as for a server that advertises no maxPayload")
    args = parser.parse_args()
    limits = [parse_limit(v) for v in args.limits.split(",") if v.strip()]
    kinds: list[type[Master]] = [PythonMaster]
    reason = node_ready()
    if reason is None:
        kinds.append(NodeMaster)
    else:
        print(f"node master skipped: {reason}")
    for kind in kinds:
        total = 0.0
        for limit in limits:
            # A live master keeps no ledger: these record each probe message by its id, without
            # the digest imdiag's masters otherwise compute, so the figure is the probe's own.
            total += await bench(kind(limit=limit, namespace=NS, ledger=Ledger(by_id=True)), args.ack,
                                 not args.no_guess)
        print(f"{kind.server} master: {total:.2f} s probing for {len(limits)} probe(s) "
              f"(targets: under 10 s per master; with --no-guess under 2 s per master)")


if __name__ == "__main__":
    asyncio.run(main())
