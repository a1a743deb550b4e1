"""How a sent message is found in a master's ledger: one rule for imdiag's client and the library lanes."""

from __future__ import annotations

from imdiag.core.entries import Arrival, Connect, ledger_key, match_arrivals


def _arrival(seq: int, message_id: str | None, digest: str = "") -> Arrival:
    return Arrival(seq, 0.0, "s", "/", "message", "t", message_id, digest, 10)


def test_a_message_is_found_by_its_id_else_by_its_digest() -> None:
    assert ledger_key("m1", "d1") == ("id", "m1")
    assert ledger_key(None, "d1") == ("digest", "d1")
    assert ledger_key(None, None) is None and ledger_key(None, "") is None
    entries = [Connect(0, 0.0, "s", "/"), _arrival(1, "m1", "d1"), _arrival(2, None, "d2")]
    found = match_arrivals(entries, [(ledger_key(None, "d1"), 0), (ledger_key("m2", "d2"), 0),
                                     (ledger_key(None, "d2"), 0), (None, 0)])
    assert [a.seq if a else None for a in found] == [1, None, 2, None]


def test_twins_take_successive_arrivals_each_after_it_was_sent() -> None:
    """Identical messages (a retried one) take the arrivals in order; none takes an arrival from
    before it was sent, nor one a twin took."""
    entries = [_arrival(0, "m"), _arrival(1, "x"), _arrival(2, "m"), _arrival(3, "m")]
    key = ledger_key("m", None)
    assert [a.seq if a else None for a in match_arrivals(entries, [(key, 0), (key, 0), (key, 0), (key, 0)])] == [
        0, 2, 3, None]
    assert [a.seq if a else None for a in match_arrivals(entries, [(key, 1), (key, 3)])] == [2, 3]
    assert [a.seq if a else None for a in match_arrivals(entries, [(key, 3), (key, 3)])] == [3, None]
