"""Render the worker's view beside the master's: one table per lane, and what each library did.

Pure. Only cells that carry a ``client`` view (``--client node|python``) are shown. Per lane
(master, limit, transport): each message with what the worker saw (``emitted, connected:
true``), what the master's ledger says, and what happened next (disconnect, reconnect, new or
recovered session, deliveries afterwards). Runs of uneventful messages (emitted while
connected, arrived, nothing followed) are folded into one row.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from imdiag.core.model import Cause, Cell, Report
from imdiag.core.units import format_bytes, format_size
from imdiag.core.worker import ClientView, Sent, disconnect_text, next_says, sent_says, worker_says

LaneKey = tuple[str, int, str]  # master, limit, transport


def lanes(cells: Sequence[Cell]) -> dict[LaneKey, list[Cell]]:
    """Cells with a worker's view, per lane, in the order the worker emitted them."""
    out: dict[LaneKey, list[Cell]] = defaultdict(list)
    for cell in cells:
        if cell.client is not None:
            out[(cell.master, cell.limit, cell.transport.value)].append(cell)
    for group in out.values():
        group.sort(key=lambda c: c.client.seq if c.client else 0)
    return dict(sorted(out.items()))


def _view(cell: Cell) -> ClientView:
    assert cell.client is not None
    return cell.client


def eventful(cell: Cell) -> bool:
    view = _view(cell)
    return (not cell.delivered or view.buffered or view.emit != "returned" or not view.connected
            or view.disconnect is not None and view.sent is not Sent.WRITTEN or view.bytes_agree is False)


def master_says(cell: Cell) -> str:
    """The master's view of one message: its ledger, or how it was refused."""
    obs = cell.observed
    if cell.delivered:
        return f"arrived (ledger #{obs.ledger_seq})" if obs.ledger_seq is not None else "arrived"
    size = obs.body_bytes
    if obs.emit_error or obs.client_kept:
        return "never arrived: the client never sent it"
    if cell.cause in (Cause.OVERSIZE_CLOSE, Cause.BATCHED_OVERSIZE):
        signal = f"close {obs.close_code}" if obs.close_code is not None and not obs.http_status else f"HTTP {obs.http_status}"
        relation = ">" if size > cell.limit else "=" if size == cell.limit else "<"
        text = f"never arrived: {signal} at {size:,} B {relation} {cell.limit:,} B"
    elif cell.cause is Cause.SERVER_DECODE_ERROR:
        error = obs.server_errors[0] if obs.server_errors else "a decode error"
        text = f"never arrived: the master could not decode it ({error[:120]})"
    elif cell.cause is Cause.CONNECTION_CLOSED:
        text = f"never arrived: its session ended ({size:,} B sent)"
    else:
        text = f"never arrived ({cell.cause.value if cell.cause else 'unknown'})"
    if obs.disconnect_reason:
        text += f"; the master's disconnect reason: {obs.disconnect_reason!r}"
    return text


def _afterwards(later: Sequence[Cell]) -> str:
    delivered = Counter(c.type for c in later if c.delivered)
    if not later:
        return ""
    if not delivered:
        return f"none of the {len(later)} later message(s) arrived"
    total = sum(delivered.values())
    kinds = ", ".join(f"{n} {t}" for t, n in delivered.most_common(3))
    return f"{total} of {len(later)} later message(s) arrived ({kinds})"


def next_text(cell: Cell, later: Sequence[Cell]) -> str:
    view = _view(cell)
    parts = []
    if view.disconnect is not None and view.sent is not Sent.WRITTEN or not cell.delivered:
        said = next_says(view)
        if said:
            parts.append(said)
        if not cell.delivered:
            parts.append(_afterwards(later))
    if view.buffered and cell.delivered:
        parts.append("sent once the client was back" + (f" (socket {view.sent_sid})" if view.sent_sid else ""))
    return "; ".join(p for p in parts if p)


def _message(cell: Cell) -> str:
    what = f"#{cell.index} {cell.type}" if cell.index is not None else f"{cell.type} {cell.label}"
    return f"{what}\n{cell.message_bytes:,} B"


def _fold(group: Sequence[Cell]) -> tuple[str, str, str, str]:
    if len(group) == 1:
        cell = group[0]
        return _message(cell), worker_says(_view(cell)), master_says(cell), ""
    kinds = Counter(c.type for c in group)
    first, last = group[0], group[-1]
    span = f"#{first.index}-#{last.index}: " if first.index is not None else ""
    listed = ", ".join(f"{t} x{n}" for t, n in kinds.most_common(3)) + (", ..." if len(kinds) > 3 else "")
    return f"{span}{len(group)} messages\n({listed})", "emitted, connected: true", "all arrived", ""


def side_by_side_table(key: LaneKey, cells: Sequence[Cell], csr: bool) -> Table:
    master, limit, transport = key
    view = _view(cells[0])
    title = (f"{view.library} -> {master} master{' (connectionStateRecovery)' if csr and master == 'node' else ''}, "
             f"limit {format_size(limit)}, {transport}: the worker's view beside the master's")
    table = Table(title=title, title_justify="left", show_lines=True)
    for name in ("message", "worker's view", "master's view", "what happened next"):
        table.add_column(name, overflow="fold")
    quiet: list[Cell] = []
    for i, cell in enumerate(cells):
        if not eventful(cell):
            quiet.append(cell)
            continue
        if quiet:
            table.add_row(*_fold(quiet))
            quiet = []
        worker = worker_says(_view(cell))
        sent = sent_says(_view(cell))
        style = "green" if cell.delivered else "red"
        table.add_row(_message(cell), f"{worker}\n{sent}", Text(master_says(cell), style=style),
                      next_text(cell, cells[i + 1:]))
    if quiet:
        table.add_row(*_fold(quiet))
    return table


