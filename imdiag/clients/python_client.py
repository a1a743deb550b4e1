"""python-socketio's ``AsyncClient`` as the worker, in this process, with its defaults.

What the library does is read from the library: its own event handlers (connect, disconnect
with its reason, connect_error, and ``__disconnect_final``, which it fires when it will not
reconnect), its own log lines (python-engineio logs "Unexpected status code 400 in server
response, aborting" and "Server sent close packet data 1009, aborting"), and three hooks on its
Engine.IO client that observe without changing anything: ``_send_packet`` (a packet is queued,
or silently not, when the session is no longer connected), ``_send_request`` (each POST body as
the library encoded it, and its answer), the websocket's ``send_str`` (each frame), and
``_reset`` (what was still queued when the session ended is discarded).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from importlib.metadata import version
from typing import Any

import engineio
import socketio

from imdiag.clients.library import LibraryClient
from imdiag.core import worker as w
from imdiag.core.wire import RECORD_SEPARATOR, Transport

CLOSE_TIMEOUT_S = 2.0  # bounds each step of closing the library's client
_SETTLE_TURNS = 100

_instances = 0


class _LastWarning(logging.Handler):
    """The library's last warning: how it says a session ended."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.last = record.getMessage()[:300]


def _client_logger() -> tuple[logging.Logger, _LastWarning]:
    """One logger per client, so that each one's warnings are its own."""
    global _instances
    _instances += 1
    logger = logging.getLogger(f"imdiag.client.{_instances}")
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    warnings = _LastWarning()
    logger.addHandler(warnings)
    return logger, warnings


class _Observer:
    """Sees what the Engine.IO client queues, writes and discards; reports to the PythonClient."""

    def __init__(self, client: PythonClient):
        self.client = client
        self.current: int | None = None  # the seq being emitted right now
        self.queued: deque[int | None] = deque()  # the library's send queue, mirrored: each packet's seq
        self.in_flight: list[int] = []  # the last write that got no 2xx answer / raised
        self.failed_status: int | None = None
        self.failed_error = ""
        self.ended = False  # the library reset its session: later answers belong to a closed one
        self.ws: Any = None  # the session's websocket (aiohttp), for its close code

    def queue(self, connected: bool) -> None:
        seq, self.current = self.current, None
        if connected:
            self.queued.append(seq)
        elif seq is not None:
            # python-engineio drops a packet sent while its state is not "connected", silently.
            self.client.add(w.Dropped(self.client.now(), (), (seq,)))

    def take(self, frames: list[int], transport: str, body_bytes: int) -> list[int]:
        """The queued packets a write carries, one per frame (``frames``: the bytes of each, as
        written: the websocket frame, or each record of the POST body)."""
        taken = [self.queued.popleft() for _ in range(min(len(frames), len(self.queued)))]
        mine = [(size, seq) for size, seq in zip(frames, taken) if seq is not None]
        if mine:
            self.client.add(w.Flushed(
                self.client.now(), tuple(seq for _, seq in mine), body_bytes, len(taken),
                tuple(size for size, _ in mine), transport, self.client.current_sid(),
            ))
        return [seq for _, seq in mine]

    def answered(self, seqs: list[int], status: int | None, error: str = "") -> None:
        if status is not None and 200 <= status < 300 and not error:
            if seqs:
                self.client.add(w.Written(self.client.now(), tuple(seqs), status))
            return
        self.failed_status, self.failed_error = status, error
        if self.ended:
            # The session was reset while this write was in flight (the server's CLOSE won the race).
            if seqs:
                self.client.add(w.Dropped(self.client.now(), tuple(seqs), (), status, error))
        elif seqs:
            self.in_flight = seqs

    def reset(self) -> None:
        """The library is discarding its queue: the session is over."""
        self.ended = True
        unsent = tuple(seq for seq in self.queued if seq is not None)
        if self.in_flight or unsent:
            self.client.add(w.Dropped(self.client.now(), tuple(self.in_flight), unsent, self.failed_status, self.failed_error))
        self.queued.clear()
        self.in_flight = []


class _ObservedEngineIO(engineio.AsyncClient):  # type: ignore[misc]
    observer: _Observer | None = None

    async def _send_packet(self, pkt: Any) -> None:
        if self.observer is not None:
            self.observer.queue(self.state == "connected")
        await super()._send_packet(pkt)

    async def _send_request(self, method: str, url: str, headers: Any = None, body: Any = None,
                            timeout: Any = None) -> Any:
        obs = self.observer
        if obs is None or method != "POST" or body is None:
            return await super()._send_request(method, url, headers, body, timeout)
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        seqs = obs.take([len(record) for record in data.split(RECORD_SEPARATOR.encode())], "polling", len(data))
        answer = await super()._send_request(method, url, headers, body, timeout)
        status = getattr(answer, "status", None)
        obs.answered(seqs, status, "" if status is not None else str(answer))
        return answer

    async def _connect_websocket(self, url: str, headers: Any, engineio_path: str) -> bool:
        ok = await super()._connect_websocket(url, headers, engineio_path)
        if ok and self.observer is not None:
            self.observer.ws = self.ws
            _watch_frames(self.ws, self.observer)
        return bool(ok)

    async def _reset(self) -> None:
        if self.observer is not None:
            self.observer.reset()
        await super()._reset()


