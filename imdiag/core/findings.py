"""What a reader must not miss in a report, in words: short causes, findings, disagreements, evidence.

Pure and free of any rendering library, so that every renderer (the terminal's tables, the HTML
report) says the same thing in the same words.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from imdiag.core.model import PATH_CAUSES, Barrier, Cause, Cell, Report
from imdiag.core.quirks import KNOWN_BEHAVIOURS
from imdiag.core.units import format_bytes, format_size
from imdiag.core.wire import Transport

OK = "✓"  # delivered: the master recorded the message (or acknowledged it)
DROP = "✗"  # dropped, with the cause that was observed
PARSED = "≈"  # a live master parsed past it: no ledger, so delivery is not proven
BOUNDARY_LABELS = ("L-1", "L", "L+1")


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


def parsed_only(cell: Cell) -> bool:
    """A live master parsed past the message and kept the connection: not proven delivered."""
    return cell.cause is Cause.UNKNOWN and cell.observed.barrier is Barrier.PARSED


def group_by(cells: Iterable[Cell], *keys: str) -> dict[tuple[object, ...], list[Cell]]:
    groups: dict[tuple[object, ...], list[Cell]] = defaultdict(list)
    for cell in cells:
        groups[tuple(getattr(cell, k) for k in keys)].append(cell)
    return groups


def ordered_masters(cells: Sequence[Cell]) -> list[str]:
    order = {"python": 0, "node": 1}  # the embedded master first, then the real Node one
    return sorted({c.master for c in cells}, key=lambda m: (order.get(m, 2), m))


def disagreements(cells: Sequence[Cell]) -> list[tuple[Cell, Cell]]:
    """Pairs of cells (python, node) that sent the same frame and got different verdicts."""
    by_key: dict[tuple[object, ...], dict[str, Cell]] = defaultdict(dict)
    for cell in cells:
        key: tuple[object, ...] = (cell.transport.value, cell.limit, cell.type, cell.label, cell.index,
                                   cell.message_bytes)
        by_key[key][cell.master] = cell
    pairs = []
    for key in sorted(by_key, key=str):
        sides = by_key[key]
        if "python" in sides and "node" in sides:
            a, b = sides["python"], sides["node"]
            if (a.delivered, a.cause) != (b.delivered, b.cause):
                pairs.append((a, b))
    return pairs


def side_text(cell: Cell) -> str:
    """One master's outcome in a disagreement: ``✓ delivered``, ``✗ oversize-close (1009)``."""
    if cell.delivered:
        return f"{OK} delivered"
    return f"{DROP} {cell.cause.value if cell.cause else '?'} ({short_cause(cell)})"


@dataclass(frozen=True)
class DisagreementGroup:
    """Disagreements of one transport and limit with the same pair of outcomes, over a size range."""

    transport: str
    limit: int
    pairs: tuple[tuple[Cell, Cell], ...]  # (python, node)

    @property
    def span(self) -> str:
        sizes = [a.message_bytes for a, _ in self.pairs]
        return f"{min(sizes):,}" if min(sizes) == max(sizes) else f"{min(sizes):,} - {max(sizes):,}"


def disagreement_groups(cells: Sequence[Cell]) -> list[DisagreementGroup]:
    groups: dict[tuple[str, int, str, str], list[tuple[Cell, Cell]]] = defaultdict(list)
    for a, b in disagreements(cells):
        groups[(a.transport.value, a.limit, side_text(a), side_text(b))].append((a, b))
    ordered = sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2]))
    return [DisagreementGroup(transport, limit, tuple(pairs)) for (transport, limit, _, _), pairs in ordered]


@dataclass(frozen=True)
class BoundaryRow:
    """One master, transport and limit: its frames of exactly L-1, L and L+1 bytes."""

    master: str
    transport: Transport
    limit: int
    frames: dict[str, tuple[Cell, ...]]  # label -> the cells of that label (one per ladder type)
    largest_delivered: int | None  # the largest frame delivered at this limit, any label

    def verdict(self, label: str) -> tuple[str, str]:
        """(``delivered`` | ``dropped`` | ``mixed`` | ``none``, a short text) for one label."""
        cells = self.frames.get(label, ())
        if not cells:
            return "none", "-"
        delivered = sum(c.delivered for c in cells)
        if delivered == len(cells):
            return "delivered", OK
        if delivered == 0:
            return "dropped", f"{DROP} {short_cause(cells[0])}"
        return "mixed", f"{delivered}/{len(cells)}"


def boundary_rows(cells: Sequence[Cell]) -> list[BoundaryRow]:
    rows = [c for c in cells if c.label in BOUNDARY_LABELS]
    out = []
    for _, group in sorted(group_by(rows, "master", "transport", "limit").items(), key=str):
        first = group[0]
        at_limit = [c.message_bytes for c in cells
                    if (c.master, c.transport, c.limit) == (first.master, first.transport, first.limit) and c.delivered]
        frames = {label: tuple(c for c in group if c.label == label) for label in BOUNDARY_LABELS}
        out.append(BoundaryRow(first.master, first.transport, first.limit, frames, max(at_limit) if at_limit else None))
    return out


def findings(report: Report) -> list[str]:
    """Plain sentences: what a reader must not miss."""
    cells = report.cells
    out: list[str] = []
    for _, group in sorted(group_by(cells, "master", "transport", "limit").items(), key=str):
        where = f"{group[0].master} master, {group[0].transport.value}, limit {format_size(group[0].limit)}"
        wrong = [c for c in group if c.disagrees and not c.delivered]
        if wrong:
            causes = sorted({c.cause.value for c in wrong if c.cause})
            smallest = min(wrong, key=lambda c: c.message_bytes)
            out.append(
                f"{where}: {len(wrong)} message(s) "
                f"under the limit were dropped ({', '.join(causes)}); the smallest was "
                f"{format_bytes(smallest.message_bytes)}: {smallest.evidence}"
            )
        surprising = [c for c in group if c.disagrees and c.delivered]
        if surprising:
            biggest = max(surprising, key=lambda c: c.message_bytes)
            out.append(
                f"{where}: {len(surprising)} message(s) "
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
    for master in ordered_masters(cells):
        if any(c.disagrees for c in cells if c.master == master):
            out.extend(f"known {master} behaviour: {b}" for b in KNOWN_BEHAVIOURS.get(master, ()))
    if report.interrupted:
        out.append("interrupted: the tables show only the cells measured before Ctrl-C")
    return out


def why_lines(cells: Sequence[Cell]) -> list[str]:
    """The evidence of the first drop of each (lane, type, cause)."""
    seen: set[tuple[object, ...]] = set()
    out = []
    for cell in sorted((c for c in cells if not c.delivered), key=lambda c: (c.index or 0, c.master, c.transport.value, c.limit)):
        # A path cause (no sticky sessions, a blocked upgrade) is one line per lane: it is not the message's.
        what = cell.cause if cell.cause in PATH_CAUSES else (cell.type, cell.cause)
        key = (cell.master, cell.transport.value, cell.limit, what)
        if key in seen:
            continue
        seen.add(key)
        where = f"{cell.master} {cell.transport.value}" + (f" {format_size(cell.limit)}" if cell.master != "live" else "")
        out.append(f"#{cell.index} {cell.type} ({where}): {cell.cause.value if cell.cause else '?'}: "
                   f"JS .length {cell.js_length:,}, frame {cell.message_bytes:,} B; {cell.evidence}")
    return out
