"""The python master: a real python-socketio AsyncServer on aiohttp, nothing emulated.

It is bound to a loopback port (ephemeral by default) with ``max_http_buffer_size`` set to the
limit. Whatever python-socketio and aiohttp do at that limit is what this master does: its
quirks are observed and reported, never patched. The master records into a ``Ledger`` what its
handler received, each connect and disconnect (with python-socketio's reason), and every error
the server logged (that is how a JSON decode error on a truncated polling body is seen).
"""

from __future__ import annotations

import contextvars
import logging
import socket
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import socketio
from aiohttp import web
from aiohttp.typedefs import Handler

from imdiag.core.errors import TargetError
from imdiag.core.quirks import PYTHON_DECODE_ERROR_LOGS
from imdiag.masters.base import Master
from imdiag.masters.ledger import Ledger

SERVER_NAME = "python"


def server_versions() -> dict[str, str]:
    return {pkg: version(pkg) for pkg in ("python-socketio", "python-engineio", "aiohttp")}


# The request a log line was written under: its engine.io sid and, for a POST, its
# Content-Length. aiohttp handles a request in one task, and the handler tasks python-engineio
# starts from it copy its context, so a decode error logged there names the POST that was lost.
_REQUEST: contextvars.ContextVar[tuple[str, int | None]] = contextvars.ContextVar("imdiag_request", default=("", None))


@web.middleware
async def _remember_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    _REQUEST.set((request.query.get("sid", ""), request.content_length if request.method == "POST" else None))
    return await handler(request)


class _LedgerLogHandler(logging.Handler):
    """Turns the server's own error log lines into ledger entries (observation, not a patch)."""

    def __init__(self, ledger: Ledger, socket_sid: Callable[[str], str | None]):
        super().__init__(level=logging.WARNING)
        self.ledger = ledger
        self.socket_sid = socket_sid

    def emit(self, record: logging.LogRecord) -> None:
        error = ""
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            error = f"{type(exc).__name__}: {exc}"
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call must not break the master
            message = str(record.msg)
        decode = any(message.startswith(m) for m in PYTHON_DECODE_ERROR_LOGS)
        eio_sid, body_bytes = _REQUEST.get()
        # The socket.io sid, as arrivals and connects show it; the engine.io one once it is gone.
        sid = (self.socket_sid(eio_sid) or eio_sid) if eio_sid else ""
        self.ledger.error(record.name, message[:500], error[:500], decode, sid=sid, body_bytes=body_bytes)


_instances = 0


class PythonMaster(Master):
    """python-socketio's ``AsyncServer`` on aiohttp, in this process, ``max_http_buffer_size`` = limit."""

    server = SERVER_NAME

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        global _instances
        _instances += 1
        # One logger per instance, so errors are attributed to the right master.
        self._logger = logging.getLogger(f"imdiag.master.{_instances}")
        self._logger.propagate = False
        self._logger.setLevel(logging.WARNING)
        self._logger.addHandler(_LedgerLogHandler(self.ledger, self._socket_sid))
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            max_http_buffer_size=self.limit,
            logger=self._logger,
            engineio_logger=self._logger,
            cors_allowed_origins="*",
        )
        self._register_handlers()
        self._runner: web.AppRunner | None = None

    def _socket_sid(self, eio_sid: str) -> str | None:
        try:
            sid = self.sio.manager.sid_from_eio_sid(eio_sid, self.namespace)
        except Exception:  # noqa: BLE001 - a log line must never break the master
            return None
        return sid if isinstance(sid, str) else None

    def _register_handlers(self) -> None:
        ns = self.namespace
        ledger = self.ledger

        async def on_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
            ledger.connect(sid, ns)

        async def on_disconnect(sid: str, reason: Any = None) -> None:
            ledger.disconnect(sid, ns, str(reason))

        async def on_any(event: str, sid: str, *args: Any) -> bool:
            # The first argument is the message; the record happens before any await,
            # so arrivals keep the order in which the server dispatched them.
            ledger.arrival(sid, ns, event, args[0] if args else None)
            return True  # acknowledges, when the sender asked for an ack

        self.sio.on("connect", on_connect, namespace=ns)
        self.sio.on("disconnect", on_disconnect, namespace=ns)
        self.sio.on("*", on_any, namespace=ns)

    @property
    def versions(self) -> dict[str, str]:
        return server_versions()

    async def start(self) -> None:
        app = web.Application(middlewares=[_remember_request])
        self.sio.attach(app, socketio_path=self.path.strip("/"))
        # On stop, give requests still in flight 50 ms, then cancel them. python-engineio
        # holds a long-poll GET for up to pingInterval + pingTimeout (45 s) even after the
        # client closed its session, and aiohttp would wait up to 60 s for it by default.
        # (aiohttp reads 0 as "no timeout", hence a small positive bound.)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.05)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise TargetError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        server = site._server
        assert server is not None and server.sockets
        sock: socket.socket = server.sockets[0]
        self.port = sock.getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            # Sessions are closed with the server; shutdown() also stops its background tasks.
            await self.sio.shutdown()
            await runner.cleanup()
