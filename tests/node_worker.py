"""The real socket.io-client as a worker: ``tests/node/worker.js`` in a child process, driven by JSON lines."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from imdiag.masters.node_packages import node_env

WORKER_JS = Path(__file__).parent / "node" / "worker.js"
REPO = Path(__file__).parent.parent
Event = dict[str, Any]


class NodeWorker:
    """``async with NodeWorker(url, options) as worker``: its reports arrive in ``events``."""

    def __init__(self, url: str, options: dict[str, Any] | None = None, count: int = 1):
        self.config = {"url": url, "options": options or {}, "count": count}
        self.events: list[Event] = []
        self._changed = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._proc = await asyncio.create_subprocess_exec(
            "node", str(WORKER_JS), json.dumps(self.config), cwd=REPO, env=node_env(),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 24,
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        with contextlib.suppress(ConnectionError):
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            self.events.append(json.loads(line))
            self._changed.set()
            self._changed = asyncio.Event()

    def send(self, **command: Any) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(command).encode() + b"\n")

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float, count: int = 1) -> list[Event]:
        """The first ``count`` events matching ``predicate`` (waiting for them, bounded)."""
        async with asyncio.timeout(timeout):
            while len(found := [e for e in self.events if predicate(e)]) < count:
                await self._changed.wait()
        return found[:count]


def kind(name: str, **fields: Any) -> Callable[[Event], bool]:
    return lambda e: e.get("event") == name and all(e.get(k) == v for k, v in fields.items())