def _after_refusal(cells: Sequence[Cell]) -> str:
    """What the library did after the sessions that ended under it."""
    outcomes: dict[str, list[float]] = defaultdict(list)
    for cell in cells:
        view = _view(cell)
        if view.disconnect is None or view.sent is Sent.WRITTEN and cell.delivered:
            continue
        said = disconnect_text(view.disconnect)
        if view.reconnected and view.reconnect_s is not None:
            kind = "same id, socket.recovered" if view.recovered else "same id" if not view.new_session else "new id"
            outcomes[f"{said} -> reconnected, {kind}"].append(view.reconnect_s)
        elif view.replaced or view.gave_up:
            outcomes[f"{said} -> never reconnected" + (" (the library gave up)" if view.gave_up else "")].append(-1)
        else:
            outcomes[f"{said} -> not reconnected when the run ended"].append(-1)
    if not outcomes:
        return "no session ended"
    lines = []
    for text, times in sorted(outcomes.items(), key=lambda kv: -len(kv[1])):
        seconds = sorted(t for t in times if t >= 0)
        if seconds:
            text += f" in {seconds[0]:g} s" if len(seconds) == 1 else f" in {seconds[0]:g}-{seconds[-1]:g} s"
        lines.append(text + (f" (x{len(times)})" if len(times) > 1 else ""))
    return "\n".join(lines)


def _while_down(cells: Sequence[Cell]) -> str:
    down = [c for c in cells if not _view(c).connected]
    if not down:
        return "-"
    raised = sum(1 for c in down if _view(c).emit == "raised")
    buffered = [c for c in down if _view(c).buffered]
    parts = []
    if buffered:
        delivered = sum(c.delivered for c in buffered)
        pending = sum(_view(c).sent is Sent.PENDING for c in buffered)
        parts.append(f"{len(buffered)} buffered: {delivered} delivered, {len(buffered) - delivered - pending} lost, "
                     f"{pending} pending")
    if raised:
        parts.append(f"{raised} emit() raised")
    other = len(down) - raised - len(buffered)
    if other:
        parts.append(f"{other} emitted (connected: false), {sum(c.delivered for c in down if not _view(c).buffered and _view(c).emit != 'raised')} delivered")
    return "; ".join(parts)


def summary_table(groups: dict[LaneKey, list[Cell]]) -> Table:
    """Per lane: what the library did with the refusals and with messages emitted while down."""
    table = Table(title="What the client library did", title_justify="left", show_lines=True)
    for name, justify in (("master", "left"), ("limit", "right"), ("transport", "left"), ("emitted", "right"),
                          ("arrived", "right"), ("after a session ended under it", "left"),
                          ("emitted while disconnected", "left"), ("bytes vs wire model", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for (master, limit, transport), cells in groups.items():
        differ = [c for c in cells if _view(c).bytes_agree is False]
        compared = [c for c in cells if _view(c).bytes_agree is not None]
        bytes_text = (f"{len(differ)} of {len(compared)} differ" if differ else f"all {len(compared)} agree")
        table.add_row(master, format_size(limit), transport, str(len(cells)), str(sum(c.delivered for c in cells)),
                      _after_refusal(cells), _while_down(cells), bytes_text)
    return table


def worker_findings(groups: dict[LaneKey, list[Cell]]) -> list[str]:
    """What a reader must not miss, once per kind (the lanes named), not once per lane."""
    out = []
    differ = [(k, c) for k, cells in groups.items() for c in cells if _view(c).bytes_agree is False]
    if differ:
        (master, _, transport), c = differ[0]
        v = _view(c)
        out.append(f"the client's own encoder made {len(differ)} packet(s) of another size than imdiag's wire model, "
                   f"e.g. {c.type} to the {master} master ({transport}): {format_bytes(v.frame_bytes or 0)} vs "
                   f"{format_bytes(v.model_frame_bytes)}")
    deflated = sorted({k[0] for k, cells in groups.items() if any("permessage-deflate" in _view(c).extensions for c in cells)})
    for master in deflated:
        out.append(f"{master} master: the websocket negotiated permessage-deflate: frames of 1,024 B and more cross the "
                   "wire compressed, and the server applies its limit to the inflated message")
    silent = [c for cells in groups.values() for c in cells
              if not c.delivered and _view(c).emit == "returned" and _view(c).connected]
    lost = [c for cells in groups.values() for c in cells if not c.delivered]
    if silent:
        out.append(f"{len(silent)} of the {len(lost)} message(s) that never arrived were emitted while connected and "
                   "emit() returned: the worker had nothing to log but success")
    gave_up = sorted({f"{k[0]} master, {k[2]}" for k, cells in groups.items() for c in cells if _view(c).gave_up})
    if gave_up:
        out.append("the client library gave up (no reconnection) after a refusal: " + "; ".join(gave_up))
    return out


def worker_renderables(report: Report) -> list[RenderableType]:
    groups = lanes(report.cells)
    if not groups:
        return []
    csr = bool(report.settings.get("csr"))
    out: list[RenderableType] = [side_by_side_table(key, cells, csr) for key, cells in groups.items()]
    out.append(summary_table(groups))
    notes = worker_findings(groups)
    if notes:
        out.append(Text("\n".join(f"• {n}" for n in notes)))
    return out
