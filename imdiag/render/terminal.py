"""Render a size sweep for people: rich tables and a short list of findings.

Pure: functions return rich renderables; the CLI decides where and how to print them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from imdiag.core.model import Cause, Cell, Report
from imdiag.core.quirks import KNOWN_BEHAVIOURS
from imdiag.core.units import format_bytes, format_size
from imdiag.core.wire import Transport

OK = "✓"
DROP = "✗"


def short_cause(cell: Cell) -> str:
    """A few characters that say why a cell dropped: ``1009``, ``HTTP 400``, ``decode``."""
    obs = cell.observed
    if cell.delivered:
        return ""
    if cell.cause in (Cause.OVERSIZE_CLOSE, Cause.BATCHED_OVERSIZE, Cause.HTTP_ERROR):
        if obs.close_code is not None and cell.cause is Cause.OVERSIZE_CLOSE and not obs.http_status:
            return str(obs.close_code)
        if obs.http_status:
            prefix = "batched, " if cell.cause is Cause.BATCHED_OVERSIZE else ""
            return f"{prefix}HTTP {obs.http_status}"
    if cell.cause is Cause.SERVER_DECODE_ERROR:
        return "decode error"
    if cell.cause is Cause.CONNECTION_CLOSED and obs.close_code is not None:
        return f"closed {obs.close_code}"
    return cell.cause.value if cell.cause else "?"


def verdict_text(cell: Cell) -> Text:
    if cell.delivered:
        return Text(OK, style="green")
    return Text(f"{DROP} {short_cause(cell)}", style="red")


def _by(cells: Iterable[Cell], *keys: str) -> dict[tuple[object, ...], list[Cell]]:
    groups: dict[tuple[object, ...], list[Cell]] = defaultdict(list)
    for cell in cells:
        groups[tuple(getattr(cell, k) for k in keys)].append(cell)
    return groups


def _masters(cells: Sequence[Cell]) -> list[str]:
    order = {"python": 0, "node": 1}  # the embedded master first, then the real Node one
    return sorted({c.master for c in cells}, key=lambda m: (order.get(m, 2), m))


def _column_keys(limits: Sequence[int], masters: Sequence[str]) -> list[tuple[int, str]]:
    return [(limit, master) for limit in limits for master in masters]


def _column_title(limit: int, master: str, masters: Sequence[str]) -> str:
    return f"limit {format_size(limit)}" + (f"\n{master}" if len(masters) > 1 else "")


def _who(masters: Sequence[str]) -> str:
    return " vs ".join(f"{m} master" for m in masters)


def natural_table(cells: Sequence[Cell], transport: Transport, masters: Sequence[str], limits: Sequence[int]) -> Table | None:
    rows = [c for c in cells if c.label == "natural" and c.transport is transport and c.master in masters]
    if not rows:
        return None
    table = Table(title=f"{_who(masters)}, {transport.value}: each type at its natural size", title_justify="left")
    table.add_column("type")
    table.add_column("frame bytes", justify="right")
    table.add_column("JS .length", justify="right")
    keys = _column_keys(limits, masters)
    for limit, master in keys:
        table.add_column(_column_title(limit, master, masters))
    by_type = _by(rows, "type", "limit", "master")
    for type_name in dict.fromkeys(c.type for c in sorted(rows, key=lambda c: c.message_bytes)):
        any_cell = next(c for c in rows if c.type == type_name)
        row: list[RenderableType] = [type_name, f"{any_cell.message_bytes:,}", f"{any_cell.js_length:,}"]
        for limit, master in keys:
            found = by_type.get((type_name, limit, master))
            row.append(verdict_text(found[0]) if found else Text("-"))
        table.add_row(*row)
    return table


def edge_table(cells: Sequence[Cell], transport: Transport, masters: Sequence[str], limits: Sequence[int]) -> Table | None:
    """Per type and limit: the largest frame delivered and the smallest dropped, with cause."""
    rows = [c for c in cells if c.label != "natural" and c.transport is transport and c.master in masters]
    if not rows:
        return None
    table = Table(
        title=f"{_who(masters)}, {transport.value}: largest delivered / smallest dropped frame (ladder and L-1, L, L+1)",
        title_justify="left",
    )
    table.add_column("type")
    keys = _column_keys(limits, masters)
    for limit, master in keys:
        table.add_column(_column_title(limit, master, masters))
    groups = _by(rows, "type", "limit", "master")
    for type_name in dict.fromkeys(c.type for c in rows):
        row: list[RenderableType] = [type_name]
        for limit, master in keys:
            group = groups.get((type_name, limit, master), [])
            delivered = [c.message_bytes for c in group if c.delivered]
            dropped = sorted((c for c in group if not c.delivered), key=lambda c: c.message_bytes)
            text = Text()
            text.append(f"{OK} {max(delivered):,}" if delivered else f"{OK} none", style="green")
            if dropped:
                first = dropped[0]
                text.append(f"\n{DROP} {first.message_bytes:,} {short_cause(first)}", style="red")
            row.append(text)
        table.add_row(*row)
    return table


def disagreements(cells: Sequence[Cell]) -> list[tuple[Cell, Cell]]:
    """Pairs of cells (python, node) that sent the same frame and got different verdicts."""
    by_key: dict[tuple[object, ...], dict[str, Cell]] = defaultdict(dict)
    for cell in cells:
        key = (cell.transport.value, cell.limit, cell.type, cell.label, cell.index, cell.message_bytes)
        by_key[key][cell.master] = cell
    pairs = []
    for key in sorted(by_key, key=str):
        sides = by_key[key]
        if "python" in sides and "node" in sides:
            a, b = sides["python"], sides["node"]
            if (a.delivered, a.cause) != (b.delivered, b.cause):
                pairs.append((a, b))
    return pairs


def disagreement_table(cells: Sequence[Cell]) -> Table | None:
    """The disagreements, grouped: per transport, limit and pair of outcomes, a size range."""
    pairs = disagreements(cells)
    if not pairs:
        return None
    groups: dict[tuple[str, int, str, str], list[tuple[Cell, Cell]]] = defaultdict(list)
    for a, b in pairs:
        groups[(a.transport.value, a.limit, _side(a).plain, _side(b).plain)].append((a, b))
    table = Table(title=f"Where the python and node masters disagree ({len(pairs)} cells)", title_justify="left")
    for name, justify in (("transport", "left"), ("limit", "right"), ("frame bytes", "right"), ("cells", "right"),
                          ("python master", "left"), ("node master", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for (transport, limit, _, _), group in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        sizes = [a.message_bytes for a, _ in group]
        span = f"{min(sizes):,}" if min(sizes) == max(sizes) else f"{min(sizes):,} - {max(sizes):,}"
        table.add_row(transport, format_size(limit), span, str(len(group)), _side(group[0][0]), _side(group[0][1]))
    return table


def _side(cell: Cell) -> Text:
    if cell.delivered:
        return Text(f"{OK} delivered", style="green")
    return Text(f"{DROP} {cell.cause.value if cell.cause else '?'} ({short_cause(cell)})", style="red")


def boundary_table(cells: Sequence[Cell], masters: Sequence[str]) -> Table | None:
    rows = [c for c in cells if c.label in ("L-1", "L", "L+1")]
    if not rows:
        return None
    table = Table(title="The exact boundary: frames of L-1, L and L+1 bytes", title_justify="left")
    table.add_column("master")
    table.add_column("transport")
    table.add_column("limit L", justify="right")
    for label in ("L-1", "L", "L+1"):
        table.add_column(label)
    table.add_column("largest delivered frame", justify="right")
    for (master, transport, limit), group in sorted(_by(rows, "master", "transport", "limit").items(), key=str):
        row: list[RenderableType] = [str(master), transport.value, f"{limit:,}"]  # type: ignore[attr-defined]
        for label in ("L-1", "L", "L+1"):
            labelled = [c for c in group if c.label == label]
            if not labelled:
                row.append(Text("-"))
                continue
            if all(c.delivered for c in labelled):
                row.append(Text(OK, style="green"))
            elif not any(c.delivered for c in labelled):
                row.append(Text(f"{DROP} {short_cause(labelled[0])}", style="red"))
            else:
                row.append(Text(f"{sum(c.delivered for c in labelled)}/{len(labelled)}", style="yellow"))
        all_at_limit = [c for c in cells if (c.master, c.transport, c.limit) == (master, transport, limit)]
        delivered = [c.message_bytes for c in all_at_limit if c.delivered]
        row.append(f"{max(delivered):,} B" if delivered else "none")
        table.add_row(*row)
    return table


def findings(report: Report) -> list[str]:
    """Plain sentences: what a reader must not miss."""
    cells = report.cells
    out: list[str] = []
    for (master, transport, limit), group in sorted(_by(cells, "master", "transport", "limit").items(), key=str):
        wrong = [c for c in group if c.disagrees and not c.delivered]
        if wrong:
            causes = sorted({c.cause.value for c in wrong if c.cause})
            smallest = min(wrong, key=lambda c: c.message_bytes)
            out.append(
                f"{master} master, {transport.value}, limit {format_size(limit)}: {len(wrong)} message(s) "  # type: ignore[attr-defined]
                f"under the limit were dropped ({', '.join(causes)}); the smallest was "
                f"{format_bytes(smallest.message_bytes)}: {smallest.evidence}"
            )
        surprising = [c for c in group if c.disagrees and c.delivered]
        if surprising:
            biggest = max(surprising, key=lambda c: c.message_bytes)
            out.append(
                f"{master} master, {transport.value}, limit {format_size(limit)}: {len(surprising)} message(s) "  # type: ignore[attr-defined]
                f"predicted to drop were delivered (largest {format_bytes(biggest.message_bytes)})"
            )
    trap = [c for c in cells if not c.delivered and c.js_length <= c.limit < c.message_bytes]
    if trap:
        c = min(trap, key=lambda c: (c.limit, c.message_bytes))
        out.append(
            f"JS .length misleads: {len(trap)} dropped message(s) measure under their limit by "
            f"JSON.stringify(msg).length, e.g. {c.type}: .length {c.js_length:,} < limit {c.limit:,}, "
            f"but {c.message_bytes:,} bytes on the wire ({c.encoder.value} encoder, UTF-8)."
        )
    for master in _masters(cells):
        if any(c.disagrees for c in cells if c.master == master):
            out.extend(f"known {master} behaviour: {b}" for b in KNOWN_BEHAVIOURS.get(master, ()))
    if report.interrupted:
        out.append("interrupted: the tables show only the cells measured before Ctrl-C")
    return out


def sweep_renderables(report: Report) -> list[RenderableType]:
    limits = list(report.settings.get("limits", sorted({c.limit for c in report.cells})))
    transports = [Transport(t) for t in report.settings.get("transports", [t.value for t in Transport])]
    out: list[RenderableType] = []
    masters = _masters(report.cells)
    for transport in transports:
        for build in (natural_table, edge_table):
            table = build(report.cells, transport, masters, limits)
            if table is not None:
                out.append(table)
    for table in (boundary_table(report.cells, masters), disagreement_table(report.cells)):
        if table is not None:
            out.append(table)
    notes = findings(report)
    if notes:
        out.append(Group(Text("Findings", style="bold"), *(Text(f"• {n}") for n in notes)))
    delivered = sum(c.delivered for c in report.cells)
    out.append(
        Text(
            f"{len(report.cells)} cells: {delivered} delivered, {len(report.cells) - delivered} dropped "
            f"in {report.elapsed_s:.1f} s. {OK} = the master recorded the message; "
            f"{DROP} = dropped, with the cause the master or the transport showed.",
            style="dim",
        )
    )
    return out
