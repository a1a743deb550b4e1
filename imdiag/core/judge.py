"""The one judge: an observation becomes a verdict and a cause, for the sweep, replay and probe.

Pure. Delivered needs proof: the master's ledger holds the message, or the master acknowledged
it. A refusal is a size refusal only on a size signal (close 1009, HTTP 413, a 400 whose body
was over the advertised maxPayload and that names no other reason, or a close that the server's
established ``SizeClose`` makes one: python-engineio under ASGI closes with 1000, for a frame over
maxPayload in characters). Anything else keeps its own
cause (a session another node does not know, a blocked upgrade, a proxy's error page...), and
what nothing decided stays ``unknown``. Who refused is ``imdiag.core.refusal``'s to say.
"""

from __future__ import annotations

from imdiag.core.model import Ack, Barrier, Cause, Cell, Observation, Verdict
from imdiag.core.quirks import NODE_SIZE_DISCONNECT_CAUSES
from imdiag.core.refusal import WS_MESSAGE_TOO_BIG, Refusal, Refuser, close_refusal, http_refusal
from imdiag.core.units import format_bytes
from imdiag.core.wire import Encoder, LimitUnit, Transport
from imdiag.core.worker import ClientView

CLOSE_CODE_NAMES = {
    1000: "Normal Closure",
    1001: "Going Away",
    1002: "Protocol Error",
    1003: "Unsupported Data",
    1005: "No Status Received",
    1006: "Abnormal Closure",
    1007: "Invalid Payload",
    1008: "Policy Violation",
    1009: "Message Too Big",
    1011: "Internal Error",
}

HTTP_OK = 200
HTTP_BAD_REQUEST = 400  # python-engineio's answer to a POST over its limit
HTTP_PAYLOAD_TOO_LARGE = 413  # engine.io's
WEBSOCKET_HANDSHAKE = "websocket handshake"  # HttpAnswer.request of a refused websocket upgrade

SESSION_UNKNOWN_TEXT = ("{request} reached a master node that does not know the session: the requests of one "
                        "polling session are spread over several nodes (no sticky sessions?)")
UPGRADE_BLOCKED_TEXT = ("the websocket upgrade is refused between you and the master (a proxy without "
                        "Upgrade/Connection headers?)")


def close_text(code: int, reason: str, verb: str = "closed") -> str:
    """``closed the websocket with 1009 (Message Too Big), no reason text``."""
    name = CLOSE_CODE_NAMES.get(code, "")
    label = f"{code} ({name})" if name else str(code)
    return f"{verb} the websocket with {label}" + (f", reason {reason!r}" if reason else ", no reason text")


def _sent(obs: Observation) -> str:
    sent = f"{format_bytes(obs.body_bytes)} " + ("POST body" if obs.http_status is not None else "frame")
    if obs.written_bytes is not None and obs.written_bytes < obs.body_bytes:
        sent += f" ({format_bytes(obs.written_bytes)} of it written when the server answered)"
    return sent


def _delivered(obs: Observation) -> Verdict | None:
    if obs.ledger_seq is not None:
        recorded = f"the master recorded it (ledger #{obs.ledger_seq}"
        recorded += f", {format_bytes(obs.ledger_bytes)} re-encoded)" if obs.ledger_bytes is not None else ")"
        return Verdict(True, None, recorded)
    if obs.ack is Ack.RECEIVED:
        return Verdict(True, None, "the master acknowledged it (Socket.IO ACK): its handler ran")
    return None


def _close_refusal(obs: Observation) -> Refusal:
    assert obs.close_code is not None
    return close_refusal(obs.close_code, obs.close_reason, obs.body_bytes, obs.advertised_max_payload,
                         frame_chars=obs.body_chars, size_close=obs.size_close)


def _size_closed(obs: Observation) -> bool:
    """A close that the server's established ``SizeClose`` makes a size refusal."""
    return obs.size_close is not None and obs.size_close.refuses(
        obs.close_code, obs.body_bytes, obs.body_chars, obs.advertised_max_payload)


