"""Record messages as a replayable capture (``fake-master --record FILE``, ``tap --record FILE``).

A ledger observer: each arrival becomes one JSON Lines record in the fixture format
(``{"t", "event", "namespace", "type", "payload", ...}``), written and flushed at once, so a
crash loses nothing already received. imdiag's own barrier messages are not recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from imdiag.core.captures import dumps_record
from imdiag.core.entries import BARRIER_TYPE, Arrival, Entry
from imdiag.core.errors import InputError


class Recorder:
    """``Ledger(on_entry=recorder.on_entry, keep_messages=True)``; ``close()`` when done."""

    def __init__(self, path: str | Path, *, append: bool = True):
        self.path = Path(path)
        self.count = 0
        self._start: float | None = None
        try:
            self._file: IO[str] = self.path.open("a" if append else "w", encoding="utf-8", newline="\n")
        except OSError as exc:
            raise InputError(f"cannot record to {self.path}: {exc.strerror or exc}") from None

    def on_entry(self, entry: Entry) -> None:
        if not isinstance(entry, Arrival) or entry.type == BARRIER_TYPE:
            return
        self.write(entry.message, t=entry.t, event=entry.event, namespace=entry.namespace)

    def write(self, message: Any, *, t: float, event: str, namespace: str) -> None:
        """One message, ``t`` seconds on the caller's clock (the file counts from the first record)."""
        if self._start is None:
            self._start = t
        line = dumps_record(message, t=round(t - self._start, 6), event=event, namespace=namespace)
        self._file.write(line + "\n")
        self._file.flush()
        self.count += 1

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
