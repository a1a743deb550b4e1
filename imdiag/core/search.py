"""Find a size limit to the byte: bisection as a small state machine, without I/O.

The network loop asks ``next_size()``, sends a frame of that many bytes, observes what the
server did and tells the machine with ``record(size, accepted)``. The machine assumes a
threshold: every size up to some T is accepted, every size above it refused. Servers
advertise their limit (``maxPayload``), and most enforce exactly it or one byte less, so the
machine tries the advertised figure and its neighbour first (two trials when the guess is
right), then bisects what is left. At most ``ceil(log2(hi - lo + 1)) + 2`` trials.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SearchResult:
    """What the search knows: the largest accepted size and the smallest refused one."""

    max_accepted: int  # largest size accepted (``lo`` when no trial was accepted)
    first_rejected: int | None  # smallest size refused; None when nothing up to ``hi`` was
    trials: int
    done: bool  # the two are adjacent: the limit is known to the byte
    contradiction: str = ""  # the server broke the threshold assumption (then ``done``)


def max_trials(lo: int, hi: int) -> int:
    """The most trials the machine needs for sizes ``lo+1..hi`` with a guess."""
    return math.ceil(math.log2(max(hi - lo, 0) + 1)) + 2


class Bisection:
    """``Bisection(lo, hi, guess=advertised)``: find the limit among sizes ``lo+1 .. hi``.

    ``lo`` is a size known to be accepted (or one below the smallest size that can be sent);
    ``hi`` the largest size that may be sent, or one below a size known to be refused.
    """

    def __init__(self, lo: int, hi: int, *, guess: int | None = None) -> None:
        if hi < lo:
            raise ValueError(f"empty search range: hi {hi} < lo {lo}")
        self.lo, self.hi = lo, hi
        self._ok = lo  # largest size known accepted
        self._bad = hi + 1  # smallest size known refused (hi + 1: none yet, it is never sent)
        self.trials = 0
        self.history: list[tuple[int, bool]] = []
        self.contradiction = ""
        # The guess, then its neighbour on the side the first answer points to.
        self._guess = None if guess is None else min(max(guess, lo + 1), hi)
        self._guess_phase = 0 if self._guess is not None else 2

    @property
    def done(self) -> bool:
        return bool(self.contradiction) or self._bad - self._ok <= 1

    def next_size(self) -> int | None:
        """The size to try next, or None when the limit is known."""
        if self.done:
            return None
        if self._guess_phase < 2 and self._guess is not None:
            candidate = self._guess
            if self._ok < candidate < self._bad:
                return candidate
            self._guess_phase = 2
        return (self._ok + self._bad) // 2

    def hint(self, size: int) -> None:
        """A limit the server named (a web server's close reason: "maximum size (N bytes)"): try it
        and its neighbour next, as the advertised guess is tried."""
        candidate = size if self._ok < size < self._bad else size + 1
        if self._ok < candidate < self._bad and not self.done:
            self._guess, self._guess_phase = candidate, 0

    def record(self, size: int, accepted: bool) -> None:
        """What the server did with a frame of ``size`` bytes."""
        self.trials += 1
        self.history.append((size, accepted))
        if accepted and size >= self._bad:
            self.contradiction = f"{size:,} B was accepted after {self._bad:,} B was refused"
        elif not accepted and size <= self._ok and size > self.lo:
            self.contradiction = f"{size:,} B was refused after {self._ok:,} B was accepted"
        elif accepted:
            self._ok = max(self._ok, size)
        else:
            self._bad = min(self._bad, size)
        if self._guess_phase < 2 and size == self._guess:
            # First answer: try the neighbour that pins the limit if the guess was exact.
            self._guess_phase += 1
            if self._guess_phase == 1:
                self._guess = size + 1 if accepted else size - 1
            else:
                self._guess_phase = 2

    @property
    def result(self) -> SearchResult:
        return SearchResult(
            max_accepted=self._ok,
            first_rejected=self._bad if self._bad <= self.hi else None,
            trials=self.trials,
            done=self.done,
            contradiction=self.contradiction,
        )
