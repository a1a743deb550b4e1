"""Render a probe for people: the handshake, the limit per transport, what happens beyond it.

Pure: functions return rich renderables; the CLI prints them.
"""

from __future__ import annotations

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from imdiag.core.probe_explain import fit_amount, refused_by, refused_with
from imdiag.core.probe_result import Fit, MessageVerdict, ProbeResult
from imdiag.core.units import format_bytes
from imdiag.core.urls import redact_url
from imdiag.core.wire import LimitUnit, Transport

OK = "✓"
DROP = "✗"
UNKNOWN = "?"


def _bytes(n: int | None) -> str:
    return "-" if n is None else format_bytes(n)


def handshake_table(result: ProbeResult) -> Table:
    hs = result.handshake
    table = Table(title=f"Engine.IO handshake ({hs.transport.value})", title_justify="left", show_header=False)
    table.add_column("field")
    table.add_column("value")
    table.add_row("sid", hs.sid)
    upgrades = ", ".join(hs.upgrades) or "none"
    if hs.transport is Transport.WEBSOCKET and not hs.upgrades:
        upgrades = "not listed (an OPEN over websocket never lists them)"
    table.add_row("upgrades", upgrades)
    table.add_row("pingInterval", f"{hs.ping_interval_ms:,} ms")
    table.add_row("pingTimeout", f"{hs.ping_timeout_ms:,} ms")
    table.add_row("maxPayload", _bytes(hs.max_payload) if hs.max_payload is not None else "not advertised")
    if hs.namespace_sid is not None:
        table.add_row("namespace", f"{hs.namespace}: accepted (sid {hs.namespace_sid})")
    else:
        table.add_row("namespace", f"{hs.namespace}: not joined (no transport the path lets through could join it)")
    return table


def limits_table(result: ProbeResult) -> Table:
    table = Table(title="The exact limit per transport (one fresh connection per trial)", title_justify="left")
    table.add_column("transport")
    table.add_column("largest accepted", justify="right")
    table.add_column("smallest refused", justify="right")
    table.add_column("refused with")
    table.add_column("refused by")
    table.add_column("counts")
    table.add_column("trials", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("vs advertised maxPayload")
    for limit in result.transports:
        note = result.advertised_notes.get(limit.transport, "")
        if limit.stopped:
            note = "not measured: see the summary"
        table.add_row(
            limit.transport.value,
            _bytes(limit.max_accepted),
            _bytes(limit.first_rejected) if limit.first_rejected is not None
            else ("-" if limit.stopped else f"none ≤ {format_bytes(limit.max_bytes)}"),
            refused_with(limit),
            refused_by(limit, result),
            limit.limit_unit.value if limit.limit_unit else "-",
            str(len(limit.trials)),
            f"{limit.seconds:.2f}",
            Text(note, style="yellow" if note.startswith("disagrees") else ""),
        )
    return table


def fit_text(fit: Fit) -> Text:
    if fit.fits is None:
        return Text(f"{UNKNOWN} {fit.note}", style="yellow")
    if fit.headroom is None or fit.headroom_pct is None:
        return Text(OK if fit.fits else DROP, style="green" if fit.fits else "red")
    if fit.fits:
        text = f"{OK} {fit_amount(fit)} ({fit.headroom_pct:.1f}%)"
        return Text(text + (f", {fit.note}" if fit.note else ""), style="green")
    return Text(f"{DROP} {fit_amount(fit)} ({-fit.headroom_pct:.1f}%)", style="red")


def messages_table(result: ProbeResult) -> Table | None:
    if not result.messages:
        return None
    encoder = result.messages[0].message.encoder.value
    table = Table(
        title=f"Your messages against the measured limits ({encoder} encoder, sized with the wire model, not sent)",
        title_justify="left",
    )
    table.add_column("#", justify="right")
    table.add_column("type")
    table.add_column("frame bytes", justify="right")
    table.add_column("JS .length", justify="right")
    for limit in result.transports:
        shown = _bytes(limit.max_accepted)
        if limit.limit_unit is LimitUnit.CHARACTERS and limit.max_accepted is not None:
            shown = f"{limit.max_accepted:,} characters"
        table.add_column(f"{limit.transport.value} (≤ {shown})")
    for verdict in result.messages:
        table.add_row(*_message_row(verdict))
    return table


def _message_row(verdict: MessageVerdict) -> list[str | Text]:
    m = verdict.message
    if m.error:
        return [str(m.index), m.type, "-", "-", *[Text(f"{DROP} {m.error}", style="red") for _ in verdict.fits]]
    return [str(m.index), m.type, f"{m.frame_bytes:,}", f"{m.js_length:,}", *[fit_text(f) for f in verdict.fits]]


def summary(result: ProbeResult) -> list[RenderableType]:
    """One line per transport (its limit, who refused beyond it, the fix), and sticky sessions."""
    out: list[RenderableType] = [Text("Summary", style="bold")]
    for limit in result.transports:
        line = result.summary.get(limit.transport, "")
        out.append(Text("• " + line, style="yellow" if limit.stopped or " - " in line else ""))
    if result.unit_finding:
        out.append(Text("• " + result.unit_finding, style="yellow"))
    check = result.stickiness
    if check is not None and not check.broken:
        out.append(Text("• " + check.finding()))
    return out


def findings(result: ProbeResult) -> list[RenderableType]:
    measured = [t for t in result.transports if not t.diagnosed]
    if not measured:
        return []
    out: list[RenderableType] = [Text("Beyond the limit", style="bold")]
    for limit in measured:
        out.append(Text("• " + result.explanations.get(limit.transport, "")))
    return out


def recommendations(result: ProbeResult) -> list[RenderableType]:
    lines = [line for rec in result.recommendations for line in rec.lines()]
    if not lines:
        return []
    return [Text("Recommendations (your largest message against the path's smallest limit)", style="bold"),
            *(Text(f"• {line}") for line in lines)]


def probe_renderables(result: ProbeResult) -> list[RenderableType]:
    s = result.settings
    head = (f"probe {redact_url(s.url)} (path {s.path}, event {s.event!r}, probe type {s.probe_type!r}"
            f"{', acknowledged by the master' if s.ack else ''}) in {result.elapsed_s:.2f} s"
            f"{': interrupted, partial results' if result.interrupted else ''}")
    out: list[RenderableType] = [Text(head), handshake_table(result), limits_table(result)]
    table = messages_table(result)
    if table is not None:
        out.append(table)
    out += summary(result)
    out += findings(result)
    out += recommendations(result)
    return out
