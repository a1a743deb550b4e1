"""The tap's tracker, fed what a relay reports, without a network: sessions, messages, outcomes."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from imdiag.core.frames import FrameHeader
from imdiag.core.http1 import parse_request, parse_response
from imdiag.core.model import Cause, Outcome
from imdiag.core.tap import (
    Captured,
    Hold,
    LateAck,
    Oversize,
    Reconnected,
    SessionClosed,
    Settled,
    TapEvent,
    Tracker,
    Upgraded,
)
from imdiag.core.wire import Transport

LIMIT = 1000
NODE_HEADERS = "Content-Type: text/plain; charset=UTF-8"
PYTHON_SERVER = "Server: Python/3.11 aiohttp/3.14.5"


def _open(sid: str) -> str:
    return "0" + json.dumps({"sid": sid, "upgrades": ["websocket"], "pingInterval": 25000, "pingTimeout": 20000,
                             "maxPayload": LIMIT})


def _event(n: int, size: int = 0, ack: str = "", ns: str = "/worker") -> str:
    return f'42{ns},{ack}["message",{{"type":"t{n}","id":"m{n}","pad":"{"x" * size}"}}]'


class Feed:
    """Plays a relay: requests, responses, frames and ends, on a clock the test moves."""

    def __init__(self, **options: Any):
        self.now = 100.0
        self.events: list[TapEvent] = []
        self.tracker = Tracker(clock=lambda: self.now, emit=self.events.append, **options)
        self._ids = itertools.count(1)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def settled(self) -> dict[str, Settled]:
        return {e.cell.type: e for e in self.of(Settled)}

    def conn(self, peer: str = "10.0.0.5:4000") -> int:
        conn = next(self._ids)
        self.tracker.connection(conn, peer)
        return conn

    def request(self, line: str, *headers: str, body: str = "") -> Any:
        head = f"{line} HTTP/1.1\r\nHost: tap\r\nUser-Agent: worker/1\r\n" + "".join(h + "\r\n" for h in headers)
        if body:
            head += f"Content-Length: {len(body.encode())}\r\n"
        return parse_request((head + "\r\n").encode())

    def polling(self, sid: str, server: str = NODE_HEADERS, peer: str = "10.0.0.5:4000") -> None:
        conn, exchange = self.conn(peer), next(self._ids)
        request = self.request("GET /socket.io/?EIO=4&transport=polling&t=1")
        self.tracker.request_head(conn, exchange, request)
        self.tracker.request_body(conn, exchange, request, b"", 0)
        body = _open(sid).encode()
        self.tracker.response(conn, exchange, request, parse_response(f"HTTP/1.1 200 OK\r\n{server}\r\n\r\n".encode()), body)

    def post(self, sid: str, body: str, status: int = 200, answer: str = "ok", answer_first: bool = False) -> Hold | None:
        conn, exchange = self.conn(), next(self._ids)
        request = self.request(f"POST /socket.io/?EIO=4&transport=polling&sid={sid}", body=body)
        hold = self.tracker.request_head(conn, exchange, request)
        response = parse_response(f"HTTP/1.1 {status} X\r\n\r\n".encode())
        if answer_first:
            self.tracker.response(conn, exchange, request, response, answer.encode())
        self.tracker.request_body(conn, exchange, request, body.encode(), len(body.encode()))
        if not answer_first and hold is None:
            self.tracker.response(conn, exchange, request, response, answer.encode())
        return hold

    def get(self, sid: str, body: str) -> None:
        conn, exchange = self.conn(), next(self._ids)
        request = self.request(f"GET /socket.io/?EIO=4&transport=polling&sid={sid}")
        self.tracker.request_head(conn, exchange, request)
        self.tracker.request_body(conn, exchange, request, b"", 0)
        self.tracker.response(conn, exchange, request, parse_response(b"HTTP/1.1 200 OK\r\n\r\n"), body.encode())

    def websocket(self, sid: str | None = None, server: str = NODE_HEADERS) -> int:
        """A websocket: an upgrade of polling session ``sid``, or a direct session (OPEN ``S-ws``)."""
        conn = self.conn()
        query = f"&sid={sid}" if sid else ""
        request = self.request(f"GET /socket.io/?EIO=4&transport=websocket{query}", "Connection: Upgrade",
                               "Upgrade: websocket")
        self.tracker.ws_opened(conn, request, parse_response(f"HTTP/1.1 101 X\r\n{server}\r\n\r\n".encode()))
        if sid is None:
            self.master(conn, _open("S-ws"))
        return conn

    def worker(self, conn: int, text: str | bytes, opcode: int = 1) -> Hold | None:
        payload = text.encode() if isinstance(text, str) else text
        hold = self.frame_start(conn, len(payload), opcode)
        self.tracker.ws_message(conn, True, opcode, payload, len(payload))
        return hold

    def frame_start(self, conn: int, length: int, opcode: int = 1) -> Hold | None:
        header = FrameHeader(fin=True, rsv1=False, opcode=opcode, masked=True, length=length, mask=b"abcd", size=8)
        return self.tracker.ws_frame(conn, header)

    def master(self, conn: int, text: str) -> None:
        self.tracker.ws_message(conn, False, 1, text.encode(), len(text.encode()))


def test_a_1009_close_refuses_the_frame_still_arriving_and_no_other() -> None:
    feed = Feed()
    ws = feed.websocket()
    feed.worker(ws, "40/worker,")
    feed.master(ws, '40/worker,{"sid":"sock1"}')
    feed.worker(ws, _event(1))
    feed.worker(ws, _event(2))
    big = _event(3, 1200).encode()
    assert feed.frame_start(ws, len(big)) is None  # flagged, forwarded: the tap changes nothing
    (flag,) = feed.of(Oversize)
    assert (flag.frame_bytes, flag.max_payload, flag.held) == (len(big), LIMIT, False)
    feed.tracker.ws_close(ws, False, 1009, "")  # the master refuses while the frame is still arriving
    feed.tracker.ws_message(ws, True, 1, big, len(big))
    feed.worker(ws, _event(4))  # sent after the close: lost with the session
    settled = feed.settled()
    assert [settled[f"t{n}"].message.outcome for n in (1, 2, 3, 4)] == [
        Outcome.PASSED, Outcome.PASSED, Outcome.REFUSED, Outcome.LOST]
    refused = settled["t3"]
    assert (refused.cell.cause, refused.cell.wire_bytes, refused.message.refused_by) == (
        Cause.OVERSIZE_CLOSE, len(big), "master")
    assert refused.message.over_limit and refused.cell.observed.close_code == 1009
    assert settled["t1"].message.proof == "the master read past it: it refused a later frame"
    assert settled["t4"].cell.cause is Cause.CONNECTION_CLOSED
    (closed,) = feed.of(SessionClosed)
    assert (closed.session.closed_by, closed.session.close_code, closed.session.refused) == ("master", 1009, True)


def test_the_refused_workers_next_session_is_its_reconnect() -> None:
    feed = Feed()
    feed.polling("S1")
    feed.post("S1", _event(1, 1500), status=413, answer="")
    (closed,) = feed.of(SessionClosed)
    assert closed.session.refused and closed.session.closed_by == "master"
    feed.polling("S2", peer="10.0.0.5:4001")  # same host and User-Agent, another port
    feed.polling("S3", peer="10.0.0.6:4000")  # another worker
    (reconnect,) = feed.of(Reconnected)
    assert (reconnect.sid, reconnect.previous.sid, reconnect.candidates) == ("S2", "S1", 1)


def test_a_413_answered_before_the_body_is_in_still_names_the_message() -> None:
    feed = Feed()
    feed.polling("S1")
    body = _event(1, 1500)
    feed.post("S1", body, status=413, answer="", answer_first=True)
    (flag,) = feed.of(Oversize)
    assert (flag.transport, flag.frame_bytes) == (Transport.POLLING, len(body))
    settled = feed.settled()["t1"]
    assert settled.message.outcome is Outcome.REFUSED and settled.cell.cause is Cause.OVERSIZE_CLOSE
    assert settled.message.refused_by == "master" and "empty 413" in settled.message.refused_by_evidence
    assert settled.cell.observed.http_status == 413


@pytest.mark.parametrize("cut_at", [40, 700])
def test_a_body_the_worker_stops_sending_after_the_answer_is_settled_by_the_answer(cut_at: int) -> None:
    """The master answered 400 from the head; the worker's client then let go of the body (aiohttp
    stops one when its response is released). The packets that came whole are themselves; the one
    it was cut in is named by its head, and only its size with the rest of the POST is known."""
    feed = Feed()
    feed.polling("S1")
    body = _event(1) + "\x1e" + _event(2, 1500)
    relayed = _cut_post(feed, body, len(_event(1)) + 1 + cut_at, answer=400)
    first, cut = feed.settled()["t1"], feed.settled()["t2"]
    for settled in (first, cut):
        assert settled.message.outcome is Outcome.REFUSED and settled.cell.observed.http_status == 400
        assert settled.cell.wire_bytes == len(body)  # the POST as announced, not what came
    assert first.cell.message_bytes == len(_event(1)) and "not known" not in first.message.proof
    assert cut.cell.message_bytes == len(body) - len(_event(1)) - 1 and cut.cell.json_bytes == 0
    assert f"after {relayed:,} of {len(body):,} B: this message's own size is not known" in cut.message.proof
    # Its fields as far as they came: 40 bytes end inside the id ('42/worker,["message",{"type":"t2","id":"').
    assert cut.cell.message_id == (None if cut_at == 40 else "m2")


def _cut_post(feed: Feed, body: str, cut_at: int, answer: int | None) -> int:
    """A POST of ``body`` whose worker stops after ``cut_at`` bytes, answered ``answer`` first (or
    not at all: its connection then ends). The bytes relayed."""
    conn, exchange = feed.conn(), next(feed._ids)
    request = feed.request("POST /socket.io/?EIO=4&transport=polling&sid=S1", body=body)
    feed.tracker.request_head(conn, exchange, request)
    if answer is not None:
        response = parse_response(f"HTTP/1.1 {answer} X\r\n\r\n".encode())
        feed.tracker.response(conn, exchange, request, response, b'"Bad Request"')
    relayed = body.encode()[:cut_at]
    feed.tracker.request_body(conn, exchange, request, relayed, len(relayed), whole=False)
    if answer is None:
        feed.tracker.exchange_failed(exchange, "the connection ended before the answer")
    return len(relayed)


def test_a_body_cut_in_its_first_packet_names_no_later_one_and_blames_none() -> None:
    """Cut inside the first of two packets: the second never came, so it is not named, and the
    first is not said to be the POST's size: its own size is not known."""
    feed = Feed()
    feed.polling("S1")
    body = _event(1) + "\x1e" + _event(2, 5000)
    _cut_post(feed, body, 40, answer=413)
    (settled,) = feed.of(Settled)
    assert settled.cell.type == "t1" and settled.message.outcome is Outcome.REFUSED
    assert "this message's own size is not known (with what followed it in the POST, " in settled.message.proof


