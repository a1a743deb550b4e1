"""The HTML report (``--html FILE``): one self-contained page to share in a postmortem or a pull request.

Pure: ``report_html()`` (size sweep, replay, gate), ``probe_html()`` and ``doctor_html()`` return the
page as text.
Inline CSS and SVG only: no script, no font, no image, nothing fetched, so it reads the same
offline, without JavaScript and on paper. Colours are Okabe-Ito (safe for colour-blind readers),
and every verdict is also written as a symbol and a short cause, so nothing rests on colour alone.

Each cell of the report is one element ``class="v ..."`` carrying its identity and verdict as
``data-*`` attributes (what a test or a script can check) and its evidence as a tooltip.
"""

from __future__ import annotations

import datetime
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

import imdiag.core.findings as words
from imdiag import __version__
from imdiag.core.doctor import DoctorResult, Verdict, headline, verdict_words
from imdiag.core.gate import CellRef, GateResult
from imdiag.core.model import Cell, MasterInfo, Report
from imdiag.core.probe_explain import fit_amount, refused_by, refused_with
from imdiag.core.probe_result import Fit, Outcome, ProbeResult, TransportLimit, Trial, settings_dict
from imdiag.core.quirks import REFERENCE_VERSIONS, version_drift
from imdiag.core.units import format_bytes, format_size
from imdiag.core.urls import redact_url
from imdiag.core.wire import Transport

UNKNOWN = "?"
SWEEP_LABELS = ("natural", "ladder", *words.BOUNDARY_LABELS)

# Okabe-Ito: tints for the cells (black text stays readable), full colours for the chart bars.
# Blue for delivered against orange/vermillion for refused keeps the main contrast visible to
# every common kind of colour blindness; the symbol and the cause text say it again.
_DELIVERED = ("#a9d6f5", "#56b4e9")
_CAUSE_COLOURS: dict[str, tuple[str, str]] = {
    "oversize-close": ("#f3cf80", "#e69f00"),
    "batched-oversize": ("#f6ee9c", "#f0e442"),
    "server-decode-error": ("#eaa67a", "#d55e00"),
    "http-error": ("#e6bcd4", "#cc79a7"),
    # The path's causes (not the message's): greys, told apart by their hatching and their names.
    "proxy-error": ("#d5c4e0", "#8e6bb0"),
    "session-unknown": ("#c9d3da", "#5f7a8c"),
    "upgrade-blocked": ("#ddd2c4", "#8c7356"),
    "connection-closed": ("#8fd3bd", "#009e73"),
    "emit-error": ("#c8c8c8", "#7f7f7f"),
    "timeout": ("#e2e2e2", "#a6a6a6"),
    "unknown": ("#f4f4f4", "#cfcfcf"),
}
_OTHER = ("#dcdcdc", "#999999")  # a cause this version does not know yet: still shown, striped
_CAUSE_NOTES = {
    "delivered": "the master recorded the message in its ledger (or acknowledged it)",
    "oversize-close": "refused for its size: websocket close 1009, HTTP 413, or 400 over maxPayload",
    "batched-oversize": "polling: fits alone, but the POST that batched it did not",
    "server-decode-error": "the bytes arrived and the server failed to decode them (logged)",
    "http-error": "the master answered another error status",
    "proxy-error": "a proxy or gateway refused, with no size signal (502, 504, its own page)",
    "session-unknown": "a request reached a master node that does not know the session (no sticky sessions)",
    "upgrade-blocked": "the websocket handshake is refused on the path, while polling works and offers it",
    "connection-closed": "the connection ended with no size signal",
    "emit-error": "the sender could not encode or write the message",
    "timeout": "no answer from the master in the time allowed",
    "unknown": "the master saw later messages, not this one, and said nothing",
}

