"""The python masters' process: python-socketio ``AsyncServer``s on a real web server, nothing emulated.

Started by ``PythonMaster`` as ``python -m imdiag.masters.python_host aiohttp`` (and by
``AsgiMaster`` with ``uvicorn``); it serves every master it is asked for and reports what they
see, in the master protocol (``imdiag.masters.child``). The argument names the web server the
``AsyncServer`` runs on (``WEB_SERVERS``): aiohttp, or uvicorn serving ``socketio.ASGIApp`` (the
way FastAPI users run it). Each master is a real ``socketio.AsyncServer`` with
``max_http_buffer_size`` set to the limit, bound to a loopback port: whatever python-socketio,
python-engineio and the web server do at that limit is what it does (aiohttp refuses a websocket
frame of exactly the limit; python-engineio reads an aiohttp POST body with one ``read(length)``
and can cut it; under ASGI it compares a websocket message's ``len()``, in characters, and closes
with 1000; uvicorn refuses a message over its own ``ws_max_size`` with 1009), observed and
reported, never patched.
Its ledger lines: what the handler received (type, id, ``canonical_digest`` and bytes, unless
it has an id and the ledger is ``by_id``; the arrival even when the digest fails), each connect and disconnect with python-socketio's reason, and every
error the server logged, with the sid and POST size of the request it was logged under.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import os
import socket
import sys
from collections.abc import Callable
from importlib.metadata import version
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import socketio
from aiohttp import web
from aiohttp.typedefs import Handler

from imdiag.core.entries import DIGEST_FAILED, arrival_digest
from imdiag.core.quirks import PYTHON_DECODE_ERROR_LOGS
from imdiag.core.wire import Encoder, encode_json

if TYPE_CHECKING:
    # For type checkers only (start-up time): only the uvicorn host loads uvicorn.
    import uvicorn

VERSIONED = ("python-socketio", "python-engineio")  # and the web server's own packages
COMMAND_LINE_LIMIT = 1 << 20


def report(line: dict[str, Any]) -> None:
    """One line to the parent, written whole before the server goes on (dispatch order)."""
    try:
        text = json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode()
    except (UnicodeEncodeError, RecursionError):
        # A lone surrogate in a decoded string, or a recorded message nested deeper than json's
        # C encoder goes: everything escaped, written without recursion.
        text = encode_json(line, Encoder.PYTHON).encode()
    view = memoryview(text + b"\n")
    while view:
        try:
            view = view[os.write(1, view):]  # fd 1 is a blocking pipe: a slow parent slows the server
        except BrokenPipeError:
            os._exit(0)  # the parent is gone


# The request a log line was written under: its engine.io sid and, for a POST, its
# Content-Length. aiohttp handles a request in one task, and the handler tasks python-engineio
# starts from it copy its context, so a decode error logged there names the POST that was lost.
_REQUEST: contextvars.ContextVar[tuple[str, int | None]] = contextvars.ContextVar("imdiag_request", default=("", None))


@web.middleware
async def _remember_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    _REQUEST.set((request.query.get("sid", ""), request.content_length if request.method == "POST" else None))
    return await handler(request)


def _remember_asgi_request(app: Any) -> Any:
    """The same for an ASGI app: uvicorn runs each request in a task of its own."""

    async def remembering(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") in ("http", "websocket"):
            sid = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("sid", [""])[0]
            length = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
            body = int(length) if scope.get("method") == "POST" and length is not None and length.isdigit() else None
            _REQUEST.set((sid, body))
        await app(scope, receive, send)

    return remembering


class _ReportLogHandler(logging.Handler):
    """Turns the server's own error log lines into ledger lines (observation, not a patch)."""

    def __init__(self, key: str, socket_sid: Callable[[str], str | None]):
        super().__init__(level=logging.WARNING)
        self.key = key
        self.socket_sid = socket_sid

    def emit(self, record: logging.LogRecord) -> None:
        error = ""
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            error = f"{type(exc).__name__}: {exc}"
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed log call must not break the master
            message = str(record.msg)
        decode = any(message.startswith(m) for m in PYTHON_DECODE_ERROR_LOGS)
        eio_sid, body_bytes = _REQUEST.get()
        # The socket.io sid, as arrivals and connects show it; the engine.io one once it is gone.
        sid = (self.socket_sid(eio_sid) or eio_sid) if eio_sid else ""
        report({"key": self.key, "event": "error", "logger": record.name, "message": message[:500],
                "error": error[:500], "decode": decode, "sid": sid, "body_bytes": body_bytes})


