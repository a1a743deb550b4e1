"""The kinds of master imdiag starts, by name, and how to start several at once.

``new_master("python" | "node" | "asgi", limit)`` makes one; ``started(masters)`` starts several at
once and stops them all on the way out, whatever happened. Every kind runs their servers in a
child process (``imdiag.masters.child``); a new kind is a ``ChildMaster`` subclass in ``SERVERS``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from imdiag.masters.asgi import AsgiMaster
from imdiag.masters.base import Master
from imdiag.masters.child import ChildMaster
from imdiag.masters.node import NodeMaster
from imdiag.masters.python import PythonMaster

SERVERS: dict[str, type[Master]] = {"python": PythonMaster, "node": NodeMaster, "asgi": AsgiMaster}


def new_master(server: str, limit: int, namespace: str = "/", **options: Any) -> Master:
    """A master of the given server kind at ``limit``; ``options`` (host, port, path, ledger) as they are."""
    return SERVERS[server](limit=limit, namespace=namespace, **options)


def shards_per_lane(server: str) -> int:
    """How many identical masters of a kind share one sweep lane's messages: its host processes
    when the kind splits its lanes (``ChildMaster.split_lanes``), so that one lane's decoding runs
    on every core; else one."""
    kind = SERVERS[server]
    return kind.hosts if issubclass(kind, ChildMaster) and kind.split_lanes else 1


def master_options(server: str, csr: bool) -> dict[str, Any]:
    """Options for ``new_master``: ``--csr`` is the Node master's connectionStateRecovery."""
    return {"csr": True} if csr and server == "node" else {}


@contextlib.asynccontextmanager
async def started(masters: Sequence[Master]) -> AsyncIterator[None]:
    """Start every master at once; stop them all at once on the way out (errors and Ctrl-C
    included): masters that did start are stopped if one fails."""
    try:
        outcomes = await asyncio.gather(*(master.start() for master in masters), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        yield
    finally:
        stops = await asyncio.gather(*(master.stop() for master in masters), return_exceptions=True)
        for stopped in stops:
            if isinstance(stopped, BaseException) and not isinstance(stopped, Exception):
                raise stopped  # a cancellation while stopping goes on up


__all__ = ["SERVERS", "AsgiMaster", "Master", "NodeMaster", "PythonMaster", "master_options", "new_master",
           "shards_per_lane", "started"]