_CSS = """
:root { --ink: #1a1a1a; --muted: #5f5f5f; --rule: #d0d0d0; }
* { box-sizing: border-box; }
body { font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink);
       margin: 24px auto; max-width: 1400px; padding: 0 16px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--rule); }
h3 { font-size: 14px; margin: 18px 0 6px; }
p.sub, .muted { color: var(--muted); }
table { border-collapse: collapse; margin: 4px 0 12px; }
th, td { border: 1px solid var(--rule); padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.maps { display: flex; flex-wrap: wrap; gap: 8px 28px; align-items: flex-start; }
table.heatmap td.v { min-width: 92px; padding: 1px 4px; text-align: center; font-variant-numeric: tabular-nums; line-height: 1.15; }
table.heatmap th.row { font-weight: normal; white-space: nowrap; }
table.heatmap th.row.first { border-top: 2px solid #9a9a9a; }
td.v b { display: block; font-size: 12px; } td.v small { font-size: 10.5px; }
td.v.disagrees { outline: 2px dashed #1a1a1a; outline-offset: -3px; }
td.v.gate-fail { box-shadow: inset 0 0 0 3px #1a1a1a; }
td.empty { color: #9a9a9a; text-align: center; }
.swatch { display: inline-block; min-width: 64px; padding: 1px 6px; border: 1px solid #888; text-align: center; }
ul.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 6px 20px; }
ul.findings li { margin: 4px 0; }
table.hypotheses td:nth-child(-n+2) { white-space: nowrap; } span.v { padding: 0 4px; }
.banner { padding: 8px 12px; border: 2px solid; margin: 12px 0; font-weight: 600; }
.banner.pass { border-color: #0072b2; background: #d7ecf9; } .banner.fail { border-color: #d55e00; background: #f9e0cf; }
.banner.note { border-color: #e69f00; background: #fcf1d8; font-weight: normal; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 4px 0 12px; }
dl.kv dt { color: var(--muted); } dl.kv dd { margin: 0; word-break: break-word; }
svg { max-width: 100%; height: auto; } svg text { font: 11px system-ui, sans-serif; fill: #1a1a1a; }
footer { margin-top: 32px; color: var(--muted); font-size: 11px; }
* { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
@page { size: A4 landscape; margin: 10mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 9pt; }
  h2 { break-after: avoid; } table, svg, .banner { break-inside: avoid; }
  table.heatmap { break-inside: auto; } thead { display: table-header-group; } tr { break-inside: avoid; }
}
"""


def _css() -> str:
    rules = [f"td.v.c-delivered, .swatch.c-delivered, span.v.c-delivered {{ background: {_DELIVERED[0]}; }}"]
    for cause, (tint, _) in _CAUSE_COLOURS.items():
        rules.append(f"td.v.c-{cause}, .swatch.c-{cause}, span.v.c-{cause} {{ background: {tint}; }}")
    rules.append(f"td.v.c-other, .swatch.c-other {{ background: repeating-linear-gradient(135deg, {_OTHER[0]} 0 6px, "
                 f"#ffffff 6px 9px); }}")
    rules.append("td.v.c-unknown, .swatch.c-unknown, span.v.c-unknown, td.v.c-timeout, .swatch.c-timeout { background-image: "
                 "repeating-linear-gradient(45deg, transparent 0 6px, rgba(0,0,0,.08) 6px 8px); }")
    path = ", ".join(f"td.v.c-{c}, .swatch.c-{c}" for c in ("proxy-error", "session-unknown", "upgrade-blocked"))
    rules.append(f"{path} {{ background-image: repeating-linear-gradient(-45deg, transparent 0 5px, "
                 "rgba(0,0,0,.14) 5px 7px); }")
    return _CSS + "\n".join(rules) + "\n"


# --- small pieces ------------------------------------------------------------------------------


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def cause_class(cause: str | None, delivered: bool) -> str:
    """The CSS class of a verdict: ``c-delivered``, ``c-<cause>``, or ``c-other`` for a cause
    this version has no colour for (the page still names it)."""
    if delivered:
        return "c-delivered"
    if cause in _CAUSE_COLOURS:
        return f"c-{cause}"
    return "c-other"


def bar_colour(cause: str | None, delivered: bool) -> str:
    if delivered:
        return _DELIVERED[1]
    return _CAUSE_COLOURS.get(cause or "", _OTHER)[1]


def _limit_title(master: str, limit: int) -> str:
    if master == "live":
        return f"live, maxPayload {limit:,}" if limit else "live"
    return f"limit {format_size(limit)}"


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], *, numeric: Sequence[int] = (), cls: str = "") -> str:
    """A plain table; cells are HTML already (escape before)."""
    out = [f'<table class="{cls}">' if cls else "<table>", "<thead><tr>"]
    out += [f'<th class="num">{h}</th>' if i in numeric else f"<th>{h}</th>" for i, h in enumerate(head)]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


_SIZE_KEYS = ("limits", "sizes", "limit", "max_bytes")


def _kv(pairs: Iterable[tuple[str, object]]) -> str:
    """Settings as a definition list; limits and sizes in the units people write them in."""
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(_plain(_sized(v) if k in _SIZE_KEYS else v))}</dd>" for k, v in pairs)
    return f'<dl class="kv">{items}</dl>'


def _sized(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        return format_size(value)
    if isinstance(value, (list, tuple)):
        return [_sized(v) for v in value]
    return value


def _plain(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value) or "-"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_plain(v)}" for k, v in value.items()) or "-"
    return str(value)


def _ul(lines: Iterable[str], cls: str = "findings") -> str:
    items = "".join(f"<li>{_e(line)}</li>" for line in lines)
    return f'<ul class="{cls}">{items}</ul>' if items else ""