def _summary(message: Any) -> Any:
    """What an arrival line carries of a message that is not recorded: its type and id, when
    they are strings (as the ledger keeps them, and master.js sends them)."""
    if not isinstance(message, dict):
        return None
    return {k: message[k] for k in ("type", "id") if isinstance(message.get(k), str)}


class AiohttpServer:
    """The ``AsyncServer`` attached to an aiohttp ``web.Application`` on its own TCP site."""

    async_mode = "aiohttp"
    packages = ("aiohttp",)

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None

    async def start(self, sio: socketio.AsyncServer, host: str, port: int, path: str) -> int:
        """Listen; the port it got."""
        app = web.Application(middlewares=[_remember_request])
        sio.attach(app, socketio_path=path.strip("/"))
        # On stop, give requests still in flight 50 ms, then cancel them. python-engineio
        # holds a long-poll GET for up to pingInterval + pingTimeout (45 s) even after the
        # client closed its session, and aiohttp would wait up to 60 s for it by default.
        # (aiohttp reads 0 as "no timeout", hence a small positive bound.)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.05)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            self._runner = None
            raise
        server = site._server
        assert server is not None and server.sockets
        sock: socket.socket = server.sockets[0]
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()


class UvicornServer:
    """``socketio.ASGIApp`` served by uvicorn on its own socket, as ``uvicorn app:app`` serves it.

    uvicorn's websocket implementation is named, not left to ``ws="auto"`` (which takes the
    ``websockets`` package when it is installed): wsproto, which python-engineio's own dependencies
    bring, so every install runs the same one (``[reference.asgi]`` in ``servers.toml``). Its
    ``ws_max_size`` keeps uvicorn's default (16 MiB): a limit of the web server, below the
    master's own when ``max_http_buffer_size`` is larger.
    """

    async_mode = "asgi"
    packages = ("uvicorn", "wsproto", "h11")

    def __init__(self) -> None:
        self._server: uvicorn.Server | None = None
        self._ticks: asyncio.Task[None] | None = None

    async def start(self, sio: socketio.AsyncServer, host: str, port: int, path: str) -> int:
        """Listen; the port it got."""
        # Imported here for start-up time: the aiohttp host (every default sweep) never needs it.
        import uvicorn

        app = _remember_asgi_request(socketio.ASGIApp(sio, socketio_path=path.strip("/")))
        # No lifespan (the app needs none), no logging setup of uvicorn's own (its error logger
        # reaches the host's stderr, which the parent keeps), a short grace on stop: python-engineio
        # holds a long-poll GET for up to 45 s.
        config = uvicorn.Config(app, host=host, port=port, http="h11", ws="wsproto", lifespan="off",
                                log_config=None, access_log=False, timeout_graceful_shutdown=1)
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        # A socket of our own: uvicorn exits the process when it cannot bind one itself. Named
        # IPPROTO_TCP, or asyncio leaves Nagle on (every polling POST would wait 40 ms for an ACK).
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            # What uvicorn.Server.serve() does, without taking over the host's signal handlers
            # (one host serves several masters): start, then its ticker (Date and Server headers).
            await server.startup(sockets=[sock])
        except BaseException:
            sock.close()
            raise
        self._server = server
        self._ticks = asyncio.create_task(server.main_loop())
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        server, ticks = self._server, self._ticks
        self._server = self._ticks = None
        if server is None or ticks is None:
            return
        server.should_exit = True
        await ticks
        await server.shutdown()


WebServer = type[AiohttpServer] | type[UvicornServer]
# The web servers a python host can run its masters on, by the name on its command line.
WEB_SERVERS: dict[str, WebServer] = {"aiohttp": AiohttpServer, "uvicorn": UvicornServer}


