"""The probe runner against real python masters and small servers of our own: exact limits, acks."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from imdiag.core.errors import ExitCode
from imdiag.core.judge import refusal_of
from imdiag.core.model import Cause
from imdiag.core.probe_frames import PROBE_TYPE
from imdiag.core.probe_result import Outcome, ProbeSettings, TransportLimit, exit_code
from imdiag.core.quirks import RULES, web_server_limits
from imdiag.core.refusal import Refuser
from imdiag.core.search import max_trials
from imdiag.core.wire import Encoder, LimitUnit, Transport, encode_json, measure
from imdiag.masters.asgi import AsgiMaster
from imdiag.masters.ledger import Arrival
from imdiag.masters.python import PythonMaster
from imdiag.render.json_report import probe_to_dict
from imdiag.runners.probe import probe

from ..helpers import TIMEOUT, serving

NS = "/worker"


def expected_limits(server: str, transport: Transport, limit: int) -> tuple[int, int]:
    """Largest accepted and smallest refused frame, from the server's rule in quirks.py."""
    rule = RULES[(server, transport, False)]
    accepted = limit if rule.predicts_delivered(limit, limit) else limit - 1
    assert rule.predicts_delivered(accepted, limit) and not rule.predicts_delivered(accepted + 1, limit)
    return accepted, accepted + 1


def by_transport(result_transports: tuple[TransportLimit, ...]) -> dict[Transport, TransportLimit]:
    return {t.transport: t for t in result_transports}


@pytest.mark.parametrize("limit", [50_000, 1_000_000])
async def test_exact_limits_advertised_payload_and_failure_mode(limit):
    async with PythonMaster(limit=limit, namespace=NS) as master:
        result = await probe(ProbeSettings(url=master.url + NS, timeout_s=TIMEOUT))
        arrivals = [e for e in master.ledger.entries if isinstance(e, Arrival)]
    assert result.elapsed_s < 10
    hs = result.handshake
    assert hs.max_payload == limit and hs.namespace == NS and hs.namespace_sid
    assert hs.transport is Transport.POLLING and "websocket" in hs.upgrades
    limits = by_transport(result.transports)
    for transport, measured in limits.items():
        accepted, refused = expected_limits("python", transport, limit)
        assert (measured.max_accepted, measured.first_rejected) == (accepted, refused), transport
        assert measured.exact and not measured.stopped
        assert len(measured.trials) <= 2  # the advertised maxPayload pinned it
        assert measured.readmitted is True
        failure = measured.failure
        assert failure is not None and failure.cause is Cause.OVERSIZE_CLOSE
        assert not failure.session_survived
    ws, polling = limits[Transport.WEBSOCKET], limits[Transport.POLLING]
    assert ws.failure.observation.close_code == 1009
    assert polling.failure.observation.http_status == 400
    # python websocket refuses a frame of exactly maxPayload: the probe says so.
    assert "disagrees (-1 B)" in result.advertised_notes[Transport.WEBSOCKET]
    assert result.advertised_notes[Transport.POLLING].startswith("matches")
    line = result.explanations[Transport.WEBSOCKET]
    assert f"over {limit - 1:,} B is refused" in line and "1009" in line and "heartbeats" in line
    assert "let straight back in" in line
    assert "decode errors" in result.explanations[Transport.POLLING]  # polling acceptance caveat
    # The master saw only probe messages: never one of the target's real types.
    assert arrivals and {a.type for a in arrivals} == {PROBE_TYPE}
    assert {a.event for a in arrivals} == {"message"}


async def test_bisection_without_a_guess_finds_the_limit_exactly():
    limit = 50_000
    async with PythonMaster(limit=limit, namespace=NS) as master:
        settings = ProbeSettings(url=master.url + NS, max_bytes=300_000, timeout_s=TIMEOUT, guess_advertised=False)
        result = await probe(settings)
    for measured in result.transports:
        assert (measured.max_accepted, measured.first_rejected) == expected_limits("python", measured.transport, limit)
        bound = max_trials(measured.smallest_frame - 1, settings.max_bytes) - 2  # no guess: plain bisection
        assert 3 < len(measured.trials) <= bound
        assert all(t.size <= settings.max_bytes for t in measured.trials)


async def test_max_bytes_is_never_exceeded():
    async with PythonMaster(limit=1_000_000, namespace=NS) as master:
        result = await probe(ProbeSettings(url=master.url + NS, max_bytes=300_000, timeout_s=TIMEOUT))
    for measured in result.transports:
        assert max(t.size for t in measured.trials) == 300_000
        assert measured.max_accepted == 300_000 and measured.first_rejected is None
        assert len(measured.trials) == 1 and measured.readmission is None
        assert "no size limit was found" in result.explanations[measured.transport]
        assert "so not checked" in result.advertised_notes[measured.transport]