@pytest.mark.parametrize("cut_at", [0, 2])
def test_a_body_cut_before_a_head_is_an_unknown_message_of_the_rest(cut_at: int) -> None:
    feed = Feed()
    feed.polling("S1")
    body = _event(1, 1500)
    _cut_post(feed, body, cut_at, answer=413)
    (settled,) = feed.of(Settled)
    assert settled.cell.type == "(not decoded)" and settled.cell.message_bytes == len(body)


def test_a_cut_binary_event_is_complete_without_its_attachments_and_kept_in_the_report() -> None:
    feed = Feed()
    feed.polling("S1")
    body = '451-/worker,["message",{"type":"tb","id":"b1","data":{"_placeholder":true,"num":0}}]\x1ebAAAA'
    _cut_post(feed, body, 30, answer=413)
    (settled,) = feed.of(Settled)
    assert settled.cell.type == "(not decoded)"  # cut before its type came whole
    _cut_post(feed, body, 70, answer=413)
    cells, _ = feed.tracker.finish(upstream="u", listen="l", stopped_by="test")
    assert [c.type for c in cells] == ["(not decoded)", "tb"]


def test_an_unanswered_body_the_worker_stops_sending_is_lost_with_its_connection() -> None:
    feed = Feed()
    feed.polling("S1")
    _cut_post(feed, _event(1, 1500), 300, answer=None)
    (settled,) = feed.of(Settled)
    assert settled.cell.type == "t1" and settled.message.outcome is Outcome.LOST