def _page(title: str, body: Sequence[str], now: datetime.datetime | None) -> str:
    generated = (now or datetime.datetime.now(datetime.UTC)).isoformat(timespec="seconds")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_css()}</style></head><body>\n"
        + "\n".join(body)
        + f"\n<footer>imdiag {_e(__version__)} · generated {_e(generated)} · one self-contained file: "
        "no script, nothing loaded from the network.</footer>\n</body></html>\n"
    )


# --- cells -------------------------------------------------------------------------------------


def _cell_key(master: str, transport: str, limit: int, type_: str, label: str, index: int | None,
              message_bytes: int) -> tuple[object, ...]:
    return (master, transport, limit, type_, label, index, message_bytes)


def _ref_key(ref: CellRef) -> tuple[object, ...]:
    return _cell_key(ref.master, ref.transport, ref.limit, ref.type, ref.label, ref.index, ref.message_bytes)


def _key(cell: Cell) -> tuple[object, ...]:
    return _cell_key(cell.master, cell.transport.value, cell.limit, cell.type, cell.label, cell.index,
                     cell.message_bytes)


def tooltip(cell: Cell) -> str:
    """The evidence of one cell, as plain lines (a ``title`` attribute)."""
    where = f"{cell.master} master, {cell.transport.value}, {_limit_title(cell.master, cell.limit)}"
    what = f"#{cell.index} " if cell.index is not None else ""
    verdict = f"{words.OK} delivered" if cell.delivered else f"{words.DROP} dropped: {cell.cause.value if cell.cause else '?'}"
    lines = [
        f"{cell.type} ({what}{cell.label}) on {where}",
        verdict,
        f"frame {cell.message_bytes:,} B" + (f" (in a {cell.wire_bytes:,} B POST)" if cell.wire_bytes != cell.message_bytes else "")
        + f", JSON {cell.json_bytes:,} B, JS .length {cell.js_length:,}, {cell.encoder.value} encoder",
    ]
    if cell.predicted_delivered is not None:
        lines.append(f"model predicted: {'delivered' if cell.predicted_delivered else 'dropped'}"
                     + (" (the master did otherwise)" if cell.disagrees else ""))
    if cell.refused_by is not None:
        lines.append(f"refused by: {cell.refused_by.value}")
    if cell.evidence:
        lines.append(f"evidence: {cell.evidence}")
    return "\n".join(lines)


def cell_td(cell: Cell, gate_fails: Mapping[tuple[object, ...], Sequence[str]]) -> str:
    cause = cell.cause.value if cell.cause else None
    classes = ["v", cause_class(cause, cell.delivered)]
    if cell.disagrees:
        classes.append("disagrees")
    title = tooltip(cell)
    failed = gate_fails.get(_key(cell), ())
    if failed:
        classes.append("gate-fail")
        title += "\n" + "\n".join(f"gate: fails {name}" for name in failed)
    if cell.delivered:
        symbol = words.OK
    elif words.parsed_only(cell):
        symbol = f"{words.PARSED} parsed"
    else:
        symbol = f"{words.DROP} {words.short_cause(cell)}"
    attrs = {
        "master": cell.master, "transport": cell.transport.value, "limit": cell.limit, "type": cell.type,
        "label": cell.label, "index": "" if cell.index is None else cell.index, "bytes": cell.message_bytes,
        "verdict": "delivered" if cell.delivered else "dropped", "cause": cause or "",
    }
    data = " ".join(f'data-{k}="{_e(v)}"' for k, v in attrs.items())
    return (f'<td class="{" ".join(classes)}" {data} title="{_e(title)}"><b>{_e(symbol)}</b>'
            f"<small>{cell.message_bytes:,}</small></td>")


# --- the heatmaps ------------------------------------------------------------------------------


@dataclass
class _Grid:
    """One heatmap: rows of (type, row label) x columns of limits; each slot holds one cell."""

    title: str
    sweep: bool  # rows grouped by type (a sweep) or one row per captured message (a replay)
    limits: list[int]
    rows: dict[tuple[object, ...], dict[int, Cell]]
    row_titles: dict[tuple[object, ...], tuple[str, str]]  # key -> (type, what)


def family(label: str) -> str:
    """Which part of a report a cell belongs to: the sweep, or a replay (gate: one per file)."""
    if label in SWEEP_LABELS:
        return "sweep"
    return label if label.startswith("replay:") else "replay"


def _sweep_row(cell: Cell, natural: Mapping[str, int]) -> tuple[tuple[object, ...], str]:
    order = {"natural": 0, "ladder": 1, "L-1": 2, "L": 3, "L+1": 4}[cell.label]
    size = cell.message_bytes if cell.label == "ladder" else 0
    what = {"natural": "natural size", "ladder": f"ladder {format_size(cell.message_bytes)}"}.get(cell.label, cell.label)
    return (natural.get(cell.type, 1 << 62), cell.type, order, size), what


