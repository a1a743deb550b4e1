"""The master's ledger: what its handler received, what it failed to decode, who disconnected.

A verdict of *delivered* is only ever given when the ledger holds the message. Entries are
ordered as the master saw them; waiters are woken by events, never by polling or sleeps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from imdiag.core.entries import (
    DIGEST_FAILED,
    Arrival,
    Connect,
    Disconnect,
    Entry,
    ServerError,
    arrival_digest,
    message_id_of,
)


class Ledger:
    """Ordered record of a master's observations, with awaitable lookups."""

    def __init__(self, on_entry: Callable[[Entry], None] | None = None, keep_messages: bool = False,
                 retain: bool = True, by_id: bool = False):
        """``retain=False``: entries only go to ``on_entry`` (a long-running standalone master
        must not grow without bound); the lookups below then find nothing. ``by_id``: the sender
        finds every message that has an id by that id (a sweep's ids are unique) and knows its
        sizes, so the master neither digests nor counts those (``arrival_digest``)."""
        self.entries: list[Entry] = []
        self._on_entry = on_entry
        self._keep_messages = keep_messages
        self.by_id = by_id
        self._retain = retain
        self._count = 0
        self._start = time.monotonic()
        self._by_id: dict[str, Arrival] = {}
        self._changed = asyncio.Event()

    @property
    def keep_messages(self) -> bool:
        """Arrivals keep the whole message (a recording master), not only type, id and digest."""
        return self._keep_messages

    def _next(self) -> tuple[int, float]:
        return self._count, round(time.monotonic() - self._start, 6)

    def _add(self, entry: Entry) -> None:
        self._count += 1
        if self._retain:
            self.entries.append(entry)
            if isinstance(entry, Arrival) and entry.message_id is not None:
                self._by_id.setdefault(entry.message_id, entry)
        # Wake every waiter, then re-arm: waiters re-check their own condition.
        self._changed.set()
        self._changed = asyncio.Event()
        if self._on_entry is not None:
            self._on_entry(entry)

    # --- recording (called by the master) ------------------------------------------------

    def arrival(
        self, sid: str, namespace: str, event: str, message: Any, *,
        digest: str | None = None, size: int | None = None,
    ) -> Arrival:
        """Record that the handler ran. ``digest`` and ``size`` are for masters that computed
        them from a message they do not pass on whole (the Node master sends type and id only);
        their ``size`` is None when they did not count it (``by_id``)."""
        if digest is None:
            digest, size, failed = arrival_digest(message, by_id=self.by_id)
            if failed is not None:
                self.error("imdiag.ledger", DIGEST_FAILED, failed, False, sid=sid)
        seq, t = self._next()
        is_dict = isinstance(message, dict)
        type_ = message.get("type") if is_dict else None
        entry = Arrival(
            seq=seq,
            t=t,
            sid=sid,
            namespace=namespace,
            event=event,
            type=type_ if isinstance(type_, str) else None,
            message_id=message_id_of(message),
            digest=digest,
            bytes=size,
            message=message if self._keep_messages else None,
        )
        self._add(entry)
        return entry

    def error(self, logger: str, message: str, error: str, decode: bool, *, sid: str = "",
              body_bytes: int | None = None) -> None:
        seq, t = self._next()
        self._add(ServerError(seq, t, logger, message, error, decode, sid, body_bytes))

    def connect(self, sid: str, namespace: str) -> None:
        seq, t = self._next()
        self._add(Connect(seq, t, sid, namespace))

    def disconnect(self, sid: str, namespace: str, reason: str, cause: str = "") -> None:
        seq, t = self._next()
        self._add(Disconnect(seq, t, sid, namespace, reason, cause))

    # --- lookups (called by the sweep) ---------------------------------------------------

    def changed(self) -> asyncio.Event:
        """Set when the next entry is recorded: ``await ledger.changed().wait()``."""
        return self._changed

    def mark(self) -> int:
        """A position; ``since(mark)`` returns what was recorded after it."""
        return len(self.entries)

    def since(self, mark: int) -> list[Entry]:
        return self.entries[mark:]

    def find(self, message_id: str, since: int = 0) -> Arrival | None:
        """The arrival of ``message_id`` at or after position ``since``."""
        found = self._by_id.get(message_id)
        if found is None or found.seq >= since:
            return found
        for entry in self.entries[since:]:
            if isinstance(entry, Arrival) and entry.message_id == message_id:
                return entry
        return None

    def find_digest(self, digest: str, since: int = 0) -> Arrival | None:
        for entry in self.entries[since:]:
            if isinstance(entry, Arrival) and entry.digest == digest:
                return entry
        return None

    async def wait_for(self, message_id: str, timeout: float, since: int = 0) -> Arrival | None:
        """The arrival of ``message_id``, or None if it was not recorded within ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                while (found := self.find(message_id, since)) is None:
                    await self._changed.wait()
                return found
        except TimeoutError:
            return None

    async def wait_until(self, predicate: Callable[[Entry], bool], since: int, timeout: float) -> Entry | None:
        """The first entry after ``since`` matching ``predicate``, within ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for entry in self.entries[since:]:
                        if predicate(entry):
                            return entry
                    since = len(self.entries)
                    await self._changed.wait()
        except TimeoutError:
            return None
