"""The path between client and master: sticky sessions, and the one-line findings with their fixes."""

from imdiag.core.judge import judged_cell
from imdiag.core.model import Cause, HttpAnswer, Observation
from imdiag.core.path import STICKY_FIX, UPGRADE_FIX, path_notes_of, stickiness
from imdiag.core.refusal import Refuser
from imdiag.core.wire import Encoder, Transport

UNKNOWN_SID = HttpAnswer("POST", 400, "nginx/1.22.1", '{"code":1,"message":"Session ID unknown"}')


def test_the_share_of_requests_another_node_answered():
    check = stickiness([None, UNKNOWN_SID, None, None, None, None] * 3 + [None, UNKNOWN_SID])
    assert (check.requests, check.other_node, check.failed, check.broken) == (20, 4, 0, True)
    assert check.share == 0.2 and check.refused_by is Refuser.MASTER
    line = check.finding()
    assert line.startswith("sticky sessions are broken: 4 of 20 requests (20%) on one polling session reached a master "
                           "node that does not know the session (HTTP 400, Server nginx/1.22.1, body ")
    assert STICKY_FIX in line and "ip_hash" in line and "transports: ['websocket']" in line


def test_sticky_sessions_and_other_refusals_are_not_another_node():
    assert not stickiness([None] * 20).broken
    other = stickiness([HttpAnswer("POST", 502, "nginx", "<html>502</html>"), None], errors=1)
    assert (other.broken, other.failed, other.requests) == (False, 2, 3)
    python = stickiness([HttpAnswer("POST", 400, "", '"Invalid session x1"')])
    assert python.broken  # python-engineio's way of saying it


def cell(transport: Transport, obs: Observation, index: int):
    return judged_cell(obs, type="worker:heartbeat", transport=transport, limit=1_000_000, encoder=Encoder.NODE,
                       master="live", label="replay", json_bytes=10, js_length=10, predicted_delivered=None,
                       index=index)


def test_path_notes_count_each_cause_once_per_transport_with_its_fix():
    blocked = Observation(body_bytes=100, connect_error="refused", upgrade_offered=True,
                          ended_by=HttpAnswer("websocket handshake", 400, "nginx/1.22.1", '{"code":3,"message":"Bad request"}'))
    lost = Observation(body_bytes=100, http_status=400, http_body=UNKNOWN_SID.body, http_server="nginx/1.22.1")
    cells = [cell(Transport.WEBSOCKET, blocked, i) for i in range(3)]
    cells += [cell(Transport.POLLING, lost, 0), cell(Transport.POLLING, Observation(body_bytes=100), 1)]
    assert [c.cause for c in cells] == [Cause.UPGRADE_BLOCKED] * 3 + [Cause.SESSION_UNKNOWN, Cause.UNKNOWN]
    polling, websocket = path_notes_of(cells)
    assert polling.startswith("polling: 1 of 2 message(s) met a master node that does not know the session")
    assert STICKY_FIX in polling
    assert websocket.startswith("websocket: 3 of 3 message(s) not sent: the websocket upgrade is refused")
    assert UPGRADE_FIX in websocket and "from the master (HTTP 400 'Bad request', via nginx/1.22.1)" in websocket
