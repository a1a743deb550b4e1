"""``imdiag fake-master``'s live log: a banner, then one line per ledger entry. Pure."""

from __future__ import annotations

from imdiag.core.entries import Arrival, Connect, Disconnect, Entry, ServerError, Totals
from imdiag.core.model import MasterInfo
from imdiag.core.quirks import unit_notes


def master_banner(info: MasterInfo) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in info.versions.items())
    notes = "".join(f"; {note}" for note in unit_notes(info.server))
    return (
        f"{info.server} reference master listening on {info.url}{info.path} namespace {info.namespace} "
        f"maxHttpBufferSize {info.limit:,} B{notes} ({versions}). Point a worker at "
        f"{info.url}{'' if info.namespace == '/' else info.namespace}. Ctrl-C stops."
    )


def ledger_line(entry: Entry) -> str:
    """One live log line per ledger entry (``imdiag fake-master``)."""
    t = f"{entry.t:10.3f}s"
    if isinstance(entry, Arrival):
        what = entry.type or "(no type)"
        ident = f" id={entry.message_id}" if entry.message_id else f" digest={entry.digest}"
        size = f"{entry.bytes:,} B " if entry.bytes is not None else ""
        return f"{t} arrival    {what}{ident} {size}event={entry.event!r} sid={entry.sid}"
    if isinstance(entry, ServerError):
        kind = "decode-err" if entry.decode else "error     "
        # The connection and the body's size tie a decode error to the message that was lost.
        where = (f"sid={entry.sid} " if entry.sid else "") + (
            f"POST {entry.body_bytes:,} B " if entry.body_bytes is not None else "")
        return f"{t} {kind} {where}{entry.message}" + (f": {entry.error}" if entry.error else "")
    if isinstance(entry, Connect):
        return f"{t} connect    sid={entry.sid} namespace={entry.namespace}"
    assert isinstance(entry, Disconnect)
    return f"{t} disconnect sid={entry.sid} reason={entry.reason!r}"


def totals_lines(totals: Totals, elapsed_s: float) -> list[str]:
    """``fake-master``'s summary on exit, after serving ``elapsed_s``: arrivals and bytes per type,
    errors, disconnects by reason."""
    count, size = sum(totals.arrivals.values()), sum(totals.arrival_bytes.values())
    by_type = ", ".join(f"{kind} {n:,} ({totals.arrival_bytes[kind]:,} B)" for kind, n in totals.arrivals.most_common())
    reasons = ", ".join(f"{reason!r} {n:,}" for reason, n in totals.disconnects.most_common())
    return [
        f"totals after {elapsed_s:.3f} s:",
        f"  arrivals: {count:,}, {size:,} B" + (f": {by_type}" if by_type else ""),
        f"  decode errors: {totals.decode_errors:,}; other errors: {totals.other_errors:,}",
        f"  connects: {totals.connects:,}; disconnects: {sum(totals.disconnects.values()):,}" + (
            f" ({reasons})" if reasons else ""),
    ]
