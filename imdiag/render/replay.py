"""Render ``imdiag size`` and ``imdiag replay`` for people. Pure: returns rich renderables."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from imdiag.core.findings import (
    DROP,
    OK,
    PARSED,
    findings,
    master_rank,
    parsed_only,
    short_cause,
    why_lines,
)
from imdiag.core.model import Cell, ReplayDetails, Report
from imdiag.core.sizing import MessageSize, Recommendation, headroom, js_length_explanation
from imdiag.core.units import format_size
from imdiag.core.wire import Encoder

MAX_ROWS = 200  # per-message tables stop here; the JSON report has every cell


# --- imdiag size -----------------------------------------------------------------------------


def _headroom_text(frame_bytes: int, limit: int) -> Text:
    room = headroom(frame_bytes, limit)
    return Text(f"{room.bytes:+,} B ({room.percent:+.1f}%)", style="green" if room.fits else "red")


def size_renderables(sizes: Sequence[MessageSize], limit: int, path: str,
                     recommendation: Recommendation | None = None) -> list[RenderableType]:
    table = Table(title=f"{path}: each message's size against limit {format_size(limit)} ({limit:,} B)",
                  title_justify="left")
    for name, justify in (("#", "right"), ("type", "left"), ("JS .length", "right"), ("node JSON B", "right"),
                          ("node frame B", "right"), ("node headroom", "right"), ("python JSON B", "right"),
                          ("python frame B", "right"), ("python headroom", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    notes: list[str] = []
    for size in sizes[:MAX_ROWS]:
        cells: list[str | Text] = [str(size.index), size.type, f"{size.js_length:,}"]
        for encoded in (size.of(Encoder.NODE), size.of(Encoder.PYTHON)):
            if encoded.error:
                cells += [Text("cannot encode", style="red"), "", ""]
            else:
                cells += [f"{encoded.json_bytes:,}", f"{encoded.frame_bytes:,}", _headroom_text(encoded.frame_bytes, limit)]
        table.add_row(*cells)
    for size in sizes:
        for encoded in size.sizes:
            if encoded.error:
                notes.append(f"#{size.index} {size.type}, {encoded.encoder.value} encoder: {encoded.error}")
                continue
            why = js_length_explanation(size.js_length, encoded.frame_bytes, encoded.json_bytes, limit, encoded.encoder)
            if why:
                notes.append(f"#{size.index} {size.type}, {encoded.encoder.value} encoder: {why}")
    out: list[RenderableType] = [table]
    if len(sizes) > MAX_ROWS:
        out.append(Text(f"... {len(sizes) - MAX_ROWS} more messages not shown", style="dim"))
    over = {e.value: sum(1 for s in sizes if s.of(e).frame_bytes > limit) for e in (Encoder.NODE, Encoder.PYTHON)}
    lines = [(f"{len(sizes)} message(s); over the limit: {over['node']} with the node encoder, "
             f"{over['python']} with the python encoder. A frame is one websocket message payload, or the "
             f"polling body when the message is sent alone (the same bytes).")]
    if notes:
        lines += notes[:20] + ([f"... {len(notes) - 20} more"] if len(notes) > 20 else [])
    if recommendation is not None:
        lines += recommendation.lines()
    out.append(Group(Text("Notes", style="bold"), *(Text(f"• {n}") for n in lines)))
    return out


# --- imdiag replay ---------------------------------------------------------------------------


def _lanes(cells: Sequence[Cell]) -> list[tuple[str, str, int]]:
    keys = {(c.master, c.transport.value, c.limit) for c in cells}
    transport_order = {"websocket": 0, "polling": 1}
    return sorted(keys, key=lambda k: (master_rank(k[0]), k[0], k[2], transport_order.get(k[1], 2)))


def _by_type(cells: Iterable[Cell]) -> list[tuple[str, list[Cell]]]:
    """Cells grouped by message type, the type with the smallest largest message first."""
    groups: dict[str, list[Cell]] = defaultdict(list)
    for cell in cells:
        groups[cell.type].append(cell)
    return sorted(groups.items(), key=lambda kv: max(c.message_bytes for c in kv[1]))


def _lane_title(lane: tuple[str, str, int], lanes: Sequence[tuple[str, str, int]]) -> str:
    master, transport, limit = lane
    parts = []
    if len({m for m, _, _ in lanes}) > 1 or master == "live":
        parts.append(master)
    parts.append(transport)
    if master != "live":
        parts.append(format_size(limit))
    elif limit:
        parts.append(f"maxPayload {limit:,}")
    return "\n".join(parts)


def replay_verdict(cell: Cell) -> Text:
    if cell.delivered:
        return Text(OK, style="green")
    if parsed_only(cell):
        return Text(f"{PARSED} parsed", style="yellow")
    text = f"{DROP} {short_cause(cell)}"
    if cell.observed.packets_in_body > 1:
        text += f" ({cell.wire_bytes:,} B POST)"
    return Text(text, style="red")


def message_table(cells: Sequence[Cell], label: str) -> Table | None:
    rows = [c for c in cells if c.label == label and c.index is not None]
    if not rows:
        return None
    lanes = _lanes(rows)
    title = "Each message of the capture" + ("" if label == "replay" else f", scaled {label}")
    table = Table(title=title, title_justify="left")
    for name, justify in (("#", "right"), ("type", "left"), ("JS .length", "right"), ("frame bytes", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for lane in lanes:
        table.add_column(_lane_title(lane, lanes))
    by_index: dict[int, dict[tuple[str, str, int], Cell]] = defaultdict(dict)
    for cell in rows:
        assert cell.index is not None
        by_index[cell.index][(cell.master, cell.transport.value, cell.limit)] = cell
    for index in sorted(by_index)[:MAX_ROWS]:
        lane_cells = by_index[index]
        first = next(iter(lane_cells.values()))
        row: list[RenderableType] = [str(index), first.type, f"{first.js_length:,}", f"{first.message_bytes:,}"]
        for lane in lanes:
            found = lane_cells.get(lane)
            row.append(replay_verdict(found) if found else Text("-"))
        table.add_row(*row)
    if len(by_index) > MAX_ROWS:
        table.caption = f"{len(by_index) - MAX_ROWS} more messages: see --json"
    return table


def type_matrix(cells: Sequence[Cell], label: str) -> Table | None:
    rows = [c for c in cells if c.label == label]
    if not rows:
        return None
    lanes = _lanes(rows)
    table = Table(title="Message types x limits: delivered / sent", title_justify="left")
    table.add_column("type")
    table.add_column("largest frame", justify="right")
    for lane in lanes:
        table.add_column(_lane_title(lane, lanes))
    for type_name, group in _by_type(rows):
        row: list[RenderableType] = [type_name, f"{max(c.message_bytes for c in group):,}"]
        for lane in lanes:
            lane_cells = [c for c in group if (c.master, c.transport.value, c.limit) == lane]
            if not lane_cells:
                row.append(Text("-"))
                continue
            ok = sum(c.delivered for c in lane_cells)
            if ok == len(lane_cells):
                row.append(Text(f"{OK} {ok}/{len(lane_cells)}", style="green"))
            else:
                dropped = next(c for c in lane_cells if not c.delivered)
                style = "red" if ok == 0 else "yellow"
                why = replay_verdict(dropped).plain.removeprefix(f"{DROP} ")
                row.append(Text(f"{ok}/{len(lane_cells)} {why}", style=style))
        table.add_row(*row)
    return table


def scale_table(cells: Sequence[Cell], scales: Sequence[int]) -> Table | None:
    if len(scales) < 2:
        return None
    lanes = _lanes(cells)
    table = Table(title=f"Scale at which each type starts to drop (payload lists repeated x{', x'.join(map(str, scales))})",
                  title_justify="left")
    table.add_column("type")
    for lane in lanes:
        table.add_column(_lane_title(lane, lanes))
    for type_name, group in _by_type(cells):
        row: list[RenderableType] = [type_name]
        for lane in lanes:
            lane_cells = [c for c in group if (c.master, c.transport.value, c.limit) == lane]
            first_drop = None
            for scale in scales:
                at = [c for c in lane_cells if c.label == f"x{scale}"]
                if any(not c.delivered for c in at):
                    first_drop = (scale, next(c for c in at if not c.delivered))
                    break
            if first_drop is None:
                row.append(Text(f"{OK} up to x{scales[-1]}", style="green"))
            else:
                scale, cell = first_drop
                row.append(Text(f"{DROP} x{scale}: {cell.message_bytes:,} B {short_cause(cell)}", style="red"))
        table.add_row(*row)
    return table


def replay_renderables(report: Report) -> list[RenderableType]:
    cells = report.cells
    scales = list(report.settings.get("scales", [1]))
    labels = ["replay"] if scales == [1] else [f"x{s}" for s in scales]
    out: list[RenderableType] = []
    table = message_table(cells, labels[0])
    if table is not None:
        out.append(table)
    matrix = type_matrix(cells, labels[0])
    if matrix is not None:
        out.append(matrix)
    scaled = scale_table(cells, scales)
    if scaled is not None:
        out.append(scaled)
    details = report.details if isinstance(report.details, ReplayDetails) else None
    lines = list(details.notes) if details is not None else []
    why = why_lines(cells)
    lines += why[:15] + ([f"... {len(why) - 15} more drops in --json"] if len(why) > 15 else [])
    lines += findings(report)
    if any(c.master == "live" for c in cells):
        lines.append(
            f"{PARSED} parsed: the live server parsed past the message (it answered a later packet) and kept the "
            "connection, but without a ledger that does not prove the handler ran; --ack proves it when the "
            "master acknowledges (its handler calls the callback)"
        )
    if lines:
        out.append(Group(Text("Why", style="bold"), *(Text(f"• {n}") for n in lines)))
    recommendations = details.recommendations if details is not None else ()
    if recommendations:
        rec_lines = [line for rec in recommendations for line in rec.lines()]
        out.append(Group(Text("Recommendations", style="bold"), *(Text(f"• {n}") for n in dict.fromkeys(rec_lines))))
    delivered = sum(c.delivered for c in cells)
    out.append(Text(
        f"{len(cells)} cells: {delivered} delivered, {len(cells) - delivered} not in {report.elapsed_s:.1f} s. "
        f"{OK} = the master recorded the message (or acknowledged it); {DROP} = dropped, with the cause seen.",
        style="dim",
    ))
    return out
