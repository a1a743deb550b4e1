"""Each reference server's limit rules and known behaviours, as data.

Pure. These rules only *predict*; every one is checked at L-1, L and L+1 against the real
server by the integration and interop tests, and the sweep reports where the real server
does something the rule does not predict.
"""

from __future__ import annotations

from dataclasses import dataclass

from imdiag.wire import Transport


@dataclass(frozen=True)
class LimitRule:
    server: str  # "python" or "node"
    transport: Transport
    accepts: str  # "<" or "<=": how a frame/body of n bytes compares with the limit to pass
    measured: str  # what is compared: frame payload or POST body, in bytes
    where: str  # where the rule lives in the server's code
    seen: str  # versions it was observed with
    rejection: str  # what the server does with a message over the limit

    def predicts_delivered(self, n: int, limit: int) -> bool:
        return n < limit if self.accepts == "<" else n <= limit


RULES: dict[tuple[str, Transport], LimitRule] = {
    ("python", Transport.WEBSOCKET): LimitRule(
        "python", Transport.WEBSOCKET, "<", "websocket message payload, bytes",
        "aiohttp WebSocketReader: payload_bytes_to_read >= max_msg_size - partial_len -> 1009",
        "python-engineio 4.15 / aiohttp 3.14",
        "closes the websocket with 1009 and no reason text; the session ends ('transport close')",
    ),
    ("python", Transport.POLLING): LimitRule(
        "python", Transport.POLLING, "<=", "POST Content-Length, bytes",
        "engineio AsyncSocket.handle_post_request: length > max_http_buffer_size -> 400",
        "python-engineio 4.15 / aiohttp 3.14",
        "answers HTTP 400 'Bad Request' and closes the session",
    ),
    ("node", Transport.WEBSOCKET): LimitRule(
        "node", Transport.WEBSOCKET, "<=", "websocket message payload, bytes",
        "ws Receiver: totalPayloadLength > maxPayload -> 1009",
        "socket.io 4.8.1 / engine.io 6.6.13 / ws 8.23.0",
        "closes the websocket with 1009 and no reason text; the server's disconnect reason is "
        "'transport error' ('Max payload size exceeded' appears only server-side)",
    ),
    ("node", Transport.POLLING): LimitRule(
        "node", Transport.POLLING, "<=", "POST body bytes as received (chunks summed), not Content-Length",
        "engine.io Polling.onDataRequest: received > maxHttpBufferSize -> 413",
        "socket.io 4.8.1 / engine.io 6.6.13",
        "HTTP 413 with an empty body; the request socket is destroyed, the pending GET gets CLOSE, "
        "disconnect reason 'transport error'; the session id is then unknown (400)",
    ),
}

# Log messages with which python-socketio / python-engineio report that they received bytes
# but failed to decode or dispatch them. The reference master tags such log lines as decode
# errors; other error lines (e.g. 'Invalid session') are kept as context only.
PYTHON_DECODE_ERROR_LOGS = ("message async handler error", "post request handler error")

KNOWN_BEHAVIOURS: dict[str, tuple[str, ...]] = {
    "python": (
        "websocket: a frame of exactly the limit is rejected (aiohttp compares with >=), so the "
        "largest accepted frame is L-1 bytes",
        "polling: python-engineio reads the POST body with aiohttp's StreamReader.read(n), which "
        "returns what has arrived so far rather than n bytes. Bodies larger than what one read "
        "returns (observed from a few hundred KB upward on loopback) are cut, fail to decode "
        "(UnicodeDecodeError or JSONDecodeError), are logged and dropped, while the POST is "
        "answered 200 OK and the connection stays up: the incident's symptom, from another cause",
    ),
    "node": (
        "websocket and polling accept exactly maxHttpBufferSize bytes; one more is rejected",
        "polling: the limit applies to the whole POST body (packets and separators): packets that "
        "fit alone are refused together (413) when a client batched them into one POST",
        "an event packet with invalid JSON is dropped silently (socket.io-parser 'invalid payload'), "
        "and the session is closed with reason 'forced close'",
        "ws reads maxPayload as a 32-bit integer: a maxHttpBufferSize of 2**31 or more breaks the "
        "websocket limit (no limit, or a tiny one) while the handshake still advertises it",
    ),
}


def rule(server: str, transport: Transport) -> LimitRule:
    return RULES[(server, transport)]
