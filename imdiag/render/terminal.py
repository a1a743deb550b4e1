"""Render a size sweep for people: rich tables and a short list of findings.

Pure: functions return rich renderables; the CLI decides where and how to print them.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from imdiag.core.findings import (
    BOUNDARY_LABELS,
    DROP,
    OK,
    boundary_rows,
    disagreement_groups,
    findings,
    group_by,
    ordered_masters,
    short_cause,
    side_text,
)
from imdiag.core.model import Cell, Report
from imdiag.core.units import format_size
from imdiag.core.wire import WIRE_TRANSPORTS, Transport


def verdict_text(cell: Cell) -> Text:
    if cell.delivered:
        return Text(OK, style="green")
    return Text(f"{DROP} {short_cause(cell)}", style="red")


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
    by_type = group_by(rows, "type", "limit", "master")
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
    groups = group_by(rows, "type", "limit", "master")
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


def disagreement_table(cells: Sequence[Cell]) -> Table | None:
    """The disagreements, grouped: per transport, limit and pair of outcomes, a size range."""
    groups = disagreement_groups(cells)
    if not groups:
        return None
    count = sum(len(g.pairs) for g in groups)
    table = Table(title=f"Where the python and node masters disagree ({count} cells)", title_justify="left")
    for name, justify in (("transport", "left"), ("limit", "right"), ("frame bytes", "right"), ("cells", "right"),
                          ("python master", "left"), ("node master", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for group in groups:
        python, node = group.pairs[0]
        table.add_row(group.transport, format_size(group.limit), group.span, str(len(group.pairs)),
                      _side(python), _side(node))
    return table


def _side(cell: Cell) -> Text:
    return Text(side_text(cell), style="green" if cell.delivered else "red")


_BOUNDARY_STYLES = {"delivered": "green", "dropped": "red", "mixed": "yellow", "none": ""}


def boundary_table(cells: Sequence[Cell], masters: Sequence[str]) -> Table | None:
    rows = boundary_rows(cells)
    if not rows:
        return None
    table = Table(title="The exact boundary: frames of L-1, L and L+1 bytes", title_justify="left")
    table.add_column("master")
    table.add_column("transport")
    table.add_column("limit L", justify="right")
    for label in BOUNDARY_LABELS:
        table.add_column(label)
    table.add_column("largest delivered frame", justify="right")
    for boundary in rows:
        row: list[RenderableType] = [boundary.master, boundary.transport.value, f"{boundary.limit:,}"]
        for label in BOUNDARY_LABELS:
            kind, text = boundary.verdict(label)
            row.append(Text(text, style=_BOUNDARY_STYLES[kind]))
        row.append(f"{boundary.largest_delivered:,} B" if boundary.largest_delivered is not None else "none")
        table.add_row(*row)
    return table


def sweep_renderables(report: Report) -> list[RenderableType]:
    limits = list(report.settings.get("limits", sorted({c.limit for c in report.cells})))
    transports = [Transport(t) for t in report.settings.get("transports", [t.value for t in WIRE_TRANSPORTS])]
    out: list[RenderableType] = []
    masters = ordered_masters(report.cells)
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