def refusal_of(obs: Observation) -> Refusal | None:
    """The refusal an observation shows, if any: the websocket close, the POST's answer, or the
    answer to another request of the session (the handshake, the next GET, the barrier's POST)."""
    if obs.close_code == WS_MESSAGE_TOO_BIG or _size_closed(obs):
        return _close_refusal(obs)
    if obs.http_status is not None and obs.http_status != HTTP_OK:
        return http_refusal(obs.http_status, obs.http_body, obs.http_server)
    if obs.ended_by is not None:
        return http_refusal(obs.ended_by.status, obs.ended_by.body, obs.ended_by.server)
    if obs.close_code is not None:
        return _close_refusal(obs)
    return None


def _refusal_text(sent: str, refusal: Refusal) -> str:
    return f"{sent}: {refusal.evidence()}; refused by {refusal.who()}"


def _refused(obs: Observation, sent: str) -> Verdict | None:
    """A refusal the transport reported: the websocket close code or the POST's status."""
    if obs.close_code == WS_MESSAGE_TOO_BIG:
        refusal = _close_refusal(obs)
        text = f"{sent}: the server {close_text(obs.close_code, obs.close_reason)}"
        if refusal.by is Refuser.UNKNOWN:
            text += f" ({refusal.how})"
        elif refusal.by is Refuser.WEB_SERVER:
            text += f"; refused by {refusal.party()}: {refusal.how}"
        return Verdict(False, Cause.OVERSIZE_CLOSE, text, refusal.by)
    if _size_closed(obs):
        assert obs.size_close is not None and obs.close_code is not None and obs.advertised_max_payload is not None
        size_close, max_payload = obs.size_close, obs.advertised_max_payload
        size = size_close.size(obs.body_bytes, obs.body_chars)
        text = (f"{sent}: the server {close_text(obs.close_code, obs.close_reason)}; no 1009: {size_close.refuser} "
                f"refuses so, {size:,} {size_close.unit.value} > maxPayload {max_payload:,}")
        if size_close.evidence:
            text += f" ({size_close.evidence})"
        return Verdict(False, Cause.OVERSIZE_CLOSE, text, _close_refusal(obs).by)
    if obs.http_status is None or obs.http_status == HTTP_OK:
        return None
    refusal = http_refusal(obs.http_status, obs.http_body, obs.http_server)
    text = _refusal_text(sent, refusal)
    if refusal.session_unknown:
        return Verdict(False, Cause.SESSION_UNKNOWN, text + "; " + SESSION_UNKNOWN_TEXT.format(request="the POST"),
                       refusal.by)
    advertised = obs.advertised_max_payload
    over_advertised = advertised is not None and obs.body_bytes > advertised
    if obs.http_status == HTTP_PAYLOAD_TOO_LARGE:
        if not over_advertised:  # a limit below maxPayload (a proxy's): the body as a whole was too large
            return Verdict(False, Cause.OVERSIZE_CLOSE, text, refusal.by)
    elif not (obs.http_status == HTTP_BAD_REQUEST and refusal.generic and over_advertised):
        return Verdict(False, Cause.PROXY_ERROR if refusal.by is Refuser.PROXY else Cause.HTTP_ERROR, text, refusal.by)
    assert advertised is not None
    text += f"; the body is over the advertised maxPayload {format_bytes(advertised)}"
    if obs.disconnect_reason:
        text += f"; the master disconnected the client ({obs.disconnect_reason})"
    return _body_refused(obs, text, advertised, refusal.by)


def _body_refused(obs: Observation, text: str, advertised: int, by: Refuser) -> Verdict:
    """A POST body over maxPayload was refused: ``batched-oversize`` when this message alone fits
    (the client batched it with others), else ``oversize-close``."""
    alone = obs.message_bytes if obs.message_bytes is not None else obs.body_bytes
    if obs.packets_in_body > 1 and alone <= advertised:
        text += (f"; this message alone is {format_bytes(alone)}, it was batched with "
                 f"{obs.packets_in_body - 1} other packet(s)")
        return Verdict(False, Cause.BATCHED_OVERSIZE, text, by)
    return Verdict(False, Cause.OVERSIZE_CLOSE, text, by)