def test_a_polling_post_passes_and_a_later_ack_proves_delivery() -> None:
    feed = Feed()
    feed.polling("S1")
    feed.post("S1", _event(1) + "\x1e" + _event(2, ack="7"))
    settled = feed.settled()
    assert {settled["t1"].message.outcome, settled["t2"].message.outcome} == {Outcome.PASSED}
    assert settled["t1"].cell.wire_bytes == len((_event(1) + "\x1e" + _event(2, ack="7")).encode())
    assert settled["t1"].cell.message_bytes == len(_event(1)) and settled["t1"].cell.observed.packets_in_body == 2
    feed.get("S1", "43/worker,7[true]")
    (late,) = feed.of(LateAck)
    assert late.message.outcome is Outcome.ACKED
    cells, _ = feed.tracker.finish(upstream="http://m", listen="l", stopped_by="duration")
    assert [c.delivered for c in cells] == [False, True]
    assert cells[0].cause is Cause.UNKNOWN and "only the master's ack proves delivery" in cells[0].evidence


def test_binary_attachments_are_sized_as_sent() -> None:
    feed = Feed()
    feed.polling("S1")
    text = '451-/worker,["message",{"type":"file","data":{"_placeholder":true,"num":0}}]'
    feed.post("S1", text + "\x1ebAQIDBA==")
    polled = feed.settled()["file"]
    assert polled.message.attachment_bytes == (9,) and polled.message.packet_bytes == len(text)
    ws = feed.websocket()
    feed.worker(ws, '452-/worker,["message",{"type":"file2","a":{"_placeholder":true,"num":0},'
                    '"b":{"_placeholder":true,"num":1}}]')
    assert "file2" not in feed.settled()  # waiting for its attachments
    feed.worker(ws, b"\x00" * 300, opcode=2)
    feed.worker(ws, b"\x01" * 5, opcode=2)
    feed.now += 1.0
    feed.tracker.tick()
    framed = feed.settled()["file2"]
    assert framed.message.attachment_bytes == (300, 5)
    assert framed.cell.wire_bytes == framed.message.packet_bytes + 305


