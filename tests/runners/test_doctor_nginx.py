"""``imdiag doctor`` through real nginx in front of real Node masters at 1MB: a proxy's body limit,
no upgrade headers, round-robin without sticky sessions (the setups of ``test_through_nginx.py``).

Two masters are started once; each nginx config in turn sits in front of them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imdiag.cli.probe import probe_settings
from imdiag.core.doctor import DoctorResult, DoctorSettings, Verdict, exit_code
from imdiag.core.errors import ExitCode
from imdiag.core.wire import Encoder
from imdiag.masters.kinds import new_master, started
from imdiag.runners.doctor import doctor

from ..helpers import TIMEOUT, run_imdiag
from ..nginx import Nginx, ProxyConfig, upstreams

pytestmark = [pytest.mark.node, pytest.mark.nginx]

ROOT = Path(__file__).resolve().parents[2]
DATA_SYNC = ROOT / "fixtures" / "data_sync.json"
NS = "/worker"
LIMIT = 1_000_000


async def run_doctor(url: str) -> DoctorResult:
    settings = probe_settings(url, "/socket.io/", "message", None, None, None, False, TIMEOUT, "16MiB",
                              "imdiag:probe", False, None, Encoder.NODE)
    return await doctor(DoctorSettings(settings))


def verdicts(result: DoctorResult) -> dict[str, Verdict]:
    return {h.id: h.verdict for h in result.hypotheses}


async def test_doctor_names_what_the_path_breaks(tmp_path):
    out = tmp_path / "d.json"
    masters = [new_master("node", LIMIT, NS) for _ in range(2)]
    async with started(masters):
        a, b = masters
        async with Nginx(ProxyConfig(upstreams([a.port]), body_limit="100k")) as proxy:
            code, _, stderr = await run_imdiag("doctor", "--url", proxy.url + NS, "--capture", str(DATA_SYNC),
                                               "--json", str(out), "--timeout", str(TIMEOUT), timeout=TIMEOUT * 9)
        async with Nginx(ProxyConfig(upstreams([a.port]), upgrade_headers=False)) as proxy:
            no_upgrade = await run_doctor(proxy.url + NS)
        async with Nginx(ProxyConfig(upstreams([a.port, b.port]))) as proxy:
            round_robin = await run_doctor(proxy.url + NS)

    # client_max_body_size 100k: polling stops at nginx's 102,400 B; websocket reaches the master.
    assert code == ExitCode.CONFIRMED, stderr
    report = json.loads(out.read_text())
    got = {h["id"]: h["verdict"] for h in report["hypotheses"]}
    assert (got["proxy-limit"], got["oversize"], got["upgrade-blocked"], got["sticky-sessions"]) == (
        "confirmed", "confirmed", "ruled-out", "ruled-out")
    proxy_limit = next(h["evidence"] for h in report["hypotheses"] if h["id"] == "proxy-limit")
    assert proxy_limit.startswith("polling: 102,400 B, refused by a proxy (nginx/")
    oversize = next(h["evidence"] for h in report["hypotheses"] if h["id"] == "oversize")
    assert "over websocket's 1,000,000 B (close 1009, the master) by 313,011 B and polling's 102,400 B (HTTP 413, a " \
           "proxy (nginx/" in oversize
    assert any("client_max_body_size) >= 1,641,264 (now 102,400" in line for line in report["advice"])
    assert report["verdict"].startswith(
        f"At {report['settings']['url']}, websocket frames over 1,000,000 B are refused by the master (close 1009) and "
        "polling POST bodies over 102,400 B by a proxy (nginx/")

    # No Upgrade/Connection headers: the upgrade is blocked; polling reaches the master's own limit.
    got = verdicts(no_upgrade)
    assert got["upgrade-blocked"] is Verdict.CONFIRMED and got["proxy-limit"] is Verdict.RULED_OUT
    assert "the websocket upgrade is refused between you and the master" in no_upgrade.hypothesis("upgrade-blocked").evidence
    assert "proxy_set_header Upgrade" in no_upgrade.hypothesis("upgrade-blocked").next_step
    assert "polling POST bodies over 1,000,000 B (HTTP 413, the master)" in no_upgrade.hypothesis("proxy-limit").evidence
    assert exit_code(no_upgrade) is ExitCode.CONFIRMED

    # Round-robin 1:1 over two masters: half the requests of a polling session reach the other node.
    got = verdicts(round_robin)
    assert got["sticky-sessions"] is Verdict.CONFIRMED and got["upgrade-blocked"] is Verdict.RULED_OUT
    assert "10 of 20 requests (50%)" in round_robin.hypothesis("sticky-sessions").evidence
    assert "ip_hash" in round_robin.hypothesis("sticky-sessions").next_step
    assert got["namespace-missing"] is Verdict.RULED_OUT  # joined over websocket
    assert exit_code(round_robin) is ExitCode.CONFIRMED
