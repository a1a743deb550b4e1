"""A probe's findings in plain language, and ``--message`` files sized against its limits.

Pure. The verdict of each trial comes from ``imdiag.core.judge`` (through
``probe_result.trial``); this module says what the measured limits mean for a reader: what
happens beyond the limit, whether the advertised maxPayload is the real one, and whether each
of the user's messages fits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from imdiag.core.captures import Captured
from imdiag.core.errors import EncodeError
from imdiag.core.judge import HTTP_PAYLOAD_TOO_LARGE, WS_MESSAGE_TOO_BIG, close_text, refusal_of
from imdiag.core.model import Cause
from imdiag.core.path import (
    STICKY_FIX,
    UPGRADE_FIX,
    StickinessCheck,
    body_limit_setting,
    web_server_setting,
)
from imdiag.core.probe_result import (
    Fit,
    Handshake,
    MessageVerdict,
    Outcome,
    ProbeResult,
    SizedMessage,
    TransportLimit,
)
from imdiag.core.refusal import Refuser
from imdiag.core.sizing import ListProfile, PathLimit, Recommendation, list_profile, recommend
from imdiag.core.wire import Encoder, LimitUnit, Transport, encode_json, measure, printable


def _unit(transport: Transport) -> str:
    return "POST body" if transport is Transport.POLLING else "frame"


def limit_amount(n: int, limit: TransportLimit) -> str:
    """``10,000 B``, or ``10,000 characters`` where the limit counts characters."""
    return amount(n, limit.limit_unit or LimitUnit.BYTES)


# --- what the limit counts ------------------------------------------------------------------------

UNIT_CONSEQUENCE = "Chinese text fits up to 3x more bytes than ASCII, emoji 4x"


def unit_line(limits: Sequence[TransportLimit]) -> str:
    """What each transport's limit counts, and what that means, when one counts characters:
    ``this master counts characters on websocket: Chinese text fits up to 3x ...; polling counts
    bytes, so a client that falls back to polling loses what websocket carried``. Empty otherwise."""
    chars = [t.transport.value for t in limits if t.limit_unit is LimitUnit.CHARACTERS]
    if not chars:
        return ""
    line = f"this master counts characters on {' and '.join(chars)}, not bytes: {UNIT_CONSEQUENCE}"
    counted_bytes = [t.transport.value for t in limits if t.limit_unit is LimitUnit.BYTES]
    if counted_bytes:
        where = " and ".join(counted_bytes)
        line += (f"; {where} counts bytes, so a client that falls back to {where} loses what "
                 f"{' and '.join(chars)} carried")
    return line
def _units(transport: Transport) -> str:
    return "POST bodies" if transport is Transport.POLLING else "frames"


# --- one line that says why big messages vanish ------------------------------------------------


def explain_failure(limit: TransportLimit, *, ack: bool) -> str:
    """What happens beyond the limit, for a reader of this line alone."""
    name = limit.transport.value
    unit, units = _unit(limit.transport), _units(limit.transport)
    if limit.diagnosis is not None:
        return f"{name}: not measured ({limit.diagnosis.value}): {limit.diagnosis_evidence}"
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
        line = (f"{name}: every {unit} up to {limit.max_accepted:,} B (--max-bytes) was accepted; no size "
                f"limit was found up to there (larger {units} were not tried).")
        return line + _after_transport(limit, ack=ack)
    obs = failure.observation
    if obs.close_code is not None and obs.close_code == WS_MESSAGE_TOO_BIG:
        how = f"the server {close_text(obs.close_code, obs.close_reason, verb='closes')}"
        refusal = refusal_of(obs)
        if refusal is not None and refusal.by is Refuser.WEB_SERVER:
            how += f" ({refusal.party()}: {refusal.how})"
    elif obs.close_code is not None and obs.size_close is not None and obs.close_code == obs.size_close.code:
        how = (f"the server {close_text(obs.close_code, obs.close_reason, verb='closes')}, no 1009 "
               f"({obs.size_close.refuser} refuses so; {obs.size_close.evidence})")
    elif obs.http_status is not None:
        refusal = refusal_of(obs)
        body = f" {refusal.body!r}" if refusal is not None and refusal.body else " with an empty body"
        label = " (Payload Too Large)" if obs.http_status == HTTP_PAYLOAD_TOO_LARGE else ""
        how = f"the POST is answered HTTP {obs.http_status}{label}{body}"
        if refusal is not None:
            how += f" by {refusal.party()}"
    else:
        how = failure.evidence
    session = "the session stays up" if failure.session_survived else "the session is closed"
    largest = limit_amount(limit.max_accepted, limit) if limit.max_accepted is not None else "the smallest probe"
    line = (f"{name}: a {unit} over {largest} is refused: {how}; {session} and the message never reaches "
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
    """Each message as sent on its own event (else ``event``) in ``namespace``: the one namespace
    every message of a capture is sent in (``captures.capture_namespace``)."""
    out = []
    for item in captured:
        message = item.message
        type_ = message.get("type") if isinstance(message, dict) else None
        type_name = printable(type_) if isinstance(type_, str) else "(no type)"
        ev = item.event or event
        ns = namespace
        try:
            text = encode_json(message, encoder)
            node = text if encoder is Encoder.NODE else encode_json(message, Encoder.NODE)
            size = measure(text, encoder=encoder, event=ev, namespace=ns, node_json=node)
        except EncodeError as exc:
            out.append(SizedMessage(item.index, type_name, ev, ns, encoder, 0, 0, 0, str(exc)))
            continue
        out.append(SizedMessage(item.index, type_name, ev, ns, encoder, size.frame_bytes, size.json_bytes, size.js_length,
                                frame_chars=size.frame_chars))
    return tuple(out)


def largest_profile(captured: Sequence[Captured], sized: Sequence[SizedMessage], *, encoder: Encoder, event: str,
                    namespace: str) -> ListProfile | None:
    """The growing list of the largest message (fix B splits it into chunks)."""
    pairs = [(m, c) for m, c in zip(sized, captured) if not m.error]
    if not pairs:
        return None
    _, largest = max(pairs, key=lambda pair: pair[0].frame_bytes)
    return list_profile(largest, encoder=encoder, event=largest.event or event, namespace=namespace)


def fit(message: SizedMessage, limit: TransportLimit) -> Fit:
    """The message against the limit, in what the limit counts (characters, where it was found to)."""
    unit = LimitUnit.CHARACTERS if limit.limit_unit is LimitUnit.CHARACTERS and message.frame_chars is not None \
        else LimitUnit.BYTES
    n = message.frame_chars if unit is LimitUnit.CHARACTERS and message.frame_chars is not None else message.frame_bytes
    ok, bad = limit.max_accepted, limit.first_rejected
    if message.error:
        return Fit(limit.transport, ok, None, None, None, "cannot be encoded", unit)

    def headroom() -> tuple[int | None, float | None]:
        if ok is None or ok <= 0:
            return None, None
        return ok - n, (ok - n) / ok * 100

    if ok is not None and n <= ok:
        room, pct = headroom()
        sent = _largest_accepted_bytes(limit)
        if unit is LimitUnit.CHARACTERS and (sent is None or message.frame_bytes > sent):
            # Within the characters limit, but larger in bytes than any frame that passed: a byte
            # limit of the web server (uvicorn's ws_max_size) may refuse it first.
            return Fit(limit.transport, ok, None, room, pct,
                       f"within the limit in characters, but {message.frame_bytes:,} B is more than the largest "
                       f"frame that passed ({sent or 0:,} B): a byte limit of the web server may apply", unit)
        note = "" if limit.exact else "at least: the limit was not pinned"
        if limit.first_rejected is None:
            note = "no limit found up to --max-bytes"
        return Fit(limit.transport, ok, True, room, pct, note, unit)
    if bad is not None and n >= bad:
        room, pct = headroom()
        return Fit(limit.transport, ok, False, room, pct, unit=unit)
    return Fit(limit.transport, ok, None, None, None, "beyond what the probe measured", unit)


def _largest_accepted_bytes(limit: TransportLimit) -> int | None:
    """The largest frame, in bytes, that passed on this transport (search and unit trials)."""
    passed = [t.size for t in (*limit.trials, *limit.unit_trials) if t.outcome is Outcome.ACCEPTED]
    return max(passed, default=None)


def amount(n: int, unit: LimitUnit) -> str:
    """``1,234 B`` or ``1,234 characters``."""
    return f"{n:,} characters" if unit is LimitUnit.CHARACTERS else f"{n:,} B"


def fit_amount(fit: Fit) -> str:
    """``1,234 B left``, ``over by 56 characters``: the headroom in what the limit counts; empty
    when unknown."""
    if fit.headroom is None:
        return ""
    left = amount(fit.headroom if fit.fits else -fit.headroom, fit.unit)
    return f"{left} left" if fit.fits else f"over by {left}"


def judge_messages(messages: Sequence[SizedMessage], limits: Sequence[TransportLimit]) -> tuple[MessageVerdict, ...]:
    return tuple(MessageVerdict(m, tuple(fit(m, limit) for limit in limits)) for m in messages)


def explanations(limits: Sequence[TransportLimit], *, ack: bool) -> Mapping[Transport, str]:
    return {limit.transport: explain_failure(limit, ack=ack) for limit in limits}


# --- the summary: per transport, the limit, who sets it, what it means, the fix -----------------


def _versus(largest: int, advertised: int | None) -> str:
    if advertised is None:
        return "(the master advertises no maxPayload)"
    if largest == advertised:
        return f"at the master's maxPayload {advertised:,} B"
    side = "below" if largest < advertised else "above"
    return f"{side} the master's maxPayload {advertised:,} B"


def _fallback(limits: Sequence[TransportLimit]) -> str:
    polling = next((t for t in limits if t.transport is Transport.POLLING), None)
    if polling is None or polling.max_accepted is None or polling.stopped:
        return "Clients that start on polling (socket.io's default) stay on polling and its limit"
    return (f"Clients that start on polling (socket.io's default) stay on polling, limited to "
            f"{polling.max_accepted:,} B here")


def summary_line(limit: TransportLimit, limits: Sequence[TransportLimit], handshake: Handshake,
                 check: StickinessCheck | None) -> str:
    """One line for one transport: its limit and who refused beyond it, or why it was not measured."""
    name = limit.transport.value
    if limit.diagnosis is Cause.SESSION_UNKNOWN:
        if check is not None and check.broken:
            return f"{name}: not measured: {check.finding()}"
        return (f"{name}: not measured: a request of one session reached a master node that does not know it "
                f"({limit.diagnosis_evidence}); fix: {STICKY_FIX}")
    if limit.diagnosis is Cause.UPGRADE_BLOCKED:
        refusal = refusal_of(limit.trials[-1].observation) if limit.trials else None
        seen = ""
        if refusal is not None:
            seen = f" The handshake was answered {refusal.evidence()} by {refusal.who()}"
            seen += ": the Upgrade header did not reach it." if refusal.bad_upgrade else "."
        return (f"{name}: not measured: the websocket upgrade is refused between you and the master - a proxy "
                f"without Upgrade/Connection headers?{seen} {_fallback(limits)}; clients set to websocket only "
                f"cannot connect; fix: {UPGRADE_FIX}")
    if limit.stopped:
        return f"{name}: not measured: {limit.stopped}"
    failure = limit.failure
    if failure is None or limit.max_accepted is None:
        return f"{name}: no size limit found up to {limit.max_bytes:,} B (--max-bytes)"
    refusal = refusal_of(failure.observation)
    largest, advertised = limit.max_accepted, handshake.max_payload
    who = refusal.who() if refusal is not None else "an unknown party"
    line = f"{name}: {limit_amount(largest, limit)}, refused by {who} {_versus(largest, advertised)}"
    if refusal is not None and refusal.by in (Refuser.PROXY, Refuser.WEB_SERVER) and advertised is not None \
            and largest < advertised:
        setting = (body_limit_setting(refusal.server) if refusal.by is Refuser.PROXY
                   else web_server_setting(refusal.server))
        line += (f" - every client that stays on {name} is limited to {largest:,} B; raise "
                 f"{setting} to at least {advertised:,} B (+{advertised - largest:,} B) "
                 f"or keep messages at most {largest:,} B on the wire")
    if limit.limit_unit is LimitUnit.CHARACTERS:
        line += f"; the limit counts characters, not bytes: {UNIT_CONSEQUENCE}"
    elif limit.limit_unit is None and limit.unit_note:
        line += f"; what it counts: {limit.unit_note}"
    return line


def summaries(limits: Sequence[TransportLimit], handshake: Handshake,
              check: StickinessCheck | None) -> Mapping[Transport, str]:
    return {limit.transport: summary_line(limit, limits, handshake, check) for limit in limits}


def path_limits(limits: Sequence[TransportLimit], advertised: int | None) -> tuple[PathLimit, ...]:
    """The measured limits below the master's own maxPayload, and the setting that sets each."""
    out = []
    for limit in limits:
        failure = limit.failure
        if limit.stopped or failure is None or limit.max_accepted is None:
            continue
        if advertised is not None and limit.max_accepted >= advertised:
            continue
        refusal = refusal_of(failure.observation)
        if refusal is not None and refusal.by is Refuser.MASTER:
            continue  # the master's own rule (python-socketio refuses a frame of exactly maxPayload)
        if refusal is not None and refusal.by is Refuser.PROXY:
            setting = body_limit_setting(refusal.server)
        elif refusal is not None and refusal.by is Refuser.WEB_SERVER:
            setting = web_server_setting(refusal.server)
        else:
            setting = "the limit on the path"
        where = f"{limit.transport.value}, {refusal.party() if refusal else 'an unknown party'}"
        out.append(PathLimit(limit.max_accepted, setting, where))
    return tuple(out)