def test_what_proves_a_websocket_frame_passed() -> None:
    feed = Feed()
    ws = feed.websocket()
    feed.worker(ws, _event(1))
    feed.master(ws, "2")  # a PING before any PONG proves nothing
    assert not feed.of(Settled)
    feed.worker(ws, "3")
    feed.master(ws, "2")
    assert feed.settled()["t1"].message.proof == "the master sent its next PING after the worker's PONG"
    feed.worker(ws, _event(2))
    feed.now += 0.5
    feed.tracker.tick()
    assert "t2" not in feed.settled()
    feed.now += 0.5
    feed.tracker.tick()
    assert feed.settled()["t2"].message.proof == "the upstream took the whole frame and refused nothing for 1 s"
    feed.worker(ws, _event(3))
    cells, details = feed.tracker.finish(upstream="http://m", listen="l", stopped_by="ctrl-c")
    assert details.messages[-1].outcome is Outcome.IN_FLIGHT and cells[-1].cause is Cause.UNKNOWN
    assert details.messages[-1].proof == "still in flight when the tap stopped"


def test_an_upgrade_and_a_clean_close() -> None:
    feed = Feed()
    feed.polling("S1")
    ws = feed.websocket("S1")
    feed.worker(ws, "2probe")
    feed.master(ws, "3probe")
    feed.worker(ws, "5")
    (upgraded,) = feed.of(Upgraded)
    assert upgraded.sid == "S1" and not upgraded.detail
    feed.worker(ws, _event(1))
    feed.tracker.ws_close(ws, True, 1000, "")
    feed.tracker.ws_close(ws, False, 1000, "")  # the master's reply: it read everything before
    assert feed.settled()["t1"].message.proof == "the master answered the worker's close frame"
    (closed,) = feed.of(SessionClosed)
    assert (closed.session.closed_by, closed.session.close_code, closed.session.upgraded_t) == ("worker", 1000, 0.0)


