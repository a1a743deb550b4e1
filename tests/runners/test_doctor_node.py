"""``imdiag doctor`` against real Node masters: the incident's (socket.io 4.8 at 1MB on /worker),
one at 10MB with connectionStateRecovery, and the real socket.io 2.x (Engine.IO v3).

One doctor run per master asserts every hypothesis it can decide there; the incident's master also
gets a real tap report (the real socket.io-client through ``imdiag tap``), a wrong namespace and a
wrong path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from imdiag.cli.probe import probe_settings
from imdiag.core.doctor import DoctorSettings, Verdict, exit_code
from imdiag.core.errors import ExitCode
from imdiag.core.wire import Encoder
from imdiag.masters.node import NodeMaster
from imdiag.masters.node_packages import node_env
from imdiag.render.json_report import report_to_dict
from imdiag.runners.doctor import doctor

from ..helpers import SCALE, TIMEOUT, run_imdiag
from ..node_worker import NodeWorker
from ..taps import tapping

pytestmark = pytest.mark.node

ROOT = Path(__file__).resolve().parents[2]
DATA_SYNC = ROOT / "fixtures" / "data_sync.json"  # its worker:data:sync: 1,313,011 B in /worker
MASTER_V2 = ROOT / "tests" / "node" / "master_v2.js"
NS = "/worker"
CLI_TIMEOUT = TIMEOUT * 6


def verdicts(report: dict) -> dict[str, str]:
    return {h["id"]: h["verdict"] for h in report["hypotheses"]}


def evidence(report: dict, id_: str) -> str:
    return next(h["evidence"] for h in report["hypotheses"] if h["id"] == id_)


async def tap_report(master: NodeMaster, path: Path) -> None:
    """The real socket.io-client (websocket) through the tap: register, heartbeat, the snapshot; never
    worker:account:status, which the capture also holds."""
    async with tapping(master.port) as tap:
        async with NodeWorker(tap.url + NS, {"transports": ["websocket"]}) as worker:
            for type_ in ("worker:register", "worker:heartbeat", "worker:data:sync"):
                worker.send(op="emit_fixture", path=str(DATA_SYNC), type=type_)
            await tap.wait_for(lambda e: type(e).__name__ == "Settled", count=3)
        report = await tap.report()
    path.write_text(json.dumps(report_to_dict(report)), encoding="utf-8")


async def test_the_incident_master(tmp_path):
    """1MB on /worker, the snapshot, 10MB expected: oversize and stale-config confirmed (exit 1), the
    rest ruled out with evidence or said to be untestable; then a wrong namespace and a wrong path."""
    out, md, html, tap_json = (tmp_path / name for name in ("d.json", "d.md", "d.html", "tap.json"))
    async with NodeMaster(limit=1_000_000, namespace=NS) as master:
        await tap_report(master, tap_json)
        (code, stdout, stderr), (ns_code, _, ns_err), (path_code, _, path_err) = await asyncio.gather(
            run_imdiag("doctor", "--url", master.url + NS, "--capture", str(DATA_SYNC), "--expect-max-payload", "10MB",
                       "--tap-report", str(tap_json), "--json", str(out), "--markdown", str(md), "--html", str(html),
                       timeout=CLI_TIMEOUT),
            run_imdiag("doctor", "--url", master.url + "/nope", "--json", str(tmp_path / "ns.json"),
                       timeout=CLI_TIMEOUT),
            run_imdiag("doctor", "--url", master.url + NS, "--path", "/wrong/", "--timeout", "2", "--json",
                       str(tmp_path / "path.json"), timeout=CLI_TIMEOUT),
        )
    assert code == ExitCode.CONFIRMED, stderr
    report = json.loads(out.read_text())
    assert report["schema"] == "imdiag.report/1" and report["command"] == "doctor"
    assert verdicts(report) == {
        "not-reachable": "ruled-out", "protocol-mismatch": "ruled-out", "namespace-missing": "ruled-out",
        "stale-config": "confirmed", "oversize": "confirmed", "proxy-limit": "ruled-out",
        "sticky-sessions": "ruled-out", "upgrade-blocked": "ruled-out", "session-recovery": "ruled-out",
        "ping-timeout": "ruled-out", "handler-silent": "unknown", "never-sent": "confirmed",
    }
    assert evidence(report, "oversize").startswith(
        "worker:data:sync (#3) is 1,313,011 B on the wire, over websocket's 1,000,000 B (close 1009, the master) by "
        "313,011 B and polling's 1,000,000 B (HTTP 413, the master) by 313,011 B (JSON.stringify(msg).length says "
        "1,117,225")
    assert evidence(report, "stale-config").startswith(
        f"the running process advertises maxPayload 1,000,000 B although 10,000,000 B was expected: the process on "
        f"port {master.port} does not run that configuration")
    assert "'Unsupported protocol version'" in evidence(report, "protocol-mismatch")  # EIO=3 refused by engine.io 6
    assert "carries no pid" in evidence(report, "session-recovery")
    assert "1 session(s) ended by a refusal" in evidence(report, "session-recovery")  # from the tap report
    never = evidence(report, "never-sent")
    assert never.startswith("worker:account:status never crossed the tap")
    assert "worker:data:sync (1 crossed on /worker 'message': 1 refused; last refusal: close 1009 from the master)" in never
    assert "--ack" in next(h["next_step"] for h in report["hypotheses"] if h["id"] == "handler-silent")
    assert report["verdict"].startswith(
        f"The master at {master.url}{NS} refuses websocket frames over 1,000,000 B (close 1009) and polling POST "
        "bodies over 1,000,000 B (HTTP 413) while your worker:data:sync frames are 1,313,011 B: confirmed. The "
        f"running process advertises maxPayload 1,000,000 B although 10,000,000 B was expected")
    assert any(line.startswith("fix A (raise the limit): everything here passes with 25% headroom once "
                               "maxHttpBufferSize >= 1,641,264") for line in report["advice"])
    assert report["exit_code"] == 1 and report["probe"]["handshake"]["session_recovery"] is False
    assert "| `oversize` | ❌ confirmed |" in md.read_text() and 'data-id="stale-config" data-verdict="confirmed"' in html.read_text()
    assert "The master at" in " ".join(stdout.split()) and stderr.count("report written to") == 3

    assert ns_code == ExitCode.CONFIRMED, ns_err
    ns_report = json.loads((tmp_path / "ns.json").read_text())
    assert verdicts(ns_report)["namespace-missing"] == "confirmed"
    assert "CONNECT_ERROR 'Invalid namespace'" in evidence(ns_report, "namespace-missing")
    assert verdicts(ns_report)["not-reachable"] == "ruled-out"
    assert "maxPayload 1,000,000 B" in evidence(ns_report, "stale-config")  # the handshake still says it

    assert path_code == ExitCode.TARGET
    assert path_err.strip().splitlines()[-1] == (
        f"imdiag: error: cannot reach {master.url}/wrong/ (polling): no answer within {2 * SCALE:g} s (check --path; "
        "Socket.IO's default is /socket.io/)")
    path_report = json.loads((tmp_path / "path.json").read_text())
    assert verdicts(path_report)["not-reachable"] == "confirmed"
    assert set(verdicts(path_report).values()) == {"confirmed", "unknown"}


async def test_a_10mb_master_with_session_recovery_and_acks():
    """The same capture at 10MB: oversize and stale-config ruled out; the pid in the CONNECT answer is
    session recovery (informational: exit 0); --ack shows a handler that acknowledges."""
    async with NodeMaster(limit=10_000_000, namespace=NS, csr=True) as master:
        settings = probe_settings(master.url + NS, "/socket.io/", "message", None, None, None, False, TIMEOUT,
                                  "16MiB", "imdiag:probe", True, str(DATA_SYNC), Encoder.NODE)
        result = await doctor(DoctorSettings(settings, expect_max_payload=10_000_000))
    got = {h.id: h.verdict for h in result.hypotheses}
    assert got["oversize"] is Verdict.RULED_OUT and got["stale-config"] is Verdict.RULED_OUT
    assert result.hypothesis("oversize").evidence.startswith(
        "all 5 message(s) of the capture fit: the largest, worker:data:sync (#3), is 1,313,011 B on the wire")
    assert got["session-recovery"] is Verdict.CONFIRMED and "SAME socket id" in result.hypothesis("session-recovery").evidence
    assert got["handler-silent"] is Verdict.RULED_OUT
    assert result.probe is not None and result.probe.handshake.recovers_sessions is True
    assert exit_code(result) is ExitCode.OK
    assert result.verdict.startswith(f"No cause of loss was confirmed at {master.url}{NS}")


@contextlib.asynccontextmanager
async def socketio_v2(namespace: str) -> AsyncIterator[str]:
    """The real socket.io 2.x server (tests/node/master_v2.js); yields its URL with the namespace."""
    proc = await asyncio.create_subprocess_exec(
        "node", str(MASTER_V2), json.dumps({"limit": 1_000_000, "namespace": namespace}), env=node_env(),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
        listening = json.loads(line)
        assert listening["version"].startswith("2."), listening
        yield f"http://127.0.0.1:{listening['port']}{namespace}"
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # it exits when its stdin closes
        try:
            await asyncio.wait_for(proc.wait(), TIMEOUT)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def test_a_socketio_2_master_is_a_protocol_mismatch(tmp_path):
    out = tmp_path / "d.json"
    async with socketio_v2(NS) as url:
        code, _, stderr = await run_imdiag("doctor", "--url", url, "--capture", str(DATA_SYNC), "--json", str(out),
                                           timeout=CLI_TIMEOUT)
    assert code == ExitCode.CONFIRMED, stderr
    report = json.loads(out.read_text())
    got = verdicts(report)
    assert got["protocol-mismatch"] == "confirmed" and got["not-reachable"] == "ruled-out"
    text = evidence(report, "protocol-mismatch")
    assert text.startswith("the master speaks Engine.IO v3 only (socket.io 2.x): EIO=3 (socket.io-client 2.x) opens "
                           "a session (sid ")
    assert "did not answer like an Engine.IO v4 server" in text and "'97:0{\"sid\":" in text
    assert report["engineio_v3"]["answered"] is True and report["probe"] is None
    assert {v for k, v in got.items() if k not in ("protocol-mismatch", "not-reachable")} == {"unknown"}
    assert evidence(report, "oversize") == "the master speaks Engine.IO v3 only and imdiag's probe speaks v4"
