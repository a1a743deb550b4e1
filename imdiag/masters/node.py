"""The real Node.js Socket.IO master, driven from python exactly like ``PythonMaster``.

``imdiag/node/master.js`` runs a socket.io v4 server (nothing emulated) and reports each
connect, arrival, disconnect and server-side error as one JSON line on stdout, in the order the
server dispatched them. A reader task feeds those lines into the ``Ledger`` in that order, so
the sweep's barrier logic holds: once a later message's arrival is in the ledger, every earlier
one the server dispatched is too. The Node process reads its stdin only to notice that it
closed: it exits when this process goes away, even if ``stop()`` never ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from collections import deque
from typing import Any

from imdiag.core.errors import TargetError
from imdiag.masters.base import Master
from imdiag.masters.ledger import Ledger
from imdiag.masters.node_packages import (
    INSTALL_HINT,
    NODE_DIR,
    NodePackages,
    locate,
    missing_tools,
    node_env,
)

SERVER_NAME = "node"
MASTER_JS = NODE_DIR / "master.js"

START_TIMEOUT_S = 15.0  # node start-up plus require() of socket.io, on a slow CI machine
STOP_TIMEOUT_S = 5.0  # after stdin closes, before SIGTERM; then as long again before SIGKILL
_LINE_LIMIT = 1 << 24  # an arrival line holds only type/id, but those are the sender's strings


def node_ready() -> str | None:
    """None when Node.js and the pinned npm packages are usable, else a one-line reason."""
    return _packages_or_reason()[1]


def _packages_or_reason() -> tuple[NodePackages | None, str | None]:
    if shutil.which("node") is None:
        return None, missing_tools() or "Node.js is not installed"
    if not MASTER_JS.is_file():
        return None, f"{MASTER_JS} is missing from this installation of imdiag"
    packages = locate()
    if not packages.installed:
        return None, (f"the pinned npm packages of the node master are not installed in {packages.prefix} "
                      f"({packages.source}); {INSTALL_HINT}")
    return packages, None


class NodeMaster(Master):
    """socket.io's ``Server`` on Node.js (``imdiag/node/master.js``), a child process."""

    server = SERVER_NAME

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._versions: dict[str, str] = {}
        self._proc: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stderr: deque[str] = deque(maxlen=20)
        self._stopping = False
        self.returncode: int | None = None  # the Node process's exit status, once it exited
        self._died = ""
        self._died_event = asyncio.Event()

    @property
    def versions(self) -> dict[str, str]:
        return dict(self._versions)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        packages, reason = _packages_or_reason()
        if packages is None:
            raise TargetError(reason or "the node master cannot start")
        node = shutil.which("node")
        assert node is not None
        self._stopping = False
        self.returncode = None
        options = dict(limit=self.limit, namespace=self.namespace, path=self.path, host=self.host, port=self.port)
        self._proc = await asyncio.create_subprocess_exec(
            node, str(MASTER_JS), json.dumps(options),
            cwd=NODE_DIR, env=node_env(packages), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            limit=_LINE_LIMIT,
        )
        try:
            self._tasks.append(asyncio.create_task(self._drain_stderr()))
            listening = await self._await_listening()
        except BaseException:
            # Failed or cancelled while starting: the process must not outlive this call.
            try:
                await self._terminate()
            finally:
                self._cancel_tasks()
                self._proc = None
                self._tasks = []
            raise
        self.port = int(listening["port"])
        self._versions = {str(k): str(v) for k, v in listening.get("versions", {}).items()}
        self._tasks.append(asyncio.create_task(self._read_reports()))

    async def _await_listening(self) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while line := await self._proc.stdout.readline():
                    report = _parse(line)
                    if report is not None and report.get("event") == "listening":
                        return report
                # EOF before "listening": the process failed; wait for it and its stderr.
                await self._proc.wait()
                await asyncio.gather(*self._tasks, return_exceptions=True)
        except TimeoutError:
            raise TargetError(f"the node master did not start listening within {START_TIMEOUT_S:g} s") from None
        detail = " | ".join(self._stderr) or "no output"
        raise TargetError(f"the node master exited with code {self._proc.returncode}: {detail}")

    async def _drain_stderr(self) -> None:
        # Keep the last lines for error messages; an unread pipe could also block Node.
        assert self._proc is not None and self._proc.stderr is not None
        while line := await self._proc.stderr.readline():
            self._stderr.append(line.decode(errors="replace").rstrip()[:300])

    async def _read_reports(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        ledger = self.ledger
        while True:
            try:
                line = await self._proc.stdout.readline()
            except ValueError:  # a line over _LINE_LIMIT: the stream drops it and goes on
                ledger.error("imdiag.node", "a line from master.js was over the read limit", "", False)
                continue
            if not line:
                break
            report = _parse(line)
            if report is None:
                ledger.error("imdiag.node", "unparseable line from master.js", line[:200].decode(errors="replace"), False)
            else:
                _feed(ledger, report)
        code = await self._proc.wait()
        if not self._stopping:
            # The master died on its own (e.g. an uncaught exception): that is an observation.
            await asyncio.gather(*self._tasks[:1], return_exceptions=True)
            detail = " | ".join(self._stderr)
            ledger.error("imdiag.node", f"the node master exited with code {code}", detail[-500:], False)
            self._died = f"the node master exited with code {code}" + (f": {detail[-300:]}" if detail else "")
            self._died_event.set()

    async def wait_died(self) -> str:
        """Returns (why) only if the Node process exits by itself, not when stop() ends it."""
        await self._died_event.wait()
        return self._died

    async def _terminate(self) -> None:
        """Stop the process: close stdin, then SIGTERM, then SIGKILL; each wait bounded."""
        proc = self._proc
        if proc is None:
            return
        self._stopping = True
        try:
            if proc.stdin is not None and not proc.stdin.is_closing():
                proc.stdin.close()
            for signal_step in (None, proc.terminate, proc.kill):
                if proc.returncode is not None:
                    break
                if signal_step is not None:
                    with contextlib.suppress(ProcessLookupError):
                        signal_step()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
        except BaseException:
            # Cancelled while stopping: kill at once, without awaiting anything more.
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            self._cancel_tasks()
            raise

    def _cancel_tasks(self) -> None:
        for task in self._tasks:
            if not task.done():
                task.cancel()

    async def stop(self) -> None:
        if self._proc is None:
            return
        try:
            await self._terminate()
            # The readers reach EOF once the process is gone: the ledger then holds every line.
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT_S)
        finally:
            self._cancel_tasks()
            self.returncode = self._proc.returncode
            self._proc = None
            self._tasks = []


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        report = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return report if isinstance(report, dict) else None


def _feed(ledger: Ledger, report: dict[str, Any]) -> None:
    """One master.js report line into the ledger."""
    kind = report.get("event")
    sid = str(report.get("sid", ""))
    namespace = str(report.get("namespace", "/"))
    if kind == "arrival":
        ledger.arrival(
            sid, namespace, str(report.get("name")), report.get("message"),
            digest=str(report.get("digest", "")), size=int(report.get("bytes", 0)),
        )
        if report.get("connected") is False:
            # socket.io calls onAny listeners but not socket.on(event) handlers after disconnect.
            ledger.error(
                "socket.io", f"socket {sid} dispatched an event after its disconnect",
                "a socket.on(event) handler would not have run for it", False,
            )
    elif kind == "connect":
        ledger.connect(sid, namespace)
    elif kind == "disconnect":
        ledger.disconnect(sid, namespace, str(report.get("reason", "")))
    elif kind == "error":
        ledger.error(
            str(report.get("logger", "node")), str(report.get("message", ""))[:500],
            str(report.get("error", ""))[:500], bool(report.get("decode", False)), sid=str(report.get("sid", "")),
        )
