"""The bisection state machine: exact limits, few trials, any threshold rule."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imdiag.core.search import Bisection, SearchResult, max_trials


def run(machine: Bisection, accepts: Callable[[int], bool]) -> SearchResult:
    asked: list[int] = []
    for _ in range(200):  # far above any bound: a loop here would be a bug, not a wait
        size = machine.next_size()
        if size is None:
            break
        assert machine.lo < size <= machine.hi, size
        assert size not in asked, f"{size} asked twice"
        asked.append(size)
        machine.record(size, accepts(size))
    return machine.result


def test_an_exact_guess_pins_the_limit_in_two_trials():
    # Node: accepts n <= maxPayload.
    result = run(Bisection(99, 16 * 2**20, guess=1_000_000), lambda n: n <= 1_000_000)
    assert (result.max_accepted, result.first_rejected, result.trials) == (1_000_000, 1_000_001, 2)
    # python websocket: accepts n < maxPayload.
    result = run(Bisection(99, 16 * 2**20, guess=1_000_000), lambda n: n < 1_000_000)
    assert (result.max_accepted, result.first_rejected, result.trials) == (999_999, 1_000_000, 2)


def test_without_a_guess_it_bisects():
    result = run(Bisection(0, 2**20), lambda n: n <= 12_345)
    assert (result.max_accepted, result.first_rejected) == (12_345, 12_346)
    assert result.trials <= 21


def test_a_wrong_guess_falls_back_to_bisection():
    result = run(Bisection(99, 16 * 2**20, guess=10_000_000), lambda n: n <= 65_536)
    assert (result.max_accepted, result.first_rejected) == (65_536, 65_537)
    assert result.trials <= max_trials(99, 16 * 2**20)


def test_nothing_refused_up_to_the_cap():
    result = run(Bisection(99, 1000, guess=5000), lambda n: True)
    assert result.max_accepted == 1000 and result.first_rejected is None and result.done
    assert result.trials == 1  # the guess was clamped to the cap, which passed


def test_everything_refused():
    result = run(Bisection(99, 1000), lambda n: False)
    assert result.max_accepted == 99 and result.first_rejected == 100


def test_empty_range_is_done_at_once():
    machine = Bisection(10, 10)
    assert machine.next_size() is None and machine.result.first_rejected is None
    with pytest.raises(ValueError):
        Bisection(10, 9)


def test_a_server_that_breaks_the_threshold_is_reported():
    machine = Bisection(0, 100, guess=50)
    machine.record(50, False)
    machine.record(60, True)
    assert machine.done and machine.next_size() is None
    assert "60 B was accepted after 50 B was refused" in machine.result.contradiction


@given(
    lo=st.integers(0, 1000),
    span=st.integers(0, 2**24),
    threshold=st.integers(-10, 2**24 + 2000),
    strict=st.booleans(),
    guess=st.none() | st.integers(-10, 2**24 + 2000),
)
def test_any_threshold_is_found_exactly_within_the_bound(lo, span, threshold, strict, guess):
    hi = lo + span
    # The rule "n <= T" or "n < T"; sizes up to lo are known accepted by the caller.
    last_ok = threshold - 1 if strict else threshold

    def accepts(n: int) -> bool:
        return n < threshold if strict else n <= threshold

    result = run(Bisection(lo, hi, guess=guess), accepts)
    assert result.done and not result.contradiction
    assert result.trials <= max_trials(lo, hi)
    expected_ok = min(max(last_ok, lo), hi)
    assert result.max_accepted == expected_ok
    assert result.first_rejected == (expected_ok + 1 if expected_ok < hi else None)


def test_a_limit_the_server_names_is_tried_next():
    """uvicorn names its limit in its close reason: after the first refusal, 2 trials pin it."""
    machine = Bisection(100, 17 * 2**20)
    assert machine.next_size() == (100 + 17 * 2**20 + 1) // 2  # no guess: bisection
    machine = Bisection(100, 17 * 2**20, guess=17 * 2**20)
    first = machine.next_size()
    machine.record(first, False)
    machine.hint(16_777_216)
    assert machine.next_size() == 16_777_216
    machine.record(16_777_216, True)
    assert machine.next_size() == 16_777_217
    machine.record(16_777_217, False)
    assert machine.next_size() is None and machine.result.max_accepted == 16_777_216
    machine.hint(5)  # known already: nothing changes
    assert machine.next_size() is None
