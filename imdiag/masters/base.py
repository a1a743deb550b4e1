"""What every master imdiag starts shares: where it listens, its limit, its ledger."""

from __future__ import annotations

import asyncio
from typing import Self

from imdiag.core.model import MasterInfo
from imdiag.masters.ledger import Ledger


class Master:
    """A real Socket.IO server imdiag starts and stops, with a ledger of what it received.

    ``async with PythonMaster(limit=1_000_000) as master:`` then point a worker at ``master.url``.
    """

    server = ""

    def __init__(
        self,
        *,
        limit: int,
        namespace: str = "/",
        path: str = "/socket.io/",
        host: str = "127.0.0.1",
        port: int = 0,
        ledger: Ledger | None = None,
    ):
        self.limit = limit
        self.namespace = namespace
        self.path = path
        self.host = host
        self.port = port
        self.ledger = ledger if ledger is not None else Ledger()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address goes in brackets
        return f"http://{host}:{self.port}"

    @property
    def versions(self) -> dict[str, str]:
        raise NotImplementedError

    @property
    def info(self) -> MasterInfo:
        return MasterInfo(self.server, self.url, self.limit, self.versions, self.namespace, self.path)

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def wait_died(self) -> str:
        """Returns (why) if the server stops by itself (its process died); never, by default."""
        await asyncio.Event().wait()
        return ""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