def _replay_row(cell: Cell) -> tuple[tuple[object, ...], str]:
    label = "" if cell.label == "replay" or cell.label.startswith("replay:") else f" {cell.label}"
    index = cell.index if cell.index is not None else -1
    return (index, cell.label, cell.type), f"#{index}{label}"


def grids(cells: Sequence[Cell]) -> list[_Grid]:
    """One grid per part (sweep, each replay), master and transport; every cell in exactly one slot."""
    natural = {c.type: c.message_bytes for c in cells if c.label == "natural"}
    masters = words.ordered_masters(cells)
    parts = list(dict.fromkeys(family(c.label) for c in cells))
    out = []
    for part in parts:
        for master in masters:
            for transport in (t.value for t in Transport):  # "default": a client library's own
                chosen = [c for c in cells if family(c.label) == part and c.master == master
                          and c.transport.value == transport]
                if chosen:
                    out.append(_grid(part, master, transport, chosen, natural))
    return out


def _grid(part: str, master: str, transport: str, cells: Sequence[Cell], natural: Mapping[str, int]) -> _Grid:
    what = "size sweep" if part == "sweep" else f"replay of {part.removeprefix('replay:')}" if ":" in part else "replay"
    grid = _Grid(f"{what}: {master} master, {transport}", part == "sweep", sorted({c.limit for c in cells}), {}, {})
    for cell in cells:
        key, row_title = _sweep_row(cell, natural) if part == "sweep" else _replay_row(cell)
        # Two cells in one slot (should not happen): the second gets a row of its own.
        while cell.limit in grid.rows.get(key, {}):
            key = (*key, "+")
        grid.rows.setdefault(key, {})[cell.limit] = cell
        grid.row_titles[key] = (cell.type, row_title)
    grid.rows = dict(sorted(grid.rows.items(), key=lambda kv: kv[0]))  # type: ignore[arg-type, return-value]
    return grid


