"""The real ASGI master (python-socketio's ASGIApp under uvicorn) on loopback: its limits, as measured.

One master for the module's table: every frame on a fresh connection, judged from the master's
ledger and what the transport showed, and compared with the server rules of ``servers.toml``.
"""

from __future__ import annotations

import aiohttp

from imdiag.clients.engineio import Endpoint, open_connection
from imdiag.clients.observe import LedgerWitness, Outgoing, observe
from imdiag.core.judge import judge
from imdiag.core.model import Cause, Observation, Verdict
from imdiag.core.quirks import predicts_delivered, rule
from imdiag.core.refusal import Refuser
from imdiag.core.wire import (
    WIRE_TRANSPORTS,
    Encoder,
    LimitUnit,
    Transport,
    code_points,
    encode_json,
    event_frame,
)
from imdiag.masters.asgi import AsgiMaster

from ..helpers import TIMEOUT

NS = "/worker"
L = 10_000


def frame(n_bytes: int, char: str, message_id: str) -> bytes:
    """A frame of exactly ``n_bytes`` bytes whose text is ``char`` repeated (ASCII for the remainder),
    with as little else as the ledger needs (an id): ``42/worker,["message",{"id":"3","t":"..."}]``."""
    head = event_frame(encode_json({"id": message_id, "t": ""}, Encoder.NODE).encode(),
                       encoder=Encoder.NODE, namespace=NS)
    cut = len(head) - len(b'"}]')
    per = len(char.encode())
    count, rest = divmod(n_bytes - len(head), per)
    data = head[:cut] + (char * count).encode() + b"x" * rest + head[cut:]
    assert len(data) == n_bytes
    return data


async def send(master: AsgiMaster, session: aiohttp.ClientSession, transport: Transport,
               data: bytes, message_id: str, *, with_rule: bool = True) -> tuple[Observation, Verdict]:
    conn = await open_connection(Endpoint(master.url, namespace=NS), transport, session, TIMEOUT)
    try:
        witness = LedgerWitness(master.ledger, Encoder.NODE, "message", NS)
        # A master imdiag started refuses as its rule says: ASGI's websocket refusal is a close 1000.
        size_close = rule("asgi", transport).size_close() if with_rule else None
        (obs,) = await observe(conn, [Outgoing(data, message_id=message_id)], witness, TIMEOUT,
                               size_close=size_close)
        return obs, judge(obs)
    finally:
        await conn.close()


async def test_the_issue_table_websocket_counts_characters_polling_bytes(session):
    sizes = {"L-1": L - 1, "L": L, "L+1": L + 1, "3L-100": 3 * L - 100, "3L+100": 3 * L + 100}
    seen: dict[tuple[Transport, str, str], tuple[Observation, Verdict]] = {}
    async with AsgiMaster(limit=L, namespace=NS) as master:
        for transport in WIRE_TRANSPORTS:
            for text, char in (("ascii", "x"), ("chinese", "中")):
                for label, n in sizes.items():
                    message_id = str(len(seen))
                    data = frame(n, char, message_id)
                    obs, verdict = await send(master, session, transport, data, message_id)
                    seen[(transport, text, label)] = obs, verdict
                    # The server rules predict every cell: characters on websocket, bytes on polling.
                    expected = predicts_delivered("asgi", transport, L, n_bytes=n, n_chars=code_points(data))
                    assert verdict.delivered == expected, (transport, text, label, verdict)
                    assert obs.body_chars == code_points(data)
                    if (text, label) == ("chinese", "3L-100"):  # the issue's figure
                        assert code_points(data) == 9_994
                    if not verdict.delivered:
                        assert verdict.cause is Cause.OVERSIZE_CLOSE and verdict.refused_by is Refuser.MASTER
        # The same close 1000, observed without the ASGI rule (as from a server nobody knows): no
        # size signal by itself, so the judge keeps it a closed connection.
        unknown, verdict = await send(master, session, Transport.WEBSOCKET, frame(L + 1, "x", "u"), "u",
                                      with_rule=False)
        assert unknown.close_code == 1000 and verdict.cause is Cause.CONNECTION_CLOSED
    assert rule("asgi", Transport.WEBSOCKET).unit is LimitUnit.CHARACTERS
    ws = {(text, label): v.delivered for (t, text, label), (_, v) in seen.items() if t is Transport.WEBSOCKET}
    # The issue's table, row by row: ASCII at L passes, L+1 is closed; Chinese of 3L-100 bytes
    # (9,994 characters) passes, 3x the limit in bytes; 3L+100 bytes (10,060 characters) does not.
    assert ws == {("ascii", "L-1"): True, ("ascii", "L"): True, ("ascii", "L+1"): False,
                  ("ascii", "3L-100"): False, ("ascii", "3L+100"): False,
                  ("chinese", "L-1"): True, ("chinese", "L"): True, ("chinese", "L+1"): True,
                  ("chinese", "3L-100"): True, ("chinese", "3L+100"): False}
    obs, verdict = seen[(Transport.WEBSOCKET, "ascii", "L+1")]
    assert obs.close_code == 1000 and obs.disconnect_reason == "transport close"
    assert "closed the websocket with 1000 (Normal Closure)" in verdict.evidence
    assert "no 1009: python-engineio under ASGI" in verdict.evidence and "10,001 characters" in verdict.evidence
    # Polling counts bytes: L accepted, L+1 refused with 400 whatever the text.
    polling = {(text, label): v.delivered for (t, text, label), (_, v) in seen.items() if t is Transport.POLLING}
    assert polling == {(text, label): label in ("L-1", "L") for text in ("ascii", "chinese") for label in sizes}
    assert seen[(Transport.POLLING, "chinese", "L+1")][0].http_status == 400
