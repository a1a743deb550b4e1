"""Masters served by a child process, their ledgers fed from its report lines.

A master host is one child process that serves the masters of one kind it is asked for: the
python host (``imdiag/masters/python_host.py``: python-socketio on aiohttp) or the Node.js host
(``imdiag/node/master.js``: socket.io). The servers run there, nothing emulated; the worker's
building and writing run here, so the two use both cores. Parent and host speak the master
protocol, JSON lines:

    parent -> host (stdin)   {"cmd": "start", "key": K, "limit", "namespace", "path", "host",
                              "port", "record", "by_id"[, "csr": true (node: connectionStateRecovery and a tick a second)]}
                             {"cmd": "stop", "key": K}
                             end of input: the host exits (it never outlives this process)
    host -> parent (stdout)  {"event": "ready", "versions": {...}}  once, when it can serve
                             {"key": K, "event": "listening", "port": N}
                             {"key": K, "event": "failed", "error": "cannot listen on ...: ..."}
                             {"key": K, "event": "connect", "sid", "namespace"}
                             {"key": K, "event": "arrival", "sid", "namespace", "name",
                              "message", "digest", "bytes"[, "connected"]}
                             {"key": K, "event": "disconnect", "sid", "namespace", "reason", "cause"?}
                             {"key": K, "event": "error", "logger", "message", "error", "decode",
                              "sid"[, "body_bytes"]}
                             {"key": K, "event": "stopped"}

An arrival's ``message`` is ``{"type", "id"}`` only (strings, else null or absent), or the whole
message when the master records (``fake-master --record``); ``digest`` is
``imdiag.core.entries.canonical_digest`` of what the server decoded (master.js computes the same
function), "" with ``bytes`` null for a message with a string id when the ledger is ``by_id`` (its
sender finds it by that id and knows its sizes), or "" when it failed (an error line then comes first: the arrival is never lost). An
error's ``sid`` is the connection it was logged on ("" when unknown); ``body_bytes`` the
Content-Length of the POST it was logged under (python host). The host writes each line with
a blocking write as its server dispatches, and a reader task feeds them into each master's
``Ledger`` in that order, so the sweep's barrier logic holds: once a later message of a
connection is in the ledger, every earlier one the server dispatched is too.

Masters of one kind share their hosts: up to ``ChildMaster.hosts`` processes per event loop,
each master going to the host that serves the fewest (the default sweep's six python masters
cost two interpreter starts on two cores, not six, and decode on both). A new kind is a
``ChildMaster`` subclass naming its host command.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import subprocess
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from imdiag.core.errors import TargetError
from imdiag.masters.base import Master
from imdiag.masters.ledger import Ledger

START_TIMEOUT_S = 15.0  # interpreter start-up plus imports, on a slow CI machine
STOP_TIMEOUT_S = 5.0  # after stdin closes, before SIGTERM; then as long again before SIGKILL
KILL_WAIT_S = 1.0  # for a SIGKILLed process to be reaped
# A summary line is short, but type and id are the sender's strings, and a recording master
# sends whole messages (escaped: up to 6 bytes per character): bounded, far above any limit used.
LINE_LIMIT = 1 << 28


@dataclass(frozen=True)
class HostCommand:
    """How to start a master host: its argv and working directory; ``name`` for messages."""

    argv: tuple[str, ...]
    name: str  # "the python master", "the node master"
    cwd: str | None = None
    env: tuple[tuple[str, str], ...] = ()  # added to this process's environment


_keys = itertools.count(1)
_hosts: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[HostCommand, list[MasterHost]]] = (
    weakref.WeakKeyDictionary()
)


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class MasterHost:
    """One child process serving masters; lines are routed to them by key."""

    def __init__(self, command: HostCommand):
        self.command = command
        self.versions: dict[str, str] = {}
        self.returncode: int | None = None
        self.exit_detail = ""  # why it exited on its own ("" while it runs, or when stopped)
        self._proc: asyncio.subprocess.Process | None = None
        self._ready: asyncio.Future[None] | None = None
        self._masters: dict[str, ChildMaster] = {}
        self._users = 0
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._stderr: deque[str] = deque(maxlen=20)
        self.exited = asyncio.Event()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @classmethod
    async def acquire(cls, command: HostCommand, most: int = 1) -> MasterHost:
        """A host for ``command`` in this loop: a new one while fewer than ``most`` run, else the
        one serving the fewest masters. Started on first use; ``release()`` it."""
        running = _hosts.setdefault(asyncio.get_running_loop(), {}).setdefault(command, [])
        running[:] = [h for h in running if not (h._closing or h.exited.is_set())]
        if len(running) < most:
            host = cls(command)
            running.append(host)
        else:
            host = min(running, key=lambda h: h._users)
        host._users += 1
        try:
            if host._ready is None:
                host._ready = asyncio.ensure_future(host._spawn())
            # Shielded: one master giving up waiting must not cancel the start the others share.
            await asyncio.shield(host._ready)
        except BaseException:
            await host.release()
            raise
        return host

    async def release(self) -> None:
        """One user fewer; the last one stops the process."""
        self._users -= 1
        if self._users > 0:
            return
        self._closing = True
        running = _hosts.get(asyncio.get_running_loop(), {}).get(self.command, [])
        if self in running:
            running.remove(self)
        await self._close()

    def send(self, command: dict[str, Any]) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.is_closing() or self.exited.is_set():
            raise TargetError(self.exit_detail or f"{self.command.name} is not running")
        proc.stdin.write(json.dumps(command).encode() + b"\n")

    def attach(self, key: str, master: ChildMaster) -> None:
        self._masters[key] = master

    def detach(self, key: str) -> None:
        self._masters.pop(key, None)

    # --- the process -------------------------------------------------------------------

    async def _spawn(self) -> None:
        try:
            # A session of its own: a Ctrl-C at the terminal reaches imdiag alone, which then
            # stops its masters in order (and writes what was measured).
            env = {**os.environ, **dict(self.command.env)} if self.command.env else None
            self._proc = await asyncio.create_subprocess_exec(
                *self.command.argv, cwd=self.command.cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, limit=LINE_LIMIT, start_new_session=True,
            )
        except OSError as exc:
            raise TargetError(f"cannot start {self.command.name}: {exc.strerror or exc}") from None
        assert self._proc.stderr is not None
        self._tasks.append(asyncio.create_task(drain_stderr(self._proc.stderr, self._stderr)))
        try:
            ready = await self._await_ready()
        except BaseException:
            # Failed or cancelled while starting: the process must not outlive this call.
            await self._close()
            raise
        self.versions = {str(k): str(v) for k, v in ready.get("versions", {}).items()}
        self._tasks.append(asyncio.create_task(self._read_reports()))

    async def _await_ready(self) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while line := await self._proc.stdout.readline():
                    report = parse_report(line)
                    if report is not None and report.get("event") == "ready":
                        return report
                # EOF before "ready": the process failed; wait for it and its stderr.
                await self._proc.wait()
                await asyncio.gather(*self._tasks, return_exceptions=True)
        except TimeoutError:
            raise TargetError(f"{self.command.name} did not start within {START_TIMEOUT_S:g} s") from None
        raise TargetError(f"{self.command.name} exited with code {self._proc.returncode}: "
                          f"{' | '.join(self._stderr) or 'no output'}")

    async def _read_reports(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        while True:
            try:
                line = await stdout.readline()
            except ValueError:  # a line over LINE_LIMIT: the stream drops it and goes on
                self._to_all("a line from the master host was over the read limit", "")
                continue
            if not line:
                break
            report = parse_report(line)
            master = self._masters.get(str(report.get("key"))) if report is not None else None
            if report is None:
                self._to_all("unparseable line from the master host", line[:200].decode(errors="replace"))
            elif master is not None:
                master._on_report(report)
        code = await self._proc.wait()
        self.returncode = code
        if not self._closing:
            # The host died on its own (e.g. killed, or an uncaught exception): an observation.
            await asyncio.gather(*self._tasks[:1], return_exceptions=True)
            detail = " | ".join(self._stderr)
            self.exit_detail = f"{self.command.name} exited with code {code}" + (f": {detail[-300:]}" if detail else "")
            for master in list(self._masters.values()):
                master._on_host_exit(f"{self.command.name} exited with code {code}", detail[-500:])
        self.exited.set()

    def _to_all(self, message: str, error: str) -> None:
        for master in self._masters.values():
            master.ledger.error("imdiag.master", message, error, False)

    async def _close(self) -> None:
        """Stop the process: close stdin, then SIGTERM, then SIGKILL; each wait bounded."""
        self._closing = True
        proc = self._proc
        try:
            if proc is not None:
                # The reader reaches EOF once the process is gone: every line has been fed.
                await stop_process(proc, self._tasks)
        finally:
            if proc is not None:
                self.returncode = proc.returncode
            self.exited.set()


async def stop_process(proc: asyncio.subprocess.Process, readers: Sequence[asyncio.Task[Any]] = ()) -> None:
    """Stop a child process imdiag started: close its stdin (it exits by itself), then SIGTERM,
    then SIGKILL, each wait bounded; then let ``readers`` reach the end of its output. Cancelled
    meanwhile, it kills the process at once and reaps it (briefly), so that no process is left
    for a closed event loop to find. The readers still running at the end are cancelled."""
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
        if readers:
            await asyncio.wait(readers, timeout=STOP_TIMEOUT_S)
    except BaseException:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(proc.wait(), KILL_WAIT_S)
        raise
    finally:
        for task in readers:
            if not task.done():
                task.cancel()


class ChildMaster(Master):
    """A master whose server runs in a master host; subclasses name the host's command."""

    # How many host processes this kind's masters spread over: a host decodes what its masters
    # receive on one core (JSON decoding is a sweep's largest cost), and each host is a start-up.
    hosts: ClassVar[int] = min(usable_cpus(), 4)
    # Whether a sweep splits each lane over ``hosts`` identical masters (see ``shards_per_lane``).
    split_lanes: ClassVar[bool] = False

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._versions: dict[str, str] = {}
        self._host: MasterHost | None = None
        self._key = ""
        self._answer: asyncio.Future[dict[str, Any]] | None = None
        self._stopping = False
        self._died = ""
        self._died_event = asyncio.Event()
        self.returncode: int | None = None  # the host's exit status, once it exited

    def host_command(self) -> HostCommand:
        raise NotImplementedError

    def preflight(self) -> str | None:
        """None when the host can start here, else a one-line reason (e.g. Node.js missing)."""
        return None

    def server_options(self) -> dict[str, Any]:
        """What this kind of master adds to its start command (e.g. the Node master's ``csr``)."""
        return {}

    @property
    def versions(self) -> dict[str, str]:
        return dict(self._versions)

    @property
    def pid(self) -> int | None:
        """The host process's id (shared with the other masters of its kind in this loop)."""
        return self._host.pid if self._host is not None else None

    @property
    def record(self) -> bool:
        """Whole messages come back only when the ledger keeps them (``fake-master --record``)."""
        return self.ledger.keep_messages

    async def start(self) -> None:
        reason = self.preflight()
        if reason is not None:
            raise TargetError(reason)
        host = await MasterHost.acquire(self.host_command(), self.hosts)
        self._host, self._key = host, str(next(_keys))
        self._stopping, self._died, self.returncode = False, "", None
        self._died_event = asyncio.Event()
        host.attach(self._key, self)
        try:
            report = await self._ask({"cmd": "start", "key": self._key, "limit": self.limit,
                                      "namespace": self.namespace, "path": self.path, "host": self.host,
                                      "port": self.port, "record": self.record, "by_id": self.ledger.by_id,
                                      **self.server_options()},
                                     START_TIMEOUT_S)
            if report.get("event") != "listening":
                raise TargetError(str(report.get("error") or f"{host.command.name} did not start: {report}"))
        except BaseException:
            self._stopping = True
            with contextlib.suppress(TargetError):  # a server that did start must not stay up
                host.send({"cmd": "stop", "key": self._key})
            await self._leave()
            raise
        self.port = int(report["port"])
        self._versions = dict(host.versions)

    async def _ask(self, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send a command; the host's answer for this master (listening, failed or stopped)."""
        host = self._host
        assert host is not None
        self._answer = answer = asyncio.get_running_loop().create_future()
        host.send(command)
        exited = asyncio.ensure_future(host.exited.wait())
        try:
            done, _ = await asyncio.wait({answer, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            exited.cancel()
        if answer in done:
            return answer.result()
        if host.exited.is_set():
            raise TargetError(host.exit_detail or f"{host.command.name} exited")
        raise TargetError(f"{host.command.name} did not answer {command['cmd']!r} within {timeout:g} s")

    def _on_report(self, report: dict[str, Any]) -> None:
        kind = report.get("event")
        if kind in ("listening", "failed", "stopped"):
            if self._answer is not None and not self._answer.done():
                self._answer.set_result(report)
        else:
            feed(self.ledger, report)

    def _on_host_exit(self, message: str, detail: str) -> None:
        if self._stopping:
            return
        self.ledger.error(f"imdiag.{self.server}", message, detail, False)
        self._died = message + (f": {detail[-300:]}" if detail else "")
        self._died_event.set()

    async def wait_died(self) -> str:
        """Returns (why) only if the host exits by itself, not when stop() ends it."""
        await self._died_event.wait()
        return self._died

    async def stop(self) -> None:
        host = self._host
        if host is None:
            return
        self._stopping = True
        try:
            if not host.exited.is_set():
                # The host answers once the server closed: its disconnects are in the ledger by then.
                with contextlib.suppress(TargetError):
                    await self._ask({"cmd": "stop", "key": self._key}, STOP_TIMEOUT_S)
        finally:
            await self._leave()

    async def _leave(self) -> None:
        host, self._host = self._host, None
        if host is None:
            return
        host.detach(self._key)
        await host.release()
        self.returncode = host.returncode


async def drain_stderr(stream: asyncio.StreamReader, tail: deque[str]) -> None:
    """Read a child's stderr to its end, keeping the last lines in ``tail`` for error messages (an
    unread pipe could also block the child)."""
    while line := await stream.readline():
        tail.append(line.decode(errors="replace").rstrip()[:300])


def parse_report(line: bytes) -> dict[str, Any] | None:
    """One JSON report line from a child (a master host, or client.js), or None when it is none."""
    try:
        report = json.loads(line)  # the standard library's: big integers, NaN, lone surrogates
    except (ValueError, RecursionError):  # RecursionError: a recorded message nested too deep
        return None
    return report if isinstance(report, dict) else None


def feed(ledger: Ledger, report: dict[str, Any]) -> None:
    """One report line into the ledger."""
    kind = report.get("event")
    sid = str(report.get("sid", ""))
    namespace = str(report.get("namespace", "/"))
    if kind == "arrival":
        ledger.arrival(
            sid, namespace, str(report.get("name")), report.get("message"),
            digest=str(report.get("digest", "")),
            size=int(report["bytes"]) if report.get("bytes") is not None else None,
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
        ledger.disconnect(sid, namespace, str(report.get("reason", "")), str(report.get("cause") or "")[:500])
    elif kind == "error":
        body_bytes = report.get("body_bytes")
        ledger.error(
            str(report.get("logger", "master")), str(report.get("message", ""))[:500],
            str(report.get("error", ""))[:500], bool(report.get("decode", False)), sid=str(report.get("sid") or ""),
            body_bytes=body_bytes if isinstance(body_bytes, int) and not isinstance(body_bytes, bool) else None,
        )