def grid_html(grid: _Grid, gate_fails: Mapping[tuple[object, ...], Sequence[str]]) -> str:
    master = next(iter(next(iter(grid.rows.values())).values())).master
    head = "".join(f'<th class="num">{_e(_limit_title(master, limit))}</th>' for limit in grid.limits)
    columns = "<th>type</th><th>frame</th>" if grid.sweep else "<th>message</th><th>type</th>"
    out = [f'<table class="heatmap"><caption><h3>{_e(grid.title)}</h3></caption>',
           f"<thead><tr>{columns}{head}</tr></thead><tbody>"]
    empty = ("no message of this row at this limit (a ladder size equal to the limit is in its L row)" if grid.sweep
             else "not replayed at this limit (interrupted?)")
    previous = None
    for key, slots in grid.rows.items():
        type_name, what = grid.row_titles[key]
        if grid.sweep:  # a rule above each type, its name once
            first = " first" if type_name != previous else ""
            headers = (type_name if type_name != previous else "", what)
        else:
            first, headers = "", (what, type_name)
        previous = type_name
        row = [f'<th class="row{first}">{_e(text)}</th>' for text in headers]
        for limit in grid.limits:
            cell = slots.get(limit)
            if cell is None:
                row.append(f'<td class="empty" title="{_e(empty)}">·</td>')
            else:
                row.append(cell_td(cell, gate_fails))
        out.append("<tr>" + "".join(row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def legend(cells: Sequence[Cell], gate_failed: bool = False) -> str:
    counts: dict[tuple[bool, str | None], int] = defaultdict(int)
    for cell in cells:
        counts[(cell.delivered, None if cell.delivered else (cell.cause.value if cell.cause else None))] += 1
    items = []
    for (delivered, cause), count in sorted(counts.items(), key=lambda kv: (not kv[0][0], kv[0][1] or "")):
        name = "delivered" if delivered else (cause or "?")
        symbol = words.OK if delivered else words.DROP
        note = _CAUSE_NOTES.get(name, "a cause this version of the report has no colour for")
        items.append(f'<li><span class="swatch {cause_class(cause, delivered)}">{_e(symbol)} {_e(name)}</span> '
                     f"{count:,} cell(s): {_e(note)}</li>")
    if any(c.disagrees for c in cells):
        items.append('<li><span class="swatch" style="outline: 2px dashed #1a1a1a; outline-offset: -3px">dashed</span> '
                     "the master did otherwise than the wire model predicted</li>")
    if gate_failed:
        items.append('<li><span class="swatch" style="box-shadow: inset 0 0 0 3px #1a1a1a">framed</span> '
                     "a gate check failed on this cell</li>")
    return '<ul class="legend">' + "".join(items) + "</ul>"


# --- the replay's bar chart --------------------------------------------------------------------


def _log_axis(low: float, high: float) -> tuple[int, int]:
    return math.floor(math.log10(max(low, 1))), math.ceil(math.log10(max(high, 10)))


def bar_chart(cells: Sequence[Cell], title: str) -> str:
    """The capture's messages by index: frame bytes as bars (log scale), each limit as a line."""
    first_label = next(iter(dict.fromkeys(c.label for c in cells)))
    by_index: dict[int, list[Cell]] = defaultdict(list)
    for cell in cells:
        if cell.label == first_label and cell.index is not None:
            by_index[cell.index].append(cell)
    if not by_index:
        return ""
    indices = sorted(by_index)
    limits = sorted({c.limit for c in cells if c.limit > 0})
    sizes = [max(c.message_bytes for c in by_index[i]) for i in indices]
    lo, hi = _log_axis(min(sizes), max([*sizes, *limits]) * 1.05)
    width, height, left, right, top, bottom = 960, 300, 70, 90, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom

    def y(n: int) -> float:
        return top + plot_h * (1 - (math.log10(max(n, 1)) - lo) / (hi - lo))

    out = [(f'<svg role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{_e(title)}</title>')]
    for power in range(lo, hi + 1):
        ty = y(10**power)
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#e3e3e3"/>'
                   f'<text x="{left - 6}" y="{ty + 4:.1f}" text-anchor="end">{_e(format_size(10**power))}</text>')
    slot = plot_w / len(indices)
    bar = max(1.0, slot * 0.8)
    for i, (index, size) in enumerate(zip(indices, sizes, strict=True)):
        lane_cells = by_index[index]
        dropped = [c for c in lane_cells if not c.delivered]
        colour = bar_colour(dropped[0].cause.value if dropped and dropped[0].cause else None, not dropped)
        x = left + i * slot + (slot - bar) / 2
        lanes = "\n".join(f"{c.master} {c.transport.value} {_limit_title(c.master, c.limit)}: "
                          f"{words.OK + ' delivered' if c.delivered else words.DROP + ' ' + words.short_cause(c)}" for c in lane_cells)
        tip = f"#{index} {lane_cells[0].type}: {size:,} B\n{lanes}"
        out.append(f'<rect x="{x:.1f}" y="{y(size):.1f}" width="{bar:.1f}" height="{top + plot_h - y(size):.1f}" '
                   f'fill="{colour}" stroke="#1a1a1a" stroke-width="{0.5 if bar > 3 else 0}"><title>{_e(tip)}</title></rect>')
        if len(indices) <= 24:  # few bars: their bytes above them, readable on paper
            out.append(f'<text x="{x + bar / 2:.1f}" y="{y(size) - 4:.1f}" text-anchor="middle">{size:,}</text>')
        if len(indices) <= 60 or i % math.ceil(len(indices) / 40) == 0:
            out.append(f'<text x="{left + i * slot + slot / 2:.1f}" y="{top + plot_h + 14}" '
                       f'text-anchor="middle">{index}</text>')
    for limit in limits:
        ly = y(limit)
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{ly:.1f}" y2="{ly:.1f}" stroke="#1a1a1a" '
                   f'stroke-width="1.5" stroke-dasharray="6 3"/><text x="{left + plot_w + 6}" y="{ly + 4:.1f}">'
                   f"limit {_e(format_size(limit))}</text>")
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="#1a1a1a"/>'
               f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#1a1a1a"/>'
               f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle">message index in the capture '
               f"(bar: frame bytes, log scale; colour: {_e(words.OK)} delivered on every lane, else the first cause)</text>")
    out.append("</svg>")
    return "".join(out)


# --- the report --------------------------------------------------------------------------------


def _boundary_html(cells: Sequence[Cell]) -> str:
    rows = words.boundary_rows(cells)
    if not rows:
        return ""
    body = []
    for row in rows:
        tds = [_e(row.master), _e(row.transport.value), _e(row.limit_text)]
        for label in words.BOUNDARY_LABELS:
            kind, text = row.verdict(label)
            at = row.frames.get(label, ())
            cls = {"delivered": "c-delivered", "dropped": cause_class(at[0].cause.value if at and at[0].cause else None,
                                                                       False)}.get(kind, "")
            tds.append(f'<span class="swatch {cls}">{_e(text)}</span>')
        tds.append(_e(format_bytes(row.largest_delivered)) if row.largest_delivered is not None else "none")
        body.append(tds)
    title = words.boundary_title(rows).replace("The exact boundary:", "The exact boundary per master:")
    return (f"<h2 id='boundary'>{_e(title)}</h2>"
            + _table(["master", "transport", "limit L", *words.BOUNDARY_LABELS, "largest delivered frame"], body,
                     numeric=(2, 6)))


