"""A probe's findings in plain language, and ``--message`` files sized against its limits.

Pure. The verdict of each trial comes from ``imdiag.core.judge`` (through
``probe_result.trial``); this module says what the measured limits mean for a reader: what
happens beyond the limit, whether the advertised maxPayload is the real one, and whether each
of the user's messages fits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from imdiag.core.errors import EncodeError
from imdiag.core.judge import HTTP_PAYLOAD_TOO_LARGE, WS_MESSAGE_TOO_BIG, close_text
from imdiag.core.probe_result import Fit, MessageVerdict, SizedMessage, TransportLimit
from imdiag.core.wire import Encoder, Transport, encode_json, measure


def _unit(transport: Transport) -> str:
    return "POST body" if transport is Transport.POLLING else "frame"


# --- one line that says why big messages vanish ------------------------------------------------


def explain_failure(limit: TransportLimit, *, ack: bool) -> str:
    """What happens beyond the limit, for a reader of this line alone."""
    name = limit.transport.value
    unit = _unit(limit.transport) + "s"
    if limit.stopped:
        known = []
        if limit.max_accepted is not None:
            known.append(f"{limit.max_accepted:,} B was accepted")
        if limit.first_rejected is not None:
            known.append(f"{limit.first_rejected:,} B was refused")
        return f"{name}: the limit could not be measured ({limit.stopped})" + (
            f"; so far {' and '.join(known)}" if known else ""
        )
    failure = limit.failure
    if failure is None:
        if limit.max_accepted is None:
            return f"{name}: no probe frame was accepted or refused with a size signal"
        line = (f"{name}: every {unit[:-1]} up to {limit.max_accepted:,} B (--max-bytes) was accepted; no size "
                f"limit was found up to there (larger {unit} were not tried).")
        return line + _after_transport(limit, ack=ack)
    obs = failure.observation
    if obs.close_code is not None and obs.close_code == WS_MESSAGE_TOO_BIG:
        how = f"the server {close_text(obs.close_code, obs.close_reason, verb='closes')}"
    elif obs.http_status is not None:
        body = f" {obs.http_body!r}" if obs.http_body else " with an empty body"
        label = " (Payload Too Large)" if obs.http_status == HTTP_PAYLOAD_TOO_LARGE else ""
        how = f"the POST is answered HTTP {obs.http_status}{label}{body}"
    else:
        how = failure.evidence
    session = "the session stays up" if failure.session_survived else "the session is closed"
    largest = f"{limit.max_accepted:,} B" if limit.max_accepted is not None else "the smallest probe"
    line = (f"{name}: a {unit[:-1]} over {largest} is refused: {how}; {session} and the message never reaches "
            f"a handler, while the sender's emit() reports no error")
    if limit.readmitted is True:
        line += (f"; a new connection is let straight back in, so a client that reconnects keeps delivering "
                 f"small messages such as heartbeats while every message over {largest} vanishes")
    elif limit.readmitted is False and limit.readmission is not None:
        line += f"; a new connection right after was not let in ({limit.readmission.evidence})"
    line += "."
    return line + _after_transport(limit, ack=ack)


def _after_transport(limit: TransportLimit, *, ack: bool) -> str:
    """What the transport's acceptance does not show: loss after it (--ack), or that it cannot."""
    if ack and not limit.acked:
        check = limit.ack_check
        if check is None:
            return (" The master acknowledged no probe, and the smallest probe could not be checked on a new "
                    "connection: whether it acknowledges this event is unknown; accepted means the server "
                    "parsed the frame.")
        return (f" The master acknowledged no probe, not even the smallest ({check.size:,} B): it does not "
                "acknowledge this event, so --ack cannot prove delivery here; accepted means the server parsed "
                "the frame.")
    lost = limit.lost
    if lost:
        smallest = min(t.size for t in lost)
        line = (f" Also, {len(lost)} accepted probe(s), from {smallest:,} B up, were taken by the transport but "
                "never acknowledged, while a smaller one was: the master lost them after the transport")
        if limit.transport is Transport.POLLING:
            line += " (python-socketio masters lose large polling bodies to decode errors while answering 200)"
        return line + "."
    if limit.transport is Transport.POLLING and not ack:
        return (" Accepted means the server took the body (HTTP 200) and answered the next packet; a master can "
                "still lose a body after that (python-socketio does, from a few hundred KB, to decode errors while "
                "answering 200): only --ack, if the master acknowledges messages, shows that.")
    return ""


