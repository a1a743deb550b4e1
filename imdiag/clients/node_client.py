"""socket.io-client (the pinned npm package) as the worker, in a Node.js process imdiag drives.

``imdiag/node/client.js`` runs one socket.io-client socket with the library's defaults and
reports what the library does as JSON lines (connects with ``socket.id`` and ``recovered``,
disconnects with their reason and details, each batch its engine handed to the transport, with
the bytes engine.io-parser made of it); commands go the other way on its stdin (an emit is a
header line, then the message's JSON as one line). The process exits when its stdin closes, so
it never outlives imdiag; ``close()`` also stops it (stdin, SIGTERM, SIGKILL, each bounded).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections import deque
from typing import Any

from imdiag.clients.library import LibraryClient
from imdiag.core import worker as w
from imdiag.core.errors import TargetError
from imdiag.core.wire import Transport
from imdiag.masters.child import START_TIMEOUT_S, drain_stderr, parse_report, stop_process
from imdiag.masters.node import NODE_DIR, node_ready, node_script

CLIENT_JS = NODE_DIR / "client.js"
_LINE_LIMIT = 1 << 20  # reports are short: ids, counts, reasons


def _event(report: dict[str, Any], sid: str | None) -> w.ClientEvent | None:
    """One client.js report as a timeline event (``sid``: the client's socket id before it)."""
    kind, t = report.get("ev"), float(report.get("t", 0.0)) / 1000
    seqs = tuple(int(s) for s in report.get("seqs", ()))
    if kind == "connect":
        return w.Connected(t, str(report.get("id", "")), bool(report.get("recovered")), str(report.get("transport", "")),
                         str(report.get("extensions", "")))
    if kind == "upgrade":
        return w.Upgraded(t, str(report.get("transport", "")), str(report.get("extensions", "")))
    if kind == "disconnect":
        return w.Disconnected(
            t, sid or "", str(report.get("reason", "")), str(report.get("description", "")), report.get("code"),
            str(report.get("close_reason", "")), report.get("status"), bool(report.get("active")),
        )
    if kind == "connect_error":
        return w.ConnectFailed(t, str(report.get("message", "")))
    if kind == "reconnect_failed":
        return w.GaveUp(t, "reconnect_failed")
    if kind == "emit":
        return w.Emitted(
            t, int(report["seq"]), str(report.get("threw", "")), bool(report.get("connected_before")),
            report.get("id_before"), bool(report.get("connected")), report.get("id"), bool(report.get("buffered")),
        )
    if kind == "flush":
        return w.Flushed(t, seqs, int(report.get("bytes", 0)), int(report.get("packets", 0)),
                       tuple(int(f) for f in report.get("frames", ())), str(report.get("transport", "")), report.get("id"))
    if kind == "written":
        return w.Written(t, seqs)
    if kind == "received":
        return w.Received(t, str(report.get("event", "")), report.get("id"))
    if kind == "dropped":
        return w.Dropped(t, tuple(int(s) for s in report.get("in_flight", ())), tuple(int(s) for s in report.get("unsent", ())))
    return None


class NodeClient(LibraryClient):
    """socket.io-client in ``imdiag/node/client.js``: reconnection on, buffering on, its transports."""

    kind = w.ClientKind.NODE

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._proc: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stderr: deque[str] = deque(maxlen=20)
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._last_t = 0.0
        self.exited = asyncio.Event()

    def now(self) -> float:
        # The driver's clock: every event of a client is on the clock of its own process.
        return self._last_t

    async def _open(self) -> None:
        reason = node_ready()
        if reason is not None:
            raise TargetError(reason)
        argv, env = node_script(CLIENT_JS)
        transports = None if self.transport is Transport.DEFAULT else [self.transport.value]
        options = {"url": self.url, "namespace": self.namespace, "path": self.path, "transports": transports}
        self._ready = asyncio.get_running_loop().create_future()
        self._proc = await asyncio.create_subprocess_exec(
            *argv, json.dumps(options), cwd=NODE_DIR, env={**os.environ, **dict(env)},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, limit=_LINE_LIMIT,
            # A session of its own, as the master hosts: a Ctrl-C at the terminal reaches imdiag
            # alone, which then closes its clients (and writes what was measured).
            start_new_session=True,
        )
        try:
            assert self._proc.stderr is not None
            self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(drain_stderr(self._proc.stderr, self._stderr))]
            async with asyncio.timeout(START_TIMEOUT_S):
                ready = await self._ready
        except BaseException as exc:
            await self.close()
            if isinstance(exc, TimeoutError):
                raise TargetError(f"the node client did not start within {START_TIMEOUT_S:g} s") from None
            raise
        self.versions = {str(k): str(v) for k, v in ready.get("versions", {}).items()}

    async def _read(self) -> None:
        proc = self._proc  # its own: close() lets go of self._proc before the reports end
        assert proc is not None and proc.stdout is not None
        while True:
            try:
                line = await proc.stdout.readline()
            except ValueError:  # over the line limit: not a report of ours
                continue
            if not line:
                break
            report = parse_report(line)
            if report is None:
                continue
            self._last_t = float(report.get("t", 0.0)) / 1000
            if report.get("ev") == "ready" and self._ready is not None and not self._ready.done():
                self._ready.set_result(report)
                continue
            event = _event(report, self.sid)
            if event is not None:
                self.add(event)
        await proc.wait()
        if self._ready is not None and not self._ready.done():
            detail = " | ".join(self._stderr) or "no output"
            self._ready.set_exception(TargetError(f"the node client exited with code {proc.returncode}: {detail}"))
        self.exited.set()
        self.add(w.GaveUp(self._last_t, f"client.js exited ({proc.returncode})"))  # it will not come back

    async def _command(self, *lines: bytes) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None or self.exited.is_set():
            raise TargetError("the node client is not running" + (f": {' | '.join(self._stderr)}" if self._stderr else ""))
        for line in lines:
            proc.stdin.write(line)
        try:
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise TargetError("the node client exited" + (f": {' | '.join(self._stderr)}" if self._stderr else "")) from None

    async def emit(self, seq: int, event: str, text: str) -> w.Emitted:
        header = json.dumps({"op": "emit", "seq": seq, "event": event})
        await self._command(header.encode() + b"\n", text.encode("utf-8", "surrogatepass") + b"\n")
        found: list[w.Emitted] = []

        def emitted() -> bool:
            found[:] = [e for e in reversed(self.events) if isinstance(e, w.Emitted) and e.seq == seq][:1]
            return bool(found) or self.exited.is_set()

        # A 16 MB message takes Node a moment to parse and encode: bounded like any other answer.
        await self.wait_until(emitted, self.timeout + len(text) / 1_000_000)
        if not found:
            raise TargetError(f"the node client did not report its emit of message {seq} within {self.timeout:g} s")
        return found[0]

    async def _replace(self) -> None:
        await self._command(b'{"op":"replace"}\n')

    async def close(self) -> None:
        proc, self._proc = self._proc, None
        readers, self._tasks = self._tasks, []
        if proc is not None:
            # stdin closes: client.js disconnects its socket and exits; its reports are all read.
            await stop_process(proc, readers)