def _disagreements_html(cells: Sequence[Cell]) -> str:
    groups = words.disagreement_groups(cells)
    if not groups:
        return ""
    masters = words.ordered_masters(cells)

    def side(cell: Cell | None) -> str:
        return "-" if cell is None else _e(words.side_text(cell))

    rows = [[_e(g.transport), _e(format_size(g.limit)), _e(g.span), str(len(g.frames)),
             *(side(g.side(m)) for m in masters)] for g in groups]
    title = words.disagreement_title(cells, sum(len(g.frames) for g in groups))
    return (f"<h2 id='disagreements'>{_e(title)}</h2>"
            + _table(["transport", "limit", "frame bytes", "frames", *(f"{m} master" for m in masters)], rows,
                     numeric=(1, 2, 3)))


def _versions_html(masters: Sequence[MasterInfo]) -> str:
    by_server: dict[str, dict[str, str]] = {}
    for info in masters:
        by_server.setdefault(info.server, {}).update(info.versions)
    rows = []
    for server, versions in by_server.items():
        reference = REFERENCE_VERSIONS.get(server, {})
        for package, version in sorted(versions.items()):
            pinned = reference.get(package)
            mark = "" if pinned is None else ("same" if pinned == version else f"differs: README {pinned}")
            rows.append([_e(server), _e(package), _e(version), _e(mark)])
    drift = version_drift((m.server, m.versions) for m in masters)
    note = f'<div class="banner note">{_e(drift)}</div>' if drift else ""
    return ("<h2 id='versions'>Versions</h2>" + note
            + _table(["master", "package", "version that ran", "vs the README's figures"], rows)
            + _kv([("imdiag", __version__)]))


def _gate_html(result: GateResult) -> str:
    total = len(result.checks)
    if result.passed:
        banner = f'<div class="banner pass">{_e(words.OK)} gate passed: {total} checks</div>'
    else:
        banner = (f'<div class="banner fail">{_e(words.DROP)} gate failed: {len(result.failures)} of {total} checks failed '
                  "(outlined cells below)</div>")
    rows = [[_e(c.name), _e(c.cell.describe() if c.cell else ""), _e(c.cause or c.kind), _e(c.message)]
            for c in result.failures]
    out = ["<h2 id='gate'>Gate</h2>", banner]
    if rows:
        out.append(_table(["check", "cell", "cause", "what happened"], rows))
    if result.improvements:
        out.append("<h3>Improvements on the baseline</h3>" + _ul(f"{i.title}: {i.message}" for i in result.improvements))
    return "".join(out)


def _gate_fails(result: GateResult | None) -> dict[tuple[object, ...], list[str]]:
    fails: dict[tuple[object, ...], list[str]] = defaultdict(list)
    for check in result.failures if result is not None else ():
        if check.cell is not None:
            fails[_ref_key(check.cell)].append(check.name)
    return fails


def _summary(report: Report) -> str:
    cells = report.cells
    delivered = sum(c.delivered for c in cells)
    parts = [f"{len(cells):,} cells", f"{delivered:,} delivered", f"{len(cells) - delivered:,} dropped",
             f"{sum(c.disagrees for c in cells):,} where the master did otherwise than the model predicted",
             f"{report.elapsed_s:.1f} s"]
    return f'<p class="sub">{_e(" · ".join(parts))}</p>'


def _title(report: Report) -> str:
    if report.command == "replay" and report.details is not None:
        return f"imdiag replay of {report.details.capture.file}"
    return f"imdiag {report.command}"


def report_html(report: Report, gate: GateResult | None = None, *, now: datetime.datetime | None = None) -> str:
    """The page of a size sweep, a replay or a gate run (its judgement when ``gate`` is given)."""
    cells = report.cells
    body = [f"<h1>{_e(_title(report))}</h1>", _summary(report)]
    if report.interrupted:
        body.append('<div class="banner fail">interrupted (Ctrl-C): only the cells measured until then</div>')
    if gate is not None:
        body.append(_gate_html(gate))
    notes = words.findings(report)
    if notes:
        body.append("<h2 id='findings'>Findings</h2>" + _ul(notes))
    if not cells:
        body.append("<p>No cells were measured.</p>")
    else:
        body.append("<h2 id='cells'>Every cell: verdict and frame bytes per limit</h2>")
        body.append('<p class="muted">Hover a cell for its evidence. Rows: message types and their sizes '
                    "(natural, the ladder, frames of exactly L-1, L and L+1 bytes) or the capture's messages "
                    "by index; columns: the master's limit (maxHttpBufferSize).</p>")
        fails = _gate_fails(gate)
        body.append(legend(cells, bool(fails)))
        body.append('<div class="maps">' + "".join(grid_html(g, fails) for g in grids(cells)) + "</div>")
    body.append(_boundary_html(cells))
    body.append(_disagreements_html(cells))
    body += _replay_sections(report)
    body.append("<h2 id='settings'>Settings</h2>" + _kv(report.settings.items()))
    body.append(_versions_html(report.masters))
    return _page(_title(report), body, now)