class HostedMaster:
    """One python-socketio ``AsyncServer`` at one limit and port, on the host's web server."""

    def __init__(self, key: str, options: dict[str, Any], web_server: WebServer):
        self.key = key
        self.limit = int(options["limit"])
        self.namespace = str(options.get("namespace", "/"))
        self.path = str(options.get("path", "/socket.io/"))
        self.host = str(options.get("host", "127.0.0.1"))
        self.port = int(options.get("port", 0))
        self.record = bool(options.get("record", False))
        self.by_id = bool(options.get("by_id", False))
        # One logger per master, so errors are attributed to the right one.
        logger = logging.getLogger(f"imdiag.master.{key}")
        logger.propagate = False
        logger.setLevel(logging.WARNING)
        logger.addHandler(_ReportLogHandler(key, self._socket_sid))
        self.sio = socketio.AsyncServer(
            async_mode=web_server.async_mode, max_http_buffer_size=self.limit, logger=logger,
            engineio_logger=logger, cors_allowed_origins="*",
        )
        self._register_handlers()
        self._web = web_server()
        self._started = False

    def _socket_sid(self, eio_sid: str) -> str | None:
        try:
            sid = self.sio.manager.sid_from_eio_sid(eio_sid, self.namespace)
        except Exception:  # noqa: BLE001 - a log line must never break the master
            return None
        return sid if isinstance(sid, str) else None

    def _register_handlers(self) -> None:
        key, ns, record, by_id = self.key, self.namespace, self.record, self.by_id

        async def on_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
            report({"key": key, "event": "connect", "sid": sid, "namespace": ns})

        async def on_disconnect(sid: str, reason: Any = None) -> None:
            report({"key": key, "event": "disconnect", "sid": sid, "namespace": ns, "reason": str(reason)})

        async def on_any(event: str, sid: str, *args: Any) -> bool:
            # The first argument is the message; the line is written before any await, so
            # arrivals keep the order in which the server dispatched them.
            message = args[0] if args else None
            digest, size, failed = arrival_digest(message, by_id=by_id)
            if failed is not None:
                report({"key": key, "event": "error", "logger": "imdiag.ledger", "message": DIGEST_FAILED,
                        "error": failed, "decode": False, "sid": sid})
            report({"key": key, "event": "arrival", "sid": sid, "namespace": ns, "name": event,
                    "message": message if record else _summary(message), "digest": digest, "bytes": size})
            return True  # acknowledges, when the sender asked for an ack

        self.sio.on("connect", on_connect, namespace=ns)
        self.sio.on("disconnect", on_disconnect, namespace=ns)
        self.sio.on("*", on_any, namespace=ns)

    async def start(self) -> int:
        port = await self._web.start(self.sio, self.host, self.port, self.path)
        self._started = True
        return port

    async def stop(self) -> None:
        if self._started:
            self._started = False
            # Sessions are closed with the server; shutdown() also stops its background tasks.
            await self.sio.shutdown()
            await self._web.stop()


async def _command(masters: dict[str, HostedMaster], command: dict[str, Any],
                   web_server: WebServer) -> None:
    key = str(command.get("key"))
    if command.get("cmd") == "start":
        try:
            master = HostedMaster(key, command, web_server)
            port = await master.start()
        except OSError as exc:
            where = f"{command.get('host')}:{command.get('port')}"
            report({"key": key, "event": "failed", "error": f"cannot listen on {where}: {exc.strerror or exc}"})
            return
        except (ValueError, TypeError, KeyError) as exc:
            report({"key": key, "event": "failed", "error": f"bad start command: {exc}"})
            return
        masters[key] = master
        report({"key": key, "event": "listening", "port": port})
    elif command.get("cmd") == "stop":
        stopping = masters.pop(key, None)
        if stopping is not None:
            await stopping.stop()
        report({"key": key, "event": "stopped"})


async def serve(web_server: WebServer) -> None:
    """Serve commands from stdin until it closes; then stop every master and return."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=COMMAND_LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    masters: dict[str, HostedMaster] = {}
    tasks: set[asyncio.Task[None]] = set()
    versioned = (*VERSIONED, *web_server.packages)
    report({"event": "ready", "versions": {pkg: version(pkg) for pkg in versioned}})
    try:
        while line := await reader.readline():
            try:
                command = json.loads(line)
            except ValueError:
                continue  # not from imdiag; nothing to answer
            # Commands run side by side: six masters stop in the time of one.
            task = asyncio.create_task(_command(masters, command, web_server))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    finally:
        if tasks:
            await asyncio.wait(tasks)
        await asyncio.gather(*(m.stop() for m in masters.values()), return_exceptions=True)


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "aiohttp"
    if name not in WEB_SERVERS:
        print(f"unknown web server {name!r}; known: {', '.join(WEB_SERVERS)}", file=sys.stderr)
        sys.exit(2)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(WEB_SERVERS[name]))
    # Every line went out with a blocking write and every server has stopped: no need to wait
    # for the interpreter to tear down socketio and aiohttp (the parent waits for this exit).
    os._exit(0)


if __name__ == "__main__":
    main()