def advertised_note(limit: TransportLimit, advertised: int | None) -> str:
    """Whether the advertised maxPayload and the observed limit agree, and by how much."""
    if limit.max_accepted is None or limit.stopped:
        return ""
    if advertised is None:
        return "the server advertises no maxPayload"
    if limit.first_rejected is None and limit.max_accepted <= advertised:
        return (f"maxPayload {advertised:,} B: nothing over --max-bytes {limit.max_bytes:,} B was sent, "
                "so not checked")
    if limit.max_accepted == advertised:
        return f"matches maxPayload {advertised:,} B"
    diff = limit.max_accepted - advertised
    if diff == -1:
        return f"disagrees (-1 B): a {_unit(limit.transport)} of exactly maxPayload {advertised:,} B is refused"
    return f"disagrees ({diff:+,} B): maxPayload {advertised:,} B, largest accepted {limit.max_accepted:,} B"


# --- --message FILE: sized with the wire model, never sent --------------------------------------


class CapturedLike(Protocol):
    """A message read from a capture (``imdiag.core.captures.Captured``)."""

    @property
    def index(self) -> int: ...
    @property
    def message(self) -> Any: ...
    @property
    def event(self) -> str | None: ...
    @property
    def namespace(self) -> str | None: ...


def size_messages(
    captured: Iterable[CapturedLike], *, encoder: Encoder, event: str, namespace: str
) -> tuple[SizedMessage, ...]:
    out = []
    for item in captured:
        message = item.message
        type_ = message.get("type") if isinstance(message, dict) else None
        type_name = type_ if isinstance(type_, str) else "(no type)"
        ev = item.event or event
        ns = item.namespace or namespace
        try:
            text = encode_json(message, encoder)
            node = text if encoder is Encoder.NODE else encode_json(message, Encoder.NODE)
        except EncodeError as exc:
            out.append(SizedMessage(item.index, type_name, ev, ns, encoder, 0, 0, 0, str(exc)))
            continue
        size = measure(text, encoder=encoder, event=ev, namespace=ns, node_json=node)
        out.append(SizedMessage(item.index, type_name, ev, ns, encoder, size.frame_bytes, size.json_bytes, size.js_length))
    return tuple(out)


def fit(message: SizedMessage, limit: TransportLimit) -> Fit:
    n = message.frame_bytes
    ok, bad = limit.max_accepted, limit.first_rejected
    if message.error:
        return Fit(limit.transport, ok, None, None, None, "cannot be encoded")

    def headroom() -> tuple[int | None, float | None]:
        if ok is None or ok <= 0:
            return None, None
        return ok - n, (ok - n) / ok * 100

    if ok is not None and n <= ok:
        room, pct = headroom()
        note = "" if limit.exact else "at least: the limit was not pinned"
        if limit.first_rejected is None:
            note = "no limit found up to --max-bytes"
        return Fit(limit.transport, ok, True, room, pct, note)
    if bad is not None and n >= bad:
        room, pct = headroom()
        return Fit(limit.transport, ok, False, room, pct)
    return Fit(limit.transport, ok, None, None, None, "beyond what the probe measured")


def judge_messages(messages: Sequence[SizedMessage], limits: Sequence[TransportLimit]) -> tuple[MessageVerdict, ...]:
    return tuple(MessageVerdict(m, tuple(fit(m, limit) for limit in limits)) for m in messages)


def explanations(limits: Sequence[TransportLimit], *, ack: bool) -> Mapping[Transport, str]:
    return {limit.transport: explain_failure(limit, ack=ack) for limit in limits}
