"""Lanes: one master per (server, limit, transport), started together, driven concurrently.

Shared by the size sweep and the replay. A lane owns one connection at a time, reused until the
master closes it; all masters start at once on ephemeral loopback ports and are stopped on
the way out, whatever happened (errors, Ctrl-C).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import aiohttp

from imdiag.fake_master.ledger import Ledger
from imdiag.fake_master.server import MasterInfo, new_master
from imdiag.wire import Transport
from imdiag.worker.connection import Connection, Endpoint, open_connection

__all__ = ["LaneConnection", "Master", "new_master", "started_masters"]


class Master(Protocol):
    """A master with a ledger that imdiag starts and stops (python or node)."""

    ledger: Ledger
    limit: int

    @property
    def info(self) -> MasterInfo: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class LaneConnection:
    """The lane's current connection: opened on first use, reopened after the server closed it."""

    def __init__(self, endpoint: Endpoint, transport: Transport, session: aiohttp.ClientSession, timeout: float):
        self.endpoint = endpoint
        self.transport = transport
        self.session = session
        self.timeout = timeout
        self.advertised_max_payload: int | None = None
        self._conn: Connection | None = None

    @classmethod
    def to_master(cls, master: Master, transport: Transport, session: aiohttp.ClientSession,
                  timeout: float) -> LaneConnection:
        info = master.info
        return cls(Endpoint(url=info.url, namespace=info.namespace, path=info.path), transport, session, timeout)

    async def get(self) -> Connection:
        if self._conn is None or self._conn.closed.done():
            if self._conn is not None:
                await self._conn.close()
                self._conn = None
            self._conn = await open_connection(self.endpoint, self.transport, self.session, self.timeout)
            self.advertised_max_payload = self._conn.open_info.max_payload if self._conn.open_info else None
        return self._conn

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()


@contextlib.asynccontextmanager
async def started_masters(masters: Sequence[Master]) -> AsyncIterator[aiohttp.ClientSession]:
    """Start every master at once; yield a client session; stop them all on the way out."""
    async with contextlib.AsyncExitStack() as stack:
        for master in masters:  # registered first: masters that did start are stopped if one fails
            stack.push_async_callback(master.stop)
        outcomes = await asyncio.gather(*(master.start() for master in masters), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        # One connection per lane at a time; no pooling limit needed beyond that.
        yield await stack.enter_async_context(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)))
