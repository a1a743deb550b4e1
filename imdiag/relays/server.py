"""The tap's listener: each worker connection gets its own upstream connection and is relayed.

``Relay`` binds the listening address, dials the upstream (TLS when it is https) for every
connection a worker opens, and hands the pair to ``RelayedConnection``. A worker whose upstream
connection cannot be opened is reset at once, as a master that is down would: the worker sees a
connection error, not an answer the master never gave.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import ssl
from dataclasses import dataclass

from imdiag.core.errors import TargetError
from imdiag.relays.connection import MAX_HEAD, RelayedConnection, RelayObserver, abort
from imdiag.relays.streams import open_stream, start_stream_server

CONNECT_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Upstream:
    """Where the master listens."""

    host: str
    port: int
    tls: bool = False
    insecure: bool = False

    @property
    def authority(self) -> str:
        """What the ``Host`` header names: the port only when it is not the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.tls else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.authority}"

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context()
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    async def connect(self, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        context = self.ssl_context()
        return await asyncio.wait_for(
            open_stream(self.host, self.port, ssl=context, server_hostname=self.host if context else None,
                        limit=MAX_HEAD),
            timeout,
        )


def describe_connect_error(upstream: Upstream, exc: BaseException, timeout: float) -> str:
    where = f"the upstream {upstream.url}"
    if isinstance(exc, TimeoutError):
        return f"cannot reach {where}: no answer within {timeout:g} s"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"cannot reach {where}: TLS certificate not trusted ({exc.verify_message}); use --insecure for self-signed certificates"
    if isinstance(exc, ssl.SSLError):
        return f"cannot reach {where}: TLS failed ({exc.reason or exc})"
    if isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
        return f"cannot reach {where}: connection refused (nothing listens on port {upstream.port}?)"
    if isinstance(exc, OSError):
        return f"cannot reach {where}: {exc.strerror or exc}"
    return f"cannot reach {where}: {type(exc).__name__}: {exc}"


class Relay:
    """``await relay.start()``, point workers at ``relay.port``, ``await relay.stop()``."""

    def __init__(self, upstream: Upstream, observer: RelayObserver, *, host: str = "127.0.0.1", port: int = 0,
                 connect_timeout: float = CONNECT_TIMEOUT_S):
        self.upstream = upstream
        self.observer = observer
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self._server: asyncio.Server | None = None
        self._connections: dict[int, RelayedConnection] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._exchanges = itertools.count(1)

    async def check_upstream(self) -> None:
        """Open one connection to the upstream (and its TLS handshake) and close it: TargetError if not."""
        try:
            _, writer = await self.upstream.connect(self.connect_timeout)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise TargetError(describe_connect_error(self.upstream, exc, self.connect_timeout)) from None
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()

    async def start(self) -> None:
        try:
            self._server = await start_stream_server(self._accept, self.host, self.port, limit=MAX_HEAD,
                                                     reuse_address=True)
        except OSError as exc:
            raise TargetError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def buffered(self) -> int:
        """Bytes held in user space by every relayed connection right now."""
        return sum(c.buffered for c in self._connections.values())

    @property
    def connections(self) -> int:
        return len(self._connections)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = next(self._ids)
        peer = writer.get_extra_info("peername")
        peer_text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        try:
            self.observer.connection(conn, peer_text)
            try:
                upstream = await self.upstream.connect(self.connect_timeout)
            except (OSError, TimeoutError, ssl.SSLError) as exc:
                self.observer.unreachable(peer_text, describe_connect_error(self.upstream, exc, self.connect_timeout))
                abort(writer)
                self.observer.connection_closed(conn)
                return
            relayed = RelayedConnection(conn, (reader, writer), upstream, self.upstream.authority, self.observer,
                                        lambda: next(self._exchanges))
            self._connections[conn] = relayed
            try:
                await relayed.run()
            finally:
                self._connections.pop(conn, None)
        finally:
            self._tasks.discard(task)

    async def stop(self) -> None:
        """Stop listening, end every relayed connection (FIN both ways), wait for them (bounded)."""
        if self._server is not None:
            self._server.close()
        for relayed in list(self._connections.values()):
            relayed.close()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=STOP_TIMEOUT_S)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=STOP_TIMEOUT_S)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), STOP_TIMEOUT_S)
            self._server = None
