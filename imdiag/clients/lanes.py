"""A lane's connection: one connection at a time to one master over one transport, reused until
the master closes it, then reopened. Shared by the size sweep and the replay."""

from __future__ import annotations

import aiohttp

from imdiag.clients.engineio import Connection, Endpoint, open_connection
from imdiag.core.model import MasterInfo
from imdiag.core.wire import Transport


class LaneConnection:
    """The lane's current connection: opened on first use, reopened after the server closed it."""

    def __init__(self, endpoint: Endpoint, transport: Transport, session: aiohttp.ClientSession, timeout: float):
        self.endpoint = endpoint
        self.transport = transport
        self.session = session
        self.timeout = timeout
        self.advertised_max_payload: int | None = None
        self.upgrades: tuple[str, ...] = ()  # what the last handshake offered (polling lists them)
        self._conn: Connection | None = None

    @classmethod
    def to_master(cls, info: MasterInfo, transport: Transport, session: aiohttp.ClientSession,
                  timeout: float) -> LaneConnection:
        return cls(Endpoint(url=info.url, namespace=info.namespace, path=info.path), transport, session, timeout)

    async def get(self) -> Connection:
        if self._conn is None or self._conn.closed.done():
            if self._conn is not None:
                await self._conn.close()
                self._conn = None
            self._conn = await open_connection(self.endpoint, self.transport, self.session, self.timeout)
            info = self._conn.open_info
            self.advertised_max_payload = info.max_payload if info else None
            self.upgrades = info.upgrades if info else ()
        return self._conn

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()


def client_session() -> aiohttp.ClientSession:
    """One client session for all lanes: one connection per lane at a time, no pooling limit beyond that."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