def probe_recommendations(messages: Sequence[SizedMessage], profile: ListProfile | None,
                          limits: Sequence[TransportLimit], handshake: Handshake) -> tuple[Recommendation, ...]:
    """--message: fixes A and B for the largest message, from the smallest limit measured on the path."""
    sized = [m for m in messages if not m.error]
    if not sized or handshake.max_payload is None:
        return ()
    largest = max(sized, key=lambda m: m.frame_bytes)
    what = f"message #{largest.index} ({largest.type})"
    return (recommend(handshake.max_payload, largest.frame_bytes, what, profile,
                      path=path_limits(limits, handshake.max_payload)),)


# --- who refused, in a few words (the terminal and the HTML report) ----------------------------


def refused_with(limit: TransportLimit) -> str:
    """A few characters: ``1009``, ``HTTP 413``, ``HTTP 400``; the diagnosis of a transport not measured."""
    if limit.diagnosis is not None:
        return limit.diagnosis.value
    failure = limit.failure
    if failure is None:
        return "-"
    obs = failure.observation
    if obs.close_code is not None and obs.http_status is None:
        return f"close {obs.close_code}" + (f" {obs.close_reason!r}" if obs.close_reason else "")
    if obs.http_status is not None:
        return f"HTTP {obs.http_status}"
    return failure.cause.value if failure.cause else "?"


def refused_by(limit: TransportLimit, result: ProbeResult) -> str:
    """``master``, ``proxy (nginx/1.22.1)``, ``web-server (uvicorn)``, ``unknown``."""
    shown = limit.refusal_trial
    refusal = refusal_of(shown.observation) if shown is not None else None
    check = result.stickiness
    if refusal is None and limit.diagnosis is Cause.SESSION_UNKNOWN and check is not None and check.refused_by:
        return check.refused_by.value  # the sticky-session check's refusals
    if refusal is None:
        return "-"
    named = refusal.by in (Refuser.PROXY, Refuser.WEB_SERVER) and refusal.server
    return f"{refusal.by.value} ({refusal.server})" if named else refusal.by.value