def _ended(obs: Observation, sent: str) -> Verdict | None:
    """Another request of the session was refused (the next GET, the barrier's POST, the
    handshake): what that refusal says about the path, when it says something."""
    answer = obs.ended_by
    if answer is None:
        return None
    refusal = http_refusal(answer.status, answer.body, answer.server)
    text = f"{sent}: the {answer.request} was refused: {refusal.evidence()}; refused by {refusal.who()}"
    if answer.request == WEBSOCKET_HANDSHAKE and obs.upgrade_offered:
        why = ("the master answered it as a plain HTTP request: the Upgrade header did not reach it"
               if refusal.bad_upgrade else "polling works on the same URL")
        return Verdict(False, Cause.UPGRADE_BLOCKED, f"{text}; {why}; {UPGRADE_BLOCKED_TEXT}", refusal.by)
    if refusal.session_unknown and _ended_for_its_size(obs):
        return _ended_for_size(obs, text)
    if refusal.session_unknown:
        return Verdict(False, Cause.SESSION_UNKNOWN,
                       text + "; " + SESSION_UNKNOWN_TEXT.format(request=f"the {answer.request}"), refusal.by)
    if refusal.by is Refuser.PROXY:
        return Verdict(False, Cause.PROXY_ERROR, text, refusal.by)
    return None


def _ended_for_its_size(obs: Observation) -> bool:
    """The master's ledger says it ended this session for its size limit ("payload too large"),
    and the body that carried this message was over the advertised maxPayload: that body was
    the one refused. (Any other disconnect proves nothing: the client's own close reaches the
    master too; a message lost with the session in another body was not refused for its size.)"""
    return (obs.disconnect_cause in NODE_SIZE_DISCONNECT_CAUSES and obs.advertised_max_payload is not None
            and obs.body_bytes > obs.advertised_max_payload)


def _ended_for_size(obs: Observation, text: str) -> Verdict:
    """A body the client never saw refused (a reset instead of the 413, or a library that says
    only "transport close"), which the master's ledger says it refused for its size: its own
    refusal, not a path that spreads a session over several nodes nor a mere close."""
    assert obs.advertised_max_payload is not None
    text += f"; the master had ended this session itself: {obs.disconnect_reason} ({obs.disconnect_cause})"
    if obs.send_error:
        text += f", while the body was still being written ({obs.send_error})"
    text += f": the body is over the advertised maxPayload {format_bytes(obs.advertised_max_payload)}"
    return _body_refused(obs, text, obs.advertised_max_payload, Refuser.MASTER)


def _lost(obs: Observation, sent: str) -> Verdict | None:
    """The transport took it, then something else went wrong: decode errors, closes, writes."""
    if obs.server_errors:
        shown = obs.server_errors[0]
        more = f" (+{len(obs.server_errors) - 1} more)" if len(obs.server_errors) > 1 else ""
        status = f"; the POST was answered HTTP {obs.http_status}" if obs.http_status is not None else ""
        return Verdict(False, Cause.SERVER_DECODE_ERROR, f"{sent}{status}; the master logged: {shown}{more}")
    if obs.close_code is not None or obs.close_error or obs.closed:
        ended = _ended(obs, sent)
        if ended is not None:
            return ended
        if _ended_for_its_size(obs):
            # The client saw the session close, not why (a library reports "transport close" for
            # the 413 it never read); the master's ledger says why: its limit.
            how = obs.close_error or (close_text(obs.close_code, obs.close_reason) if obs.close_code else "closed")
            return _ended_for_size(obs, f"{sent}: {how}")
        parts = [f"the server {close_text(obs.close_code, obs.close_reason)}"] if obs.close_code is not None else []
        if obs.close_error:
            parts.append(obs.close_error)
        if obs.send_error:
            parts.append(f"while writing: {obs.send_error}")
        if obs.disconnect_reason:
            parts.append(f"master's reason: {obs.disconnect_reason}")
        return Verdict(False, Cause.CONNECTION_CLOSED, f"{sent}: " + ("; ".join(parts) or "the connection ended"))
    if obs.send_error:
        return Verdict(False, Cause.EMIT_ERROR, f"{sent}: write failed: {obs.send_error}")
    return None


