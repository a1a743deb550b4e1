"""Render ``imdiag tap`` for people and for machines. Pure: strings, dicts and rich renderables.

Live, on a terminal: a table per (namespace, event, type) and one line per session event. Not on
a terminal: one JSON object per event (``event_dict``). At the end: the summary lines.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from imdiag.core.model import Cell, Outcome, Report, TapDetails, TapMessage, TapSession, TypeStats
from imdiag.core.tap import (
    LateAck,
    NamespaceJoined,
    Oversize,
    Reconnected,
    SessionClosed,
    SessionOpened,
    Settled,
    TapEvent,
    Unreachable,
    Upgraded,
    refusal_text,
)
from imdiag.core.units import format_bytes

SID_WIDTH = 8  # sids are shown shortened in live lines (the JSON has them whole)
_BY = {"master": "the master", "proxy": "a proxy", "worker": "the worker", "tap": "the tap",
       "unknown": "an unknown party"}
_SHOWN_OUTCOMES = (Outcome.PASSED, Outcome.ACKED, Outcome.REFUSED, Outcome.LOST, Outcome.HELD, Outcome.IN_FLIGHT)


def _sid(sid: str) -> str:
    return sid[:SID_WIDTH]


def _bytes(n: int | None) -> str:
    return "-" if n is None else format_bytes(n)


def oversize_text(event: Oversize) -> str:
    unit = "POST body" if event.transport.value == "polling" else "frame"
    fate = "held, answered as the master would" if event.held else "will be refused"
    return f"{fate}: {event.frame_bytes:,} B {unit} > maxPayload {event.max_payload:,} B"


# --- one line per event (terminal) ------------------------------------------------------------------


def event_line(event: TapEvent) -> Text | None:
    """The live line of a session event, or None for what the table shows (messages that passed)."""
    t = f"{event.t:9.3f}s "
    if isinstance(event, SessionOpened):
        s = event.session
        upgrades = ",".join(s.upgrades) or "none"
        return Text(f"{t}connect    sid {_sid(s.sid)} from {s.peer} over {s.transport.value} (maxPayload "
                    f"{_bytes(s.max_payload)}, pingInterval {s.ping_interval_ms:,} ms, upgrades {upgrades})")
    if isinstance(event, NamespaceJoined):
        verb = "joined" if event.accepted else "not in"
        return Text(f"{t}namespace  sid {_sid(event.sid)} {verb} {event.namespace} ({event.detail})")
    if isinstance(event, Upgraded):
        if event.detail:
            return Text(f"{t}upgrade    sid {_sid(event.sid)} stays on polling: the websocket upgrade failed "
                        f"({event.detail})", style="yellow")
        return Text(f"{t}upgrade    sid {_sid(event.sid)} to websocket")
    if isinstance(event, SessionClosed):
        s = event.session
        return Text(f"{t}disconnect sid {_sid(s.sid)} by {_BY.get(s.closed_by, s.closed_by)}: {s.close_reason}",
                    style="red" if s.refused else "")
    if isinstance(event, Reconnected):
        p = event.previous
        ambiguous = f" (one of {event.candidates} refused workers that look alike)" if event.candidates > 1 else ""
        return Text(f"{t}reconnect  sid {_sid(event.sid)} is the worker of sid {_sid(p.sid)}{ambiguous}, back "
                    f"{event.t - (p.closed_t or event.t):.2f} s after {p.close_reason}", style="yellow")
    if isinstance(event, Oversize):
        return Text(f"{t}OVERSIZE   sid {_sid(event.sid)} {oversize_text(event)}", style="bold red")
    if isinstance(event, Settled) and event.message.outcome in (Outcome.REFUSED, Outcome.LOST, Outcome.HELD):
        m = event.message
        return Text(f"{t}{m.outcome.value:<10} #{m.index} {event.cell.type} ({m.namespace}, {m.event!r}) "
                    f"sid {_sid(m.sid)}: {event.cell.evidence}", style="red")
    if isinstance(event, Unreachable):
        return Text(f"{t}unreachable a worker ({event.peer}) was reset: {event.error}", style="red")
    return None


# --- one JSON object per event (not a terminal) -------------------------------------------------------


def session_dict(s: TapSession) -> dict[str, Any]:
    return {
        "sid": s.sid, "peer": s.peer, "transport": s.transport.value, "opened_t": s.opened_t,
        "max_payload": s.max_payload, "ping_interval_ms": s.ping_interval_ms, "upgrades": list(s.upgrades),
        "upgraded_t": s.upgraded_t, "namespaces": list(s.namespaces), "messages": s.messages,
        "closed_t": s.closed_t, "closed_by": s.closed_by or None, "close_reason": s.close_reason or None,
        "close_code": s.close_code, "refused": s.refused, "reconnect_of": s.reconnect_of or None,
    }


def message_dict(m: TapMessage, cell: Cell | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "index": m.index, "t": m.t, "sid": m.sid, "namespace": m.namespace, "event": m.event, "ack_id": m.ack_id,
        "packet_bytes": m.packet_bytes, "attachment_bytes": list(m.attachment_bytes), "max_payload": m.max_payload,
        "over_limit": m.over_limit, "outcome": m.outcome.value, "proof": m.proof,
        "refused_by": m.refused_by or None, "refused_by_evidence": m.refused_by_evidence or None,
    }
    if cell is not None:
        out.update({
            "type": cell.type, "transport": cell.transport.value, "wire_bytes": cell.wire_bytes,
            "json_bytes": cell.json_bytes, "js_length": cell.js_length, "encoder": cell.encoder.value,
            "message_id": cell.message_id, "delivered": cell.delivered,
            "cause": cell.cause.value if cell.cause else None, "evidence": cell.evidence,
        })
    return out


def event_dict(event: TapEvent) -> dict[str, Any]:
    """One JSON line per event."""
    out: dict[str, Any]
    if isinstance(event, SessionOpened):
        out = {"event": "connect", **session_dict(event.session)}
    elif isinstance(event, NamespaceJoined):
        out = {"event": "namespace", "sid": event.sid, "namespace": event.namespace, "accepted": event.accepted,
               "detail": event.detail}
    elif isinstance(event, Upgraded):
        out = {"event": "upgrade", "sid": event.sid, "upgraded": not event.detail, "detail": event.detail or None}
    elif isinstance(event, SessionClosed):
        out = {"event": "disconnect", **session_dict(event.session)}
    elif isinstance(event, Reconnected):
        out = {"event": "reconnect", "sid": event.sid, "previous_sid": event.previous.sid,
               "previous_close_reason": event.previous.close_reason, "candidates": event.candidates}
    elif isinstance(event, Oversize):
        out = {"event": "oversize", "sid": event.sid, "transport": event.transport.value,
               "frame_bytes": event.frame_bytes, "max_payload": event.max_payload, "held": event.held,
               "text": oversize_text(event)}
    elif isinstance(event, Settled):
        out = {"event": "message", **message_dict(event.message, event.cell)}
    elif isinstance(event, LateAck):
        out = {"event": "ack", "index": event.message.index, "sid": event.message.sid}
    elif isinstance(event, Unreachable):
        out = {"event": "unreachable", "peer": event.peer, "error": event.error}
    else:
        out = {"event": type(event).__name__.lower()}
    return {"event": out.pop("event"), "t": event.t, **out}


# --- the live table -------------------------------------------------------------------------------


def type_table(rows: Sequence[TypeStats], *, title: str) -> Table:
    """One row per (namespace, event, type): sizes as sent (frame or POST body), and what happened."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))
    table.add_column("type", no_wrap=True)
    table.add_column("namespace event", no_wrap=True)
    for name in ("sent", "p50 B", "max B", "maxPayload", "over", "passed", "acked", "refused", "lost", "in flight"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("last refusal", no_wrap=True)
    for row in rows:
        refused = row.outcomes.get(Outcome.REFUSED.value, 0) + row.outcomes.get(Outcome.HELD.value, 0)
        table.add_row(
            row.type, f"{row.namespace} {row.event}", f"{row.count:,}", f"{row.bytes_p50:,}", f"{row.bytes_max:,}",
            f"{row.max_payload:,}" if row.max_payload is not None else "-",
            Text(f"{row.over_limit:,}", style="red" if row.over_limit else ""),
            f"{row.outcomes.get(Outcome.PASSED.value, 0):,}", f"{row.outcomes.get(Outcome.ACKED.value, 0):,}",
            Text(f"{refused:,}", style="red" if refused else ""), f"{row.outcomes.get(Outcome.LOST.value, 0):,}",
            f"{row.outcomes.get(Outcome.IN_FLIGHT.value, 0):,}", row.last_refusal,
        )
    return table


def live_title(listen: str, upstream: str, path: str, seconds: float, sessions_open: int) -> str:
    return (f"imdiag tap {listen} -> {upstream} (path {path}), {seconds:.0f} s, {sessions_open} session(s) open; "
            "Ctrl-C stops")


# --- the summary ---------------------------------------------------------------------------------------


def _outcome_words(row: TypeStats, refusals: Counter[str]) -> str:
    counts = {o: row.outcomes.get(o.value, 0) for o in _SHOWN_OUTCOMES}
    passed = counts[Outcome.PASSED] + counts[Outcome.ACKED]
    acked = f" ({counts[Outcome.ACKED]:,} acknowledged)" if counts[Outcome.ACKED] else ""
    if passed == row.count:
        return f"all passed{acked}"
    words = [f"{passed:,} passed{acked}"] if passed else []
    if counts[Outcome.REFUSED]:
        why = ", ".join(f"{text}" + (f" x{n:,}" if len(refusals) > 1 else "") for text, n in refusals.most_common())
        words.append(f"{counts[Outcome.REFUSED]:,} refused" + (f" ({why})" if why else ""))
    for outcome, word in ((Outcome.HELD, "held by the tap"), (Outcome.LOST, "lost with their session"),
                          (Outcome.IN_FLIGHT, "still in flight at the end")):
        if counts[outcome]:
            words.append(f"{counts[outcome]:,} {word}")
    return ", ".join(words)


def _sizes(row: TypeStats) -> str:
    if row.count == 1:
        sizes = f"{row.bytes_max:,} B"
    elif row.bytes_min == row.bytes_max:
        sizes = f"{row.bytes_max:,} B each"
    else:
        sizes = f"{row.bytes_min:,} to {row.bytes_max:,} B (median {row.bytes_p50:,} B)"
    if row.over_limit and row.max_payload is not None:
        sizes += f" vs maxPayload {row.max_payload:,} B"
    return sizes


def _refusals_by_type(details: TapDetails, cells: Iterable[Cell]) -> dict[tuple[str, str, str], Counter[str]]:
    by_index = {m.index: m for m in details.messages}
    out: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    for cell in cells:
        m = by_index.get(cell.index if cell.index is not None else -1)
        if m is not None and m.outcome is Outcome.REFUSED:
            out[(m.namespace, m.event, cell.type)][refusal_text(m.outcome, m.refused_by, cell.observed)] += 1
    return out


def _session_words(sessions: Sequence[TapSession]) -> str:
    if not sessions:
        return "no session crossed the tap"
    refused = [s for s in sessions if s.refused]
    closes = Counter(f"{_BY.get(s.closed_by, s.closed_by)}" + (f" with {s.close_code}" if s.close_code else "")
                     for s in refused)
    words = [f"{len(sessions):,} session(s)"]
    if refused:
        words.append(f"{len(refused):,} ended by a refusal (" + ", ".join(f"{n} by {c}" for c, n in closes.items()) + ")")
    reconnects = sum(1 for s in sessions if s.reconnect_of)
    if reconnects:
        words.append(f"{reconnects:,} reconnect(s) of a refused worker as a new sid")
    still_open = sum(1 for s in sessions if s.closed_t is None)
    if still_open:
        words.append(f"{still_open:,} still open at the end")
    upgraded = sum(1 for s in sessions if s.upgraded_t is not None)
    if upgraded:
        words.append(f"{upgraded:,} upgraded to websocket")
    return "; ".join(words)


def summary_lines(report: Report) -> list[str]:
    """What crossed the tap, per (namespace, event, type), and what happened to the sessions."""
    details = report.details
    if not isinstance(details, TapDetails):
        return []
    refusals = _refusals_by_type(details, report.cells)
    lines = []
    for row in details.by_type:
        name = row.type if (row.namespace, row.event) == ("/", "message") else \
            f"{row.type} ({row.namespace}, {row.event!r})"
        lines.append(f"{name}: {row.count:,} sent, {_outcome_words(row, refusals[(row.namespace, row.event, row.type)])}"
                     f", {_sizes(row)}")
    if not details.by_type:
        lines.append("no message crossed the tap")
    lines.append(_session_words(details.sessions))
    if details.messages_not_kept:
        lines.append(f"{details.messages_not_kept:,} message(s) are counted above but have no cell in the report "
                     "(the report keeps the first ones)")
    stop = {"duration": "--duration elapsed", "ctrl-c": "stopped (Ctrl-C)"}.get(details.stopped_by, details.stopped_by)
    lines.append(f"{stop} after {report.elapsed_s:.1f} s; passed = the upstream took it and refused nothing "
                 "(only the master's ack proves delivery)")
    return lines