def _replay_sections(report: Report) -> list[str]:
    replayed = [c for c in report.cells if family(c.label) != "sweep"]
    out: list[str] = []
    for part in dict.fromkeys(family(c.label) for c in replayed):
        cells = [c for c in replayed if family(c.label) == part]
        name = part.removeprefix("replay:") if ":" in part else str(report.settings.get("file", "the capture"))
        chart = bar_chart(cells, f"{name}: frame bytes per message against each limit")
        out.append(f"<h2 id='chart-{len(out)}'>{_e(name)}: each message's frame bytes against the limits</h2>{chart}")
        why = words.why_lines(cells)
        if why:
            out.append("<h3>Why: the first drop of each type, cause and lane, with its evidence</h3>" + _ul(why))
    details = report.details
    if details is not None:
        advice = [line for rec in details.recommendations for line in rec.lines()]
        if advice or details.notes:
            out.append("<h2 id='fix'>Fix advice</h2>" + _ul([*details.notes, *dict.fromkeys(advice)]))
        capture = details.capture
        out.append("<h3>The capture</h3>" + _kv([("file", capture.file), ("format", capture.format),
                                                ("messages", capture.messages), *capture.meta.items()]))
    return out


# --- the probe ---------------------------------------------------------------------------------


def _trial_td(t: Trial) -> str:
    delivered = t.outcome is Outcome.ACCEPTED
    cause = t.cause.value if t.cause else (None if delivered else "unknown")
    symbol = words.OK if delivered else (words.DROP if t.outcome is Outcome.REJECTED else UNKNOWN)
    cls = cause_class(cause, delivered) if t.outcome is not Outcome.INCONCLUSIVE else "c-unknown"
    title = f"{t.size:,} B ({t.purpose}): {t.outcome.value}" + (f", {cause}" if cause and not delivered else "") \
        + (f"\nrefused by: {t.refused_by.value}" if t.refused_by is not None else "") \
        + (f"\nevidence: {t.evidence}" if t.evidence else "")
    data = (f'data-transport="{_e(t.transport.value)}" data-bytes="{t.size}" data-verdict="{_e(t.outcome.value)}" '
            f'data-cause="{_e(cause or "")}"')
    return (f'<td class="v {cls}" {data} title="{_e(title)}"><b>{_e(symbol)} {_e(t.outcome.value)}</b>'
            f"<small>{t.size:,}</small></td>")


def _fit_td(fit: Fit) -> str:
    if fit.fits is None:
        return f'<td class="v c-unknown" data-verdict="unknown" title="{_e(fit.note)}"><b>{UNKNOWN}</b><small>{_e(fit.note)}</small></td>'
    text = fit_amount(fit)
    cls = "c-delivered" if fit.fits else "c-oversize-close"
    verdict = "fits" if fit.fits else "over"
    return (f'<td class="v {cls}" data-verdict="{verdict}" title="{_e(fit.note or text)}"><b>{words.OK if fit.fits else words.DROP}</b>'
            f"<small>{_e(text)}</small></td>")


def _limit_row(limit: TransportLimit, result: ProbeResult) -> list[str]:
    note = "not measured: see the summary" if limit.stopped else result.advertised_notes.get(limit.transport, "")
    return [
        _e(limit.transport.value),
        _e(format_bytes(limit.max_accepted)) if limit.max_accepted is not None else "-",
        _e(format_bytes(limit.first_rejected)) if limit.first_rejected is not None else "-",
        _e(refused_with(limit)), _e(refused_by(limit, result)),
        _e(limit.limit_unit.value) if limit.limit_unit else "-", str(len(limit.trials)), f"{limit.seconds:.2f}",
        _e(note),
    ]


def _probe_words(result: ProbeResult) -> list[str]:
    """The summary, what happens beyond each measured limit, and the fixes: as the terminal says."""
    summary = [result.summary.get(t.transport, "") for t in result.transports]
    summary.append(result.unit_finding)
    if result.stickiness is not None and not result.stickiness.broken:
        summary.append(result.stickiness.finding())
    out = ["<h2 id='summary'>Summary</h2>" + _ul(line for line in summary if line)]
    beyond = [result.explanations.get(t.transport, "") for t in result.transports if not t.diagnosed]
    if any(beyond):
        out.append("<h2 id='beyond'>Beyond the limit</h2>" + _ul(line for line in beyond if line))
    advice = [line for rec in result.recommendations for line in rec.lines()]
    if advice:
        out.append("<h2 id='fix'>Fix advice (your largest message against the path's smallest limit)</h2>"
                   + _ul(dict.fromkeys(advice)))
    return out