def _unproven(obs: Observation, sent: str) -> Verdict:
    """Nothing refused it and nothing proves it arrived."""
    if obs.barrier is Barrier.TIMEOUT:
        return Verdict(False, Cause.TIMEOUT, f"{sent}: the master answered nothing in time")
    if obs.barrier is Barrier.RELAYED:
        acked = ", but the master did not acknowledge it" if obs.ack is Ack.MISSING else ""
        return Verdict(False, Cause.UNKNOWN,
                       f"{sent}: passed the upstream ({obs.barrier_answer}){acked}; a tap sees no ledger: "
                       "only the master's ack proves delivery")
    if obs.barrier is Barrier.PARSED and obs.ack is Ack.MISSING:
        return Verdict(False, Cause.UNKNOWN,
                       f"{sent}: the transport took it and the server answered the next packet "
                       f"({obs.barrier_answer or 'parsed'}), but the master did not acknowledge it")
    if obs.barrier is Barrier.PARSED:
        return Verdict(
            False, Cause.UNKNOWN,
            f"{sent}: the server parsed past it (it answered a later packet) and closed nothing, but a live "
            "master has no ledger: delivery cannot be proven (use --ack if the master acknowledges)",
        )
    if obs.barrier is Barrier.PASSED:
        return Verdict(
            False, Cause.UNKNOWN,
            f"{sent}: the master recorded the next message on this connection but not this one, and logged no error",
        )
    return Verdict(False, Cause.UNKNOWN, f"{sent}: no observation decided it")


def _kept(obs: Observation) -> Verdict:
    """A client library never wrote it: its session closed first, or the run ended first."""
    if obs.client_kept == "pending":
        return Verdict(False, Cause.UNKNOWN, "not sent: still in the client's send buffer when the run ended "
                       "(the client was not connected)")
    ended = f": {obs.close_error}" if obs.close_error else ""
    if obs.close_code is not None:
        ended = f": the server {close_text(obs.close_code, obs.close_reason)}" + (f"; {obs.close_error}" if obs.close_error else "")
    return Verdict(False, Cause.CONNECTION_CLOSED,
                   f"not sent: the client's session closed before it was written, and the client discarded it{ended}")


def judge(obs: Observation) -> Verdict:
    """The one place where observations become verdicts."""
    delivered = _delivered(obs)
    if delivered is not None:
        return delivered
    if obs.connect_error:
        not_sent = "not sent, no connection"
        ended = _ended(obs, not_sent)
        if ended is not None:
            return ended
        refusal = refusal_of(obs)
        return Verdict(False, Cause.CONNECTION_CLOSED, f"{not_sent}: {obs.connect_error}",
                       refusal.by if refusal is not None else None)
    if obs.encode_error:
        return Verdict(False, Cause.EMIT_ERROR, f"not sent: {obs.encode_error}")
    if obs.emit_error:
        return Verdict(False, Cause.EMIT_ERROR, f"not sent: the client's emit() raised {obs.emit_error}")
    if obs.client_kept:
        return _kept(obs)
    sent = _sent(obs)
    if obs.held:
        return Verdict(False, Cause.OVERSIZE_CLOSE, f"{sent}: never sent to the master: {obs.held}")
    return _refused(obs, sent) or _lost(obs, sent) or _unproven(obs, sent)


def judged_cell(
    obs: Observation, *, type: str, transport: Transport, limit: int, encoder: Encoder, master: str, label: str,
    json_bytes: int, js_length: int, predicted_delivered: bool | None, index: int | None = None,
    message_id: str | None = None, client: ClientView | None = None, limit_unit: LimitUnit | None = None,
) -> Cell:
    """The cell of one message: its sizes, what was observed, and the verdict judged from it."""
    verdict = judge(obs)
    return Cell(
        type=type, transport=transport, limit=limit, encoder=encoder, master=master, label=label,
        wire_bytes=obs.body_bytes,
        message_bytes=obs.message_bytes if obs.message_bytes is not None else obs.body_bytes,
        json_bytes=json_bytes, js_length=js_length, predicted_delivered=predicted_delivered,
        delivered=verdict.delivered, cause=verdict.cause, evidence=verdict.evidence, observed=obs,
        index=index, message_id=message_id, refused_by=verdict.refused_by, client=client, limit_unit=limit_unit,
    )