async def test_ack_proves_delivery_and_shows_polling_bodies_lost_under_the_limit():
    async with PythonMaster(limit=50_000, namespace=NS) as master:
        result = await probe(ProbeSettings(url=master.url + NS, ack=True, timeout_s=TIMEOUT))
    for measured in result.transports:
        accepted = [t for t in measured.trials if t.outcome is Outcome.ACCEPTED]
        assert accepted and all("acknowledged it" in t.evidence for t in accepted)
    async with PythonMaster(limit=1_000_000, namespace=NS) as master:
        result = await probe(ProbeSettings(url=master.url + NS, ack=True, transports=(Transport.POLLING,),
                                           timeout_s=TIMEOUT))
    (polling,) = result.transports
    # The transport limit stays the Content-Length rule; a body it took but never handed to the
    # handler (python-engineio's truncated reads) is reported as lost, not as refused.
    assert (polling.max_accepted, polling.first_rejected) == (1_000_000, 1_000_001)
    if polling.lost:
        assert "never acknowledged" in result.explanations[Transport.POLLING]


async def test_messages_are_judged_against_the_measured_limits(tmp_path):
    small = {"type": "worker:heartbeat", "payload": {"t": 1764319599000}}
    big = {"type": "worker:data:sync", "payload": {"text": "你好，请问这个商品还有货吗？" * 4000}}
    fixture = tmp_path / "messages.jsonl"
    fixture.write_text("\n".join(json.dumps(m, ensure_ascii=False) for m in (small, big)) + "\n")
    from imdiag.cli.probe import load_messages

    sized = load_messages(str(fixture), encoder=Encoder.NODE, event="message", url_namespace=NS)
    frames = [measure(encode_json(m, Encoder.NODE), encoder=Encoder.NODE, namespace=NS).frame_bytes for m in (small, big)]
    assert [s.frame_bytes for s in sized] == frames
    async with PythonMaster(limit=100_000, namespace=NS) as master:
        result = await probe(ProbeSettings(url=master.url + NS, messages=sized, timeout_s=TIMEOUT))
        arrivals = [e for e in master.ledger.entries if isinstance(e, Arrival)]
    assert {a.type for a in arrivals} == {PROBE_TYPE}  # the messages themselves were never sent
    limits = by_transport(result.transports)
    first, second = result.messages
    for fit in first.fits:
        ok = limits[fit.transport].max_accepted
        assert fit.fits is True and fit.headroom_bytes == ok - frames[0]
        assert fit.headroom_pct == pytest.approx((ok - frames[0]) / ok * 100)
    for fit in second.fits:
        assert fit.fits is False and fit.headroom_bytes == limits[fit.transport].max_accepted - frames[1] < 0


