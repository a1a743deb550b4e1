"""``imdiag probe`` against the real Node.js socket.io master: exact limits on both transports."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys

import pytest

from imdiag.core.model import Cause
from imdiag.core.probe_frames import PROBE_TYPE
from imdiag.core.probe_result import Outcome, ProbeSettings
from imdiag.core.quirks import RULES
from imdiag.core.wire import Transport
from imdiag.masters.ledger import Arrival
from imdiag.masters.node import NodeMaster
from imdiag.runners.probe import probe

from ..helpers import TIMEOUT, run_imdiag

pytestmark = pytest.mark.node

NS = "/worker"


@pytest.mark.parametrize("limit", [50_000, 1_000_000])
async def test_node_accepts_exactly_the_limit_on_both_transports(limit):
    async with NodeMaster(limit=limit, namespace=NS) as master:
        result = await probe(ProbeSettings(url=master.url + NS, timeout_s=TIMEOUT))
        await master.stop()  # the ledger then holds every line the master wrote
        arrivals = [e for e in master.ledger.entries if isinstance(e, Arrival)]
    assert result.elapsed_s < 10
    assert result.handshake.max_payload == limit and result.handshake.namespace_sid
    assert len(result.transports) == 2
    for measured in result.transports:
        assert RULES[("node", measured.transport, False)].accepts == "<="
        assert (measured.max_accepted, measured.first_rejected) == (limit, limit + 1), measured.transport
        assert measured.exact and len(measured.trials) == 2
        assert measured.readmitted is True
        assert measured.failure is not None and measured.failure.cause is Cause.OVERSIZE_CLOSE
        assert result.advertised_notes[measured.transport].startswith("matches")
    by = {t.transport: t for t in result.transports}
    ws_fail = by[Transport.WEBSOCKET].failure.observation
    assert ws_fail.close_code == 1009 and ws_fail.close_reason == ""
    poll_fail = by[Transport.POLLING].failure.observation
    assert poll_fail.http_status == 413 and poll_fail.http_body == ""
    assert "HTTP 413 (Payload Too Large) with an empty body" in result.explanations[Transport.POLLING]
    assert {a.type for a in arrivals} == {PROBE_TYPE}


async def test_node_acks_prove_delivery():
    async with NodeMaster(limit=200_000, namespace=NS) as master:
        result = await probe(ProbeSettings(url=master.url + NS, ack=True, timeout_s=TIMEOUT))
    for measured in result.transports:
        assert (measured.max_accepted, measured.first_rejected) == (200_000, 200_001)
        accepted = [t for t in measured.trials if t.outcome is Outcome.ACCEPTED]
        assert accepted and all(t.observation.ack == "received" for t in accepted)
        assert not measured.lost


async def test_node_wrong_namespace_via_cli_is_one_line(tmp_path):
    async with NodeMaster(limit=50_000, namespace=NS) as master:
        code, _, text = await run_imdiag("probe", "--url", master.url + "/nope", "--timeout", "5", timeout=TIMEOUT * 6)
    assert code == 3 and "Traceback" not in text
    assert text.strip().splitlines() == [text.strip()]
    assert "namespace '/nope' refused the connection: Invalid namespace" in text


async def test_node_probe_json_report_via_cli(tmp_path):
    out = tmp_path / "probe.json"
    async with NodeMaster(limit=100_000, namespace=NS) as master:
        code, _, stderr = await run_imdiag("probe", "--url", master.url + NS, "--json", str(out), timeout=TIMEOUT * 6)
    assert code == 0, stderr
    report = json.loads(out.read_text())
    for name, failure_key, failure_value in (("websocket", "close_code", 1009), ("polling", "http_status", 413)):
        t = report["transports"][name]
        assert (t["max_accepted_frame_bytes"], t["first_rejected_frame_bytes"]) == (100_000, 100_001)
        assert t["failure"][failure_key] == failure_value and t["readmitted"] is True
        assert t["agrees_with_advertised"] is True
    assert report["advertised_max_payload"] == 100_000


async def test_fake_master_node_standalone_is_probed_exactly_and_logs_only_probe_messages(tmp_path):
    """``imdiag fake-master --master node``: the Node master a user points a worker (or probe) at."""
    env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    master = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "imdiag", "fake-master", "--master", "node", "--port", "0", "--limit", "300KB",
        "--namespace", NS, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        banner = (await asyncio.wait_for(master.stdout.readline(), TIMEOUT * 2)).decode()
        found = re.search(r"^node reference master listening on (http://127\.0\.0\.1:\d+)/socket\.io/", banner)
        assert found and "maxHttpBufferSize 300,000 B" in banner and "socket.io 4.8.1" in banner, banner
        code, _, stderr = await run_imdiag("probe", "--url", found.group(1) + NS, "--json", str(tmp_path / "p.json"),
                                           timeout=TIMEOUT * 6)
        assert code == 0, stderr
        report = json.loads((tmp_path / "p.json").read_text())
        for t in report["transports"].values():  # both transports, to the byte
            assert (t["max_accepted_frame_bytes"], t["first_rejected_frame_bytes"]) == (300_000, 300_001)
    finally:
        master.terminate()
        log, _ = await asyncio.wait_for(master.communicate(), TIMEOUT)
    arrivals = [line for line in log.decode().splitlines() if " arrival " in line]
    assert arrivals and all(f"arrival    {PROBE_TYPE} " in line for line in arrivals), arrivals
