"""`--master python|node|asgi|both|all`: the same sweep against the real servers, and clean process handling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from imdiag.core.findings import boundary_rows, disagreements
from imdiag.core.model import Cause, Cell, MasterInfo
from imdiag.core.plan import MASTER_CHOICES, SweepSettings, plan_for_limit
from imdiag.core.refusal import Refuser
from imdiag.core.wire import LimitUnit, Transport
from imdiag.masters.child import usable_cpus
from imdiag.masters.kinds import Master, shards_per_lane
from imdiag.masters.python import PythonMaster
from imdiag.runners.sweep import make_master, run_sweep

from ..helpers import TIMEOUT

pytestmark = pytest.mark.node

LIMIT = 20_000


def _cells(cells: list[Cell], master: str, transport: Transport, label: str) -> list[Cell]:
    return [c for c in cells if (c.master, c.transport, c.label) == (master, transport, label)]


async def test_boundary_cells_on_all_masters():
    cells: list[Cell] = []
    settings = SweepSettings(limits=(LIMIT,), sizes=(1_000,), types=("worker:heartbeat", "worker:messages:update"),
                             masters=MASTER_CHOICES["all"], namespace="/worker", timeout_s=TIMEOUT)
    started: list = []
    report = await run_sweep(settings, cells, on_started=started.extend)
    assert {c.master for c in report.cells} == {"python", "node", "asgi"}
    # Named as soon as they are up (before any cell), so an interrupted run still reports them:
    # every master, a python-socketio lane's being split over its host processes.
    assert sorted((m.server, m.transport.value) for m in started) == [
        (s, t) for s in ("asgi", "node", "python") for t in ("polling", "websocket") for _ in range(shards_per_lane(s))]
    assert len(report.masters) == len(started)

    def verdicts(master: str, transport: Transport) -> dict[str, tuple[bool, Cause | None]]:
        return {label: (c.delivered, c.cause) for label in ("L-1", "L", "L+1")
                for c in _cells(cells, master, transport, label)}

    oversize = (False, Cause.OVERSIZE_CLOSE)
    # Node: a frame or body of exactly L bytes passes (<= L), on both transports.
    assert verdicts("node", Transport.WEBSOCKET) == {"L-1": (True, None), "L": (True, None), "L+1": oversize}
    assert verdicts("node", Transport.POLLING) == {"L-1": (True, None), "L": (True, None), "L+1": oversize}
    # python: the websocket frame must be under L (< L); the POST body may be L (<= L).
    assert verdicts("python", Transport.WEBSOCKET) == {"L-1": (True, None), "L": oversize, "L+1": oversize}
    assert verdicts("python", Transport.POLLING) == {"L-1": (True, None), "L": (True, None), "L+1": oversize}
    # Each server's own evidence: 1009 for both websockets, 413 (node) and 400 (python) for polling.
    node_ws = _cells(cells, "node", Transport.WEBSOCKET, "L+1")[0]
    assert node_ws.observed.close_code == 1009
    assert _cells(cells, "node", Transport.POLLING, "L+1")[0].observed.http_status == 413
    assert _cells(cells, "python", Transport.POLLING, "L+1")[0].observed.http_status == 400
    # ASGI: websocket counts characters, so its boundary frames are L-1, L, L+1 characters (more bytes);
    # refused with a normal close. Polling counts bytes, like the others.
    assert verdicts("asgi", Transport.WEBSOCKET) == {"L-1": (True, None), "L": (True, None), "L+1": oversize}
    assert verdicts("asgi", Transport.POLLING) == {"L-1": (True, None), "L": (True, None), "L+1": oversize}
    at_limit = _cells(cells, "asgi", Transport.WEBSOCKET, "L")[0]
    assert at_limit.limit_unit is LimitUnit.CHARACTERS and at_limit.message_chars == LIMIT < at_limit.message_bytes
    assert at_limit.predicted_delivered is True
    over = _cells(cells, "asgi", Transport.WEBSOCKET, "L+1")[0]
    assert over.observed.close_code == 1000 and over.refused_by is Refuser.MASTER
    assert "closed the websocket with 1000 (Normal Closure)" in over.evidence
    assert "no 1009: python-engineio under ASGI" in over.evidence
    assert _cells(cells, "asgi", Transport.POLLING, "L+1")[0].observed.http_status == 400
    rows = {(r.master, r.transport): r for r in boundary_rows(cells)}
    assert rows[("asgi", Transport.WEBSOCKET)].limit_text == f"{LIMIT:,} characters"
    assert rows[("asgi", Transport.WEBSOCKET)].largest_delivered > LIMIT  # in bytes
    assert rows[("asgi", Transport.POLLING)].largest_delivered == LIMIT
    # The disagreements: the frames of L bytes over websocket, python refusing, node taking them (the
    # ASGI master got frames of L characters instead: not the same frames).
    found = disagreements(cells)
    assert [{m: (c.transport, c.label, c.delivered) for m, c in d.items()} for d in found] == [
        {"python": (Transport.WEBSOCKET, "L", False), "node": (Transport.WEBSOCKET, "L", True)}]


async def test_a_split_lane_measures_each_message_once_on_identical_masters_in_every_host():
    """python-socketio decodes on one core: a python lane's messages are shared by one master in
    each host process, every other one each, and each is measured once."""
    settings = SweepSettings(limits=(LIMIT,), sizes=(1_000, 10_000), types=("worker:heartbeat", "worker:data:sync"),
                             transports=(Transport.WEBSOCKET,), masters=("python",), timeout_s=TIMEOUT)
    if usable_cpus() < 2:
        pytest.skip("one CPU: a lane is not split")
    shards = shards_per_lane("python")
    assert shards >= 2
    hosts: set[int | None] = set()

    def master_factory(server: str, limit: int, sweep: SweepSettings) -> Master:
        master = make_master(server, limit, sweep)
        assert isinstance(master, PythonMaster)
        masters.append(master)
        return master

    masters: list[PythonMaster] = []
    cells: list[Cell] = []
    lanes_done: list[tuple[MasterInfo, int]] = []
    report = await run_sweep(settings, cells, master_factory=master_factory,
                             on_started=lambda _: hosts.update(m.pid for m in masters),
                             on_lane_done=lambda run, count: lanes_done.append((run, count)))
    planned = plan_for_limit(settings, LIMIT)
    assert len(cells) == len(planned) and len({c.message_id for c in cells}) == len(planned)
    assert not any(c.disagrees for c in cells), [c.evidence for c in cells]  # websocket: the model holds
    assert {c.label: c.delivered for c in cells if c.label in ("L-1", "L", "L+1")} == {
        "L-1": True, "L": False, "L+1": False}
    assert len(masters) == len(report.masters) == shards and len({m.url for m in report.masters}) == shards
    assert len(hosts) == shards  # one master in each host process
    assert [count for _, count in lanes_done] == [len(planned)]  # one line per lane, all its cells


async def test_python_polling_loss_is_a_decode_error_not_oversize():
    cells: list[Cell] = []
    settings = SweepSettings(limits=(10_000_000,), sizes=(2_000_000,), types=("worker:data:sync",),
                             transports=(Transport.POLLING,), masters=("python", "node"), boundary=False,
                             timeout_s=TIMEOUT)
    await run_sweep(settings, cells)
    python = next(c for c in cells if c.master == "python" and c.label == "ladder")
    node = next(c for c in cells if c.master == "node" and c.label == "ladder")
    assert node.delivered
    assert not python.delivered and python.cause is Cause.SERVER_DECODE_ERROR
    assert python.predicted_delivered is True and python.disagrees
    assert python.observed.http_status == 200


# --- no Node process outlives imdiag --------------------------------------------------------


def _processes_with(marker: str) -> list[int]:
    """PIDs whose environment carries our marker: every Node master a run started inherits it."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"IMDIAG_TEST_MARKER={marker}".encode() in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _run(marker: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "NO_COLOR": "1", "IMDIAG_TEST_MARKER": marker}
    return subprocess.Popen([sys.executable, "-m", "imdiag", "size-sweep", "--master", "both", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_no_node_process_left_after_a_sweep():
    marker = uuid.uuid4().hex
    proc = _run(marker, "--limits", "20KB", "--sizes", "1KB,30KB", "--types", "worker:heartbeat")
    _, stderr = proc.communicate(timeout=TIMEOUT * 6)
    assert proc.returncode == 0, stderr
    assert _processes_with(marker) == []


def _interrupt_after_a_lane(marker: str, out: Path, *args: str, running: int = 1) -> dict:
    """Start a sweep, Ctrl-C it once a lane finished; it exits 130 and writes what it measured."""
    proc = _run(marker, *args, "--json", str(out))
    try:
        line = proc.stderr.readline()  # a lane finished: the masters (and clients) are up
        assert line.startswith("measured "), line
        assert len(_processes_with(marker)) >= running, "the node processes should be running now"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=TIMEOUT * 3)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    report = json.loads(out.read_text())
    assert report["interrupted"] is True
    return report


def test_no_node_process_left_after_ctrl_c(tmp_path):
    marker = uuid.uuid4().hex
    _interrupt_after_a_lane(marker, tmp_path / "partial.json", "--limits", "1KB,20MB",
                            "--sizes", "1KB,4MB,8MB,12MB,16MB,18MB")
    assert _processes_with(marker) == []


def test_no_node_process_left_after_a_failing_run():
    marker = uuid.uuid4().hex
    # A timeout far too short for any handshake: the run fails once the masters are up.
    proc = _run(marker, "--limits", "20KB", "--sizes", "1KB", "--timeout", "0.0001")
    _, stderr = proc.communicate(timeout=TIMEOUT * 6)
    assert proc.returncode == 3
    assert stderr.startswith("imdiag: error: cannot reach") and "Traceback" not in stderr
    assert _processes_with(marker) == []


def test_no_node_client_or_master_left_after_ctrl_c(tmp_path):
    """--client node: each lane's socket.io-client runs in a Node process of its own; Ctrl-C stops them all."""
    marker = uuid.uuid4().hex
    report = _interrupt_after_a_lane(
        marker, tmp_path / "partial.json", "--client", "node", "--transports", "websocket", "--limits", "20KB,10MB",
        "--types", "worker:heartbeat,worker:messages:update", "--sizes", "1KB", running=3)
    assert any("client" in c for c in report["cells"])
    assert _processes_with(marker) == []