def engineio_ws_server(*, enforced: int, advertised: int | None, close_code: int = 1009):
    """A websocket-only Socket.IO endpoint of our own: it refuses frames over ``enforced`` bytes with
    ``close_code`` whatever it advertises, answers namespace CONNECTs, and never acknowledges events."""
    open_info = {"sid": "s1", "upgrades": [], "pingInterval": 25000, "pingTimeout": 20000}
    if advertised is not None:
        open_info["maxPayload"] = advertised

    async def handler(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        await ws.send_str("0" + json.dumps(open_info))
        async for msg in ws:
            if len(msg.data.encode()) > enforced:
                await ws.close(code=close_code)
                break
            if msg.data.startswith("40" + NS):
                await ws.send_str(f'40{NS},{{"sid":"n1"}}')
            elif msg.data.startswith("40/"):
                namespace = msg.data[2:].split(",")[0]
                await ws.send_str(f'44{namespace},{{"message":"Invalid namespace"}}')
        return ws

    return serving(handler)


async def test_a_limit_other_than_the_advertised_one_is_found_by_bisection():
    async with engineio_ws_server(enforced=123_457, advertised=1_000_000) as url:
        result = await probe(ProbeSettings(url=url + NS, transports=(Transport.WEBSOCKET,), max_bytes=2**20,
                                           timeout_s=TIMEOUT))
    (limit,) = result.transports
    assert (limit.max_accepted, limit.first_rejected) == (123_457, 123_458) and limit.exact
    assert len(limit.trials) <= max_trials(limit.smallest_frame - 1, 2**20)
    assert result.advertised_notes[Transport.WEBSOCKET] == (
        "disagrees (-876,543 B): maxPayload 1,000,000 B, largest accepted 123,457 B")
    assert limit.agrees_with(1_000_000) is False


async def test_ack_against_a_master_that_never_acks_calls_nothing_lost():
    async with engineio_ws_server(enforced=50_000, advertised=50_000) as url:
        result = await probe(ProbeSettings(url=url + NS, transports=(Transport.WEBSOCKET,), ack=True,
                                           timeout_s=TIMEOUT))
    (limit,) = result.transports
    assert (limit.max_accepted, limit.first_rejected) == (50_000, 50_001)
    # The readmission (the smallest probe, new connection) already showed it: no extra trial.
    assert limit.ack_control is None and limit.readmission.size == limit.smallest_frame
    assert not limit.acked and limit.lost == () and len(limit.unacknowledged) == 1
    line = result.explanations[Transport.WEBSOCKET]
    assert "acknowledged no probe, not even the smallest" in line and "lost them" not in line


async def test_ack_with_nothing_refused_checks_acks_with_the_smallest_probe():
    """--max-bytes under the limit, so no refusal and no readmission: one control trial with the
    smallest probe says whether the master acks at all, before anything is called lost."""
    async with engineio_ws_server(enforced=50_000, advertised=50_000) as url:
        result = await probe(ProbeSettings(url=url + NS, transports=(Transport.WEBSOCKET,), ack=True,
                                           max_bytes=10_000, timeout_s=TIMEOUT))
    (limit,) = result.transports
    assert (limit.max_accepted, limit.first_rejected, limit.readmission) == (10_000, None, None)
    assert limit.ack_control is not None and limit.ack_control.size == limit.smallest_frame
    assert not limit.acked and limit.lost == ()
    assert "acknowledged no probe, not even the smallest" in result.explanations[Transport.WEBSOCKET]
    report = probe_to_dict(result)["transports"]["websocket"]
    assert report["master_acknowledged"] is False and report["lost_frame_bytes"] == []
    assert report["trial_log"][-1]["purpose"] == "ack-control"


async def test_a_normal_close_at_the_boundary_is_a_size_refusal_and_elsewhere_inconclusive():
    """A close 1000 is a size signal only when it reproduces at the advertised maxPayload: accepted
    there, closed one byte over, twice."""
    async with engineio_ws_server(enforced=50_000, advertised=50_000, close_code=1000) as url:
        result = await probe(ProbeSettings(url=url + NS, transports=(Transport.WEBSOCKET,), timeout_s=TIMEOUT))
    (limit,) = result.transports
    assert (limit.max_accepted, limit.first_rejected) == (50_000, 50_001) and limit.exact
    assert exit_code(result) is ExitCode.OK
    assert [(t.size, t.purpose, t.outcome) for t in limit.trials] == [
        (50_000, "search", Outcome.ACCEPTED), (50_001, "search", Outcome.REJECTED), (50_001, "retry", Outcome.REJECTED)]
    failure = limit.failure
    assert failure is not None and failure.cause is Cause.OVERSIZE_CLOSE and failure.refused_by is Refuser.MASTER
    assert "closed the websocket with 1000 (Normal Closure)" in failure.evidence and "no 1009" in failure.evidence
    assert limit.size_close is not None and "50,001 B closed with 1000 twice" in limit.size_close.evidence
    # This server counts bytes: the frame of 50,000 characters holding Chinese text is refused too.
    assert limit.limit_unit is LimitUnit.BYTES
    (unit,) = limit.unit_trials
    assert unit.chars == 50_000 < unit.size and unit.outcome is Outcome.REJECTED
    # The same close away from the advertised maxPayload is not reproducible at the boundary: inconclusive.
    async with engineio_ws_server(enforced=123_457, advertised=1_000_000, close_code=1000) as url:
        result = await probe(ProbeSettings(url=url + NS, transports=(Transport.WEBSOCKET,), timeout_s=TIMEOUT))
    (limit,) = result.transports
    assert "inconclusive twice" in limit.stopped and "1000 (Normal Closure)" in limit.stopped
    assert limit.size_close is None and limit.limit_unit is None
    assert exit_code(result) is ExitCode.TARGET


async def test_uvicorns_own_limit_is_the_asgi_masters_limit_over_it():
    """max_http_buffer_size over uvicorn's ws_max_size (16 MiB): uvicorn refuses first, with 1009
    and a reason naming its limit, which the probe tries next."""
    (web,) = web_server_limits("asgi", Transport.WEBSOCKET)
    async with AsgiMaster(limit=20_000_000, namespace=NS) as master:
        result = await probe(ProbeSettings(url=master.url + NS, transports=(Transport.WEBSOCKET,),
                                           max_bytes=17 * 2**20, timeout_s=TIMEOUT))
    (limit,) = result.transports
    assert (limit.max_accepted, limit.first_rejected) == (16_777_216, 16_777_217) == (web.limit, web.limit + 1)
    assert web.predicts_delivered(limit.max_accepted) and not web.predicts_delivered(limit.first_rejected)
    assert len(limit.trials) == 3  # --max-bytes refused, then the named limit and its neighbour
    failure = limit.failure
    assert failure is not None and failure.refused_by is Refuser.WEB_SERVER
    refusal = refusal_of(failure.observation)
    assert refusal is not None and refusal.server == "uvicorn" and failure.observation.close_code == web.close == 1009
    assert "Message exceeds the maximum size (16777216 bytes)" in failure.observation.close_reason
    summary = result.summary[Transport.WEBSOCKET]
    assert "refused by the master's web server (uvicorn" in summary and "ws_max_size" in summary
    assert "below the master's maxPayload 20,000,000 B" in summary
    assert limit.limit_unit is LimitUnit.BYTES is web.unit
    assert probe_to_dict(result)["transports"]["websocket"]["refused_by"] == "web-server"