def _watch_frames(ws: Any, obs: _Observer) -> None:
    """Each text frame the library writes, as it writes it (an instance attribute over aiohttp's method)."""
    send_str = ws.send_str

    async def observed_send_str(data: str, compress: int | None = None) -> None:
        size = len(data.encode("utf-8"))
        seqs = obs.take([size], "websocket", size)
        try:
            await send_str(data, compress)
        except BaseException as exc:
            obs.answered(seqs, None, f"{type(exc).__name__}: {exc}")
            raise
        if seqs:
            obs.client.add(w.Written(obs.client.now(), tuple(seqs)))

    ws.send_str = observed_send_str


class _ObservedClient(socketio.AsyncClient):  # type: ignore[misc]
    def _engineio_client_class(self) -> type:
        return _ObservedEngineIO


class PythonClient(LibraryClient):
    """python-socketio's AsyncClient, library defaults (reconnection on, 1 s delay +- 50%)."""

    kind = w.ClientKind.PYTHON

    def __init__(self, url: str, namespace: str, path: str, transport: Transport, timeout: float):
        super().__init__(url, namespace, path, transport, timeout)
        self._logger, self._warnings = _client_logger()
        self._t0 = time.monotonic()
        self.sio: _ObservedClient | None = None
        self._observer: _Observer | None = None
        self.versions = {pkg: version(pkg) for pkg in ("python-socketio", "python-engineio", "aiohttp")}
        self._connecting: asyncio.Task[None] | None = None

    def now(self) -> float:
        return round(time.monotonic() - self._t0, 6)

    def current_sid(self) -> str | None:
        return self.sio.get_sid(self.namespace) if self.sio is not None else None

    def _new_client(self) -> _ObservedClient:
        # handle_sigint=False: imdiag handles Ctrl-C itself (and closes its clients).
        sio = _ObservedClient(logger=False, engineio_logger=self._logger, handle_sigint=False)
        observer = _Observer(self)
        sio.eio.observer = observer
        self._observer = observer
        ns = self.namespace

        async def on_connect() -> None:
            self._warnings.last = ""
            observer.ended, observer.failed_status = False, None
            transport = sio.transport() or ""
            self.add(w.Connected(self.now(), sio.get_sid(ns) or "", False, transport))

        async def on_disconnect(reason: Any = None) -> None:
            ws = observer.ws
            code = ws.close_code if ws is not None and sio.transport() == "websocket" else None
            self.add(w.Disconnected(
                self.now(), self.sid or "", str(reason), self._warnings.last, code, "",
                observer.failed_status,
            ))

        async def on_final() -> None:
            self.add(w.GaveUp(self.now(), "__disconnect_final"))

        async def on_connect_error(data: Any = None) -> None:
            self.add(w.ConnectFailed(self.now(), str(data)))

        async def on_any(event: str, *args: Any) -> None:
            self.add(w.Received(self.now(), event, self.sid))  # the master's own events (e.g. --csr ticks)

        sio.on("connect", on_connect, namespace=ns)
        sio.on("disconnect", on_disconnect, namespace=ns)
        # python-socketio fires this when a disconnect is final: it will not reconnect.
        sio.on("__disconnect_final", on_final, namespace=ns)
        sio.on("connect_error", on_connect_error, namespace=ns)
        sio.on("*", on_any, namespace=ns)
        return sio

    async def _open(self) -> None:
        self.sio = self._new_client()
        transports = None if self.transport is Transport.DEFAULT else [self.transport.value]
        try:
            await self.sio.connect(self.url, namespaces=[self.namespace], transports=transports,
                                   socketio_path=self.path.strip("/") or "/", wait_timeout=self.timeout)
        except (socketio.exceptions.ConnectionError, ValueError) as exc:
            self.add(w.ConnectFailed(self.now(), str(exc)))

    async def emit(self, seq: int, event: str, text: str) -> w.Emitted:
        sio, observer = self.sio, self._observer
        assert sio is not None and observer is not None
        # The library encodes what it is given: the parsed message, as a python worker holds it.
        value = json.loads(text)
        before, sid_before = bool(sio.connected), self.current_sid()
        observer.current = seq
        error = ""
        try:
            await sio.emit(event, value, namespace=self.namespace)
        except Exception as exc:  # noqa: BLE001 - what emit() raises is the observation
            error = f"{type(exc).__name__}: {exc}"
        finally:
            observer.current = None
        emitted = w.Emitted(self.now(), seq, error, before, sid_before, bool(sio.connected), self.current_sid(), False)
        self.add(emitted)
        return emitted

    async def settled(self) -> None:
        # python-socketio fires its connect handler before connect() sets ``connected``: a few
        # turns of the loop later a worker's emit sees connected: true.
        for _ in range(_SETTLE_TURNS):
            if self.sio is None or self.sio.connected or not self.connected:
                return
            await asyncio.sleep(0)  # sleep-ok: a yield to the loop, not a wait for time

    async def _replace(self) -> None:
        await self._shutdown()
        await self._open()

    async def _shutdown(self) -> None:
        sio, self.sio = self.sio, None
        if sio is None:
            return
        eio = sio.eio
        try:
            # Closing at any cost: whatever the library raises here changes nothing.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    if eio.state == "connected":
                        # Not sio.disconnect(): it waits for the long-poll GET to return (up to
                        # pingInterval, 25 s). abort=True sends CLOSE and stops without waiting.
                        await eio.disconnect(abort=True)
                    else:
                        await sio.shutdown()  # stops a reconnection under way
        finally:
            # Whatever the library still runs (its long-poll GET, a reconnection) ends here.
            for task in (eio.read_loop_task, eio.write_loop_task, sio._reconnect_task):
                if task is not None and not task.done():
                    task.cancel()
            if eio.http is not None and not eio.http.closed:
                await eio.http.close()

    async def close(self) -> None:
        await self._shutdown()