def test_an_upstream_that_dies_loses_what_was_in_flight() -> None:
    feed = Feed()
    ws = feed.websocket()
    feed.worker(ws, _event(1))
    feed.tracker.conn_ended(ws, "master", "ConnectionResetError: [Errno 104] Connection reset by peer")
    lost = feed.settled()["t1"]
    assert lost.message.outcome is Outcome.LOST and lost.cell.cause is Cause.CONNECTION_CLOSED
    (closed,) = feed.of(SessionClosed)
    assert closed.session.closed_by == "master" and "reset" in closed.session.close_reason


@pytest.mark.parametrize(("server", "status", "body"), [
    (NODE_HEADERS, 413, b""), (PYTHON_SERVER, 400, b'"Bad Request"')])
def test_hold_oversize_answers_as_that_master_would(server: str, status: int, body: bytes) -> None:
    feed = Feed(hold_oversize=True)
    feed.polling("S1", server=server)
    hold = feed.post("S1", _event(1, 1500))
    assert hold is not None and hold.status == status and hold.response.endswith(b"\r\n\r\n" + body)
    held = feed.settled()["t1"]
    assert held.message.outcome is Outcome.HELD and held.cell.cause is Cause.OVERSIZE_CLOSE
    assert "never sent to the master: held by imdiag tap" in held.cell.evidence
    (closed,) = feed.of(SessionClosed)
    assert closed.session.closed_by == "tap" and closed.session.refused


def test_hold_oversize_over_websocket() -> None:
    feed = Feed(hold_oversize=True)
    ws = feed.websocket()
    assert feed.worker(ws, _event(1, 1500)) == Hold(close_code=1009)
    assert feed.settled()["t1"].message.outcome is Outcome.HELD
    assert feed.of(Oversize)[0].held


def test_figures_per_type_cells_and_the_cap_on_kept_messages() -> None:
    feed = Feed(max_kept=2, record=True)
    feed.polling("S1")
    for n, size in enumerate((10, 30, 20)):
        feed.post("S1", _event(0, size))
    feed.post("S1", _event(1))
    rows = {r.type: r for r in feed.tracker.by_type()}
    t0 = rows["t0"]
    sizes = sorted(len(_event(0, s)) for s in (10, 30, 20))
    assert (t0.count, t0.bytes_min, t0.bytes_p50, t0.bytes_max) == (3, sizes[0], sizes[1], sizes[2])
    assert t0.outcomes == {"passed": 3} and t0.max_payload == LIMIT
    assert len(feed.of(Captured)) == 4 and feed.of(Captured)[0].message["type"] == "t0"
    cells, details = feed.tracker.finish(upstream="http://m", listen="l", stopped_by="duration")
    assert len(cells) == 2 and details.messages_not_kept == 2
    assert {(c.master, c.label, c.limit, c.transport) for c in cells} == {("live", "tap", LIMIT, Transport.POLLING)}
