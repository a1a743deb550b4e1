"""What a reader must not miss in a report, in words: short causes, findings, disagreements, evidence.

Pure and free of any rendering library, so that every renderer (the terminal's tables, the HTML
report) says the same thing in the same words.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from imdiag.core.model import PATH_CAUSES, Barrier, Cause, Cell, Report
from imdiag.core.plan import MASTER_SERVERS
from imdiag.core.quirks import KNOWN_BEHAVIOURS
from imdiag.core.units import format_bytes, format_size
from imdiag.core.wire import LimitUnit, Transport

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


def master_rank(master: str) -> int:
    """Reports show python on aiohttp first, then the real Node one, then python under ASGI
    (``MASTER_SERVERS``' order), then a live master."""
    return MASTER_SERVERS.index(master) if master in MASTER_SERVERS else len(MASTER_SERVERS)


def ordered_masters(cells: Sequence[Cell]) -> list[str]:
    return sorted({c.master for c in cells}, key=lambda m: (master_rank(m), m))


Sides = dict[str, Cell]  # one cell per master, for the same frame


def disagreements(cells: Sequence[Cell]) -> list[Sides]:
    """The frames that two or more masters got, with different verdicts: each master's cell."""
    by_key: dict[tuple[object, ...], Sides] = defaultdict(dict)
    for cell in cells:
        key: tuple[object, ...] = (cell.transport.value, cell.limit, cell.type, cell.label, cell.index,
                                   cell.message_bytes)
        by_key[key][cell.master] = cell
    out = []
    for key in sorted(by_key, key=str):
        sides = by_key[key]
        if len({(c.delivered, c.cause) for c in sides.values()}) > 1:
            out.append(sides)
    return out


def side_text(cell: Cell) -> str:
    """One master's outcome in a disagreement: ``✓ delivered``, ``✗ oversize-close (1009)``."""
    if cell.delivered:
        return f"{OK} delivered"
    return f"{DROP} {cell.cause.value if cell.cause else '?'} ({short_cause(cell)})"


@dataclass(frozen=True)
class DisagreementGroup:
    """Disagreements of one transport and limit with the same outcomes per master, over a size range."""

    transport: str
    limit: int
    frames: tuple[Sides, ...]  # each frame's cell per master

    @property
    def span(self) -> str:
        sizes = [next(iter(sides.values())).message_bytes for sides in self.frames]
        return f"{min(sizes):,}" if min(sizes) == max(sizes) else f"{min(sizes):,} - {max(sizes):,}"

    def side(self, master: str) -> Cell | None:
        """The master's outcome (the same for every frame of the group); None if it did not get them."""
        return self.frames[0].get(master)


def disagreement_groups(cells: Sequence[Cell]) -> list[DisagreementGroup]:
    masters = ordered_masters(cells)
    groups: dict[tuple[str, int, tuple[str, ...]], list[Sides]] = defaultdict(list)
    for sides in disagreements(cells):
        first = next(iter(sides.values()))
        outcomes = tuple(side_text(sides[m]) if m in sides else "-" for m in masters)
        groups[(first.transport.value, first.limit, outcomes)].append(sides)
    ordered = sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2]))
    return [DisagreementGroup(transport, limit, tuple(frames)) for (transport, limit, _), frames in ordered]


def disagreement_title(cells: Sequence[Cell], count: int) -> str:
    """``Where the python and node masters disagree (29 frames)``."""
    masters = ordered_masters(cells)
    names = " and ".join(masters) if len(masters) < 3 else ", ".join(masters[:-1]) + " and " + masters[-1]
    return f"Where the {names} masters disagree ({count:,} frame{'s' if count != 1 else ''})"


def in_limit_unit(cell: Cell) -> int:
    """The cell's own frame in what its master's limit counts (bytes unless it counts characters)."""
    chars = cell.message_chars
    return chars if cell.limit_unit is LimitUnit.CHARACTERS and chars is not None else cell.message_bytes


def limit_text(limit: int, unit: LimitUnit | None) -> str:
    """``20,000``, or ``20,000 characters`` for a limit that counts characters."""
    return f"{limit:,}" + (" characters" if unit is LimitUnit.CHARACTERS else "")


@dataclass(frozen=True)
class BoundaryRow:
    """One master, transport and limit: its frames of exactly L-1, L and L+1 bytes (characters,
    where the master's limit counts characters)."""

    master: str
    transport: Transport
    limit: int
    frames: dict[str, tuple[Cell, ...]]  # label -> the cells of that label (one per ladder type)
    largest_delivered: int | None  # the largest frame delivered at this limit, any label, in bytes
    unit: LimitUnit | None = None  # what the master's limit counts

    @property
    def limit_text(self) -> str:
        return limit_text(self.limit, self.unit)

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
    masters = ordered_masters(rows)
    out = []
    groups = group_by(rows, "master", "transport", "limit")
    for _, group in sorted(groups.items(), key=lambda kv: (masters.index(str(kv[0][0])), str(kv[0][1:]))):
        first = group[0]
        at_limit = [c.message_bytes for c in cells
                    if (c.master, c.transport, c.limit) == (first.master, first.transport, first.limit) and c.delivered]
        frames = {label: tuple(c for c in group if c.label == label) for label in BOUNDARY_LABELS}
        out.append(BoundaryRow(first.master, first.transport, first.limit, frames, max(at_limit) if at_limit else None,
                               first.limit_unit))
    return out


def boundary_title(rows: Sequence[BoundaryRow]) -> str:
    title = "The exact boundary: frames of L-1, L and L+1 bytes"
    if any(r.unit is LimitUnit.CHARACTERS for r in rows):
        title += " (characters where the master's limit counts characters)"
    return title


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
    out.extend(_characters_findings(cells))
    trap = [c for c in cells if not c.delivered and c.js_length <= c.limit < in_limit_unit(c)]
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


def _characters_findings(cells: Sequence[Cell]) -> list[str]:
    """Where a master's limit counts characters: frames over the limit in bytes that it took, and
    what the same master's byte-counting transport does with them."""
    out = []
    for _, group in sorted(group_by(cells, "master", "transport", "limit").items(), key=str):
        master, transport, limit = group[0].master, group[0].transport, group[0].limit
        if group[0].limit_unit is not LimitUnit.CHARACTERS:
            continue
        over = [c for c in group if c.delivered and c.message_bytes > c.limit]
        if not over:
            continue
        biggest = max(over, key=lambda c: c.message_bytes)
        line = (f"{master} master, {transport.value}, limit {format_size(limit)}: the limit counts characters, not "
                f"bytes: {len(over)} frame(s) over it in bytes were delivered, the largest {format_bytes(biggest.message_bytes)} "
                f"({biggest.message_chars or 0:,} characters); Chinese text fits up to 3x more bytes than ASCII, emoji 4x")
        others = {c.transport for c in cells if c.master == master and c.limit == limit and
                  c.limit_unit is LimitUnit.BYTES}
        if others:
            line += (f"; {', '.join(sorted(t.value for t in others))} counts bytes, so a client that falls back to it "
                     f"loses what {transport.value} carried")
        out.append(line)
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
