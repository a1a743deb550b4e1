"""The masters imdiag starts: real Socket.IO servers on loopback, each with a ledger.

``new_master("python" | "node", limit)`` makes one; ``started(masters)`` starts several at
once and stops them all on the way out, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from imdiag.masters.base import Master
from imdiag.masters.node import NodeMaster
from imdiag.masters.python import PythonMaster

SERVERS: dict[str, type[Master]] = {"python": PythonMaster, "node": NodeMaster}


def new_master(server: str, limit: int, namespace: str = "/", **options: Any) -> Master:
    """A master of the given server kind at ``limit``; ``options`` (host, port, path, ledger) as they are."""
    return SERVERS[server](limit=limit, namespace=namespace, **options)


@contextlib.asynccontextmanager
async def started(masters: Sequence[Master]) -> AsyncIterator[None]:
    """Start every master at once; stop them all on the way out (errors and Ctrl-C included)."""
    async with contextlib.AsyncExitStack() as stack:
        for master in masters:  # registered first: masters that did start are stopped if one fails
            stack.push_async_callback(master.stop)
        outcomes = await asyncio.gather(*(master.start() for master in masters), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        yield


__all__ = ["SERVERS", "Master", "NodeMaster", "PythonMaster", "new_master", "started"]
