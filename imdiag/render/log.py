"""``imdiag fake-master``'s live log: a banner, then one line per ledger entry. Pure."""

from __future__ import annotations

from imdiag.core.entries import Arrival, Connect, Disconnect, Entry, ServerError
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
        return f"{t} arrival    {what}{ident} {entry.bytes:,} B event={entry.event!r} sid={entry.sid}"
    if isinstance(entry, ServerError):
        kind = "decode-err" if entry.decode else "error     "
        return f"{t} {kind} {entry.message}" + (f": {entry.error}" if entry.error else "")
    if isinstance(entry, Connect):
        return f"{t} connect    sid={entry.sid} namespace={entry.namespace}"
    assert isinstance(entry, Disconnect)
    return f"{t} disconnect sid={entry.sid} reason={entry.reason!r}"