def probe_html(result: ProbeResult, *, now: datetime.datetime | None = None) -> str:
    """The page of ``imdiag probe``: the handshake, the exact limit per transport, each trial."""
    s = result.settings
    title = f"imdiag probe {redact_url(s.url)}"
    sub = (f"{result.elapsed_s:.2f} s · harmless {s.probe_type} messages, "
           f"never more than {format_bytes(s.max_bytes)} each")
    body = [f"<h1>{_e(title)}</h1>", f'<p class="sub">{_e(sub)}</p>']
    if result.interrupted:
        body.append('<div class="banner fail">interrupted (Ctrl-C): partial results</div>')
    body += _probe_sections(result)
    body.append("<h2 id='settings'>Settings</h2>" + _kv(settings_dict(s).items()))
    return _page(title, body, now)


def _probe_sections(result: ProbeResult) -> list[str]:
    """What a probe measured, as the probe's page shows it (and doctor's, under its hypotheses)."""
    hs = result.handshake
    body = ["<h2 id='limits'>The exact limit per transport</h2>" + _table(
        ["transport", "largest accepted", "smallest refused", "refused with", "refused by", "counts", "trials",
         "seconds", "vs advertised maxPayload"],
        [_limit_row(t, result) for t in result.transports], numeric=(1, 2, 6, 7))]
    body += _probe_words(result)
    for limit in result.transports:
        rows = "".join(f"<tr><th class=\"row\">{_e(t.purpose)}</th>{_trial_td(t)}</tr>" for t in limit.all_trials)
        body.append(f'<table class="heatmap"><caption><h3>{_e(limit.transport.value)}: every trial, in order</h3>'
                    f"</caption><thead><tr><th>purpose</th><th>verdict, frame bytes</th></tr></thead>"
                    f"<tbody>{rows}</tbody></table>")
    if result.messages:
        head = ["#", "type", "frame bytes", "JS .length",
                *(f"{t.transport.value} (≤ {format_bytes(t.max_accepted) if t.max_accepted is not None else '-'})"
                  for t in result.transports)]
        rows_html = []
        for verdict in result.messages:
            m = verdict.message
            cells = "".join(_fit_td(f) for f in verdict.fits)
            rows_html.append(f"<tr><td class=\"num\">{m.index}</td><td>{_e(m.type)}</td><td class=\"num\">"
                             f"{m.frame_bytes:,}</td><td class=\"num\">{m.js_length:,}</td>{cells}</tr>")
        body.append("<h2 id='messages'>Your messages against the measured limits (not sent)</h2><table class=\"heatmap\"><thead><tr>"
                    + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>" + "".join(rows_html)
                    + "</tbody></table>")
    body.append("<h2 id='handshake'>Handshake</h2>" + _kv([
        ("transport", hs.transport.value), ("sid", hs.sid), ("upgrades", hs.upgrades),
        ("pingInterval", f"{hs.ping_interval_ms:,} ms"), ("pingTimeout", f"{hs.ping_timeout_ms:,} ms"),
        ("maxPayload", format_bytes(hs.max_payload) if hs.max_payload is not None else "not advertised"),
        ("namespace", f"{hs.namespace}: " + (f"accepted (sid {hs.namespace_sid})" if hs.namespace_sid is not None
                                             else "not joined (no transport the path lets through could join it)")),
    ]))
    return body


# --- doctor ------------------------------------------------------------------------------------

_VERDICT_CLASS = {Verdict.CONFIRMED: "c-oversize-close", Verdict.RULED_OUT: "c-delivered", Verdict.UNKNOWN: "c-unknown"}


def doctor_html(result: DoctorResult, *, now: datetime.datetime | None = None) -> str:
    """The page of ``imdiag doctor``: the verdict, one row per hypothesis, the fixes, then what the
    probe measured."""
    s = result.settings.probe
    title = f"imdiag doctor {result.settings.where}"
    body = [f"<h1>{_e(title)}</h1>", f'<p class="sub">{_e(headline(result))}</p>']
    problem = any(h.problem for h in result.hypotheses)
    body.append(f'<div class="banner {"fail" if problem else "pass"}">{_e(result.verdict)}</div>')
    rows = []
    for h in result.hypotheses:
        verdict = (f'<span class="v {_VERDICT_CLASS[h.verdict]}" data-id="{_e(h.id)}" '
                   f'data-verdict="{_e(h.verdict.value)}">{_e(verdict_words(h))}</span>')
        rows.append([_e(h.id), verdict, _e(h.evidence), _e(h.next_step or "-")])
    body.append("<h2 id='hypotheses'>The hypotheses</h2>" + _table(["hypothesis", "verdict", "evidence", "next step"],
                                                                   rows, cls="hypotheses"))
    if result.advice:
        body.append("<h2 id='advice'>Fix advice</h2>" + _ul(result.advice))
    if result.probe is not None:
        body += _probe_sections(result.probe)
    body.append("<h2 id='settings'>Settings</h2>" + _kv([
        *settings_dict(s).items(), ("capture", result.settings.capture_path),
        ("expect_max_payload", result.settings.expect_max_payload), ("tap_report", result.settings.tap_report_path),
    ]))
    return _page(title, body, now)

