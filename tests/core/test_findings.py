"""What a reader must not miss, with three masters and a limit that counts characters."""

from __future__ import annotations

from imdiag.core.findings import boundary_rows, disagreement_groups, disagreement_title, findings
from imdiag.core.model import Barrier, Cause, Cell, Observation, Report
from imdiag.core.wire import Encoder, LimitUnit, Transport
from imdiag.render.terminal import disagreement_table

WS, POLLING = Transport.WEBSOCKET, Transport.POLLING
LIMIT = 20_000


def cell(master: str, transport: Transport, label: str, size: int, delivered: bool, *, chars: int | None = None,
         unit: LimitUnit = LimitUnit.BYTES) -> Cell:
    cause = None if delivered else Cause.OVERSIZE_CLOSE
    obs = Observation(body_bytes=size, message_bytes=size, message_chars=chars if chars is not None else size,
                      barrier=Barrier.PASSED if delivered else Barrier.CLOSED)
    return Cell(type="worker:messages:update", transport=transport, limit=LIMIT, encoder=Encoder.NODE, master=master,
                label=label, wire_bytes=size, message_bytes=size, json_bytes=size - 20, js_length=size - 40,
                predicted_delivered=delivered, delivered=delivered, cause=cause, evidence="", observed=obs,
                limit_unit=unit)


def test_three_masters_disagree_side_by_side_and_characters_are_a_finding():
    cells = [
        cell("python", WS, "L", LIMIT, False), cell("node", WS, "L", LIMIT, True), cell("asgi", WS, "L", LIMIT, True,
                                                                                          unit=LimitUnit.CHARACTERS),
        # The ASGI master's boundary in characters: more bytes than the limit, delivered.
        cell("asgi", WS, "L+1", 23_698, False, chars=LIMIT + 1, unit=LimitUnit.CHARACTERS),
        cell("asgi", WS, "ladder", 23_697, True, chars=LIMIT, unit=LimitUnit.CHARACTERS),
        cell("asgi", POLLING, "L+1", LIMIT + 1, False),
    ]
    (group,) = disagreement_groups(cells)
    assert [group.side(m).delivered for m in ("python", "node", "asgi")] == [False, True, True]
    assert disagreement_title(cells, 1) == "Where the python, node and asgi masters disagree (1 frame)"
    table = disagreement_table(cells)
    assert table is not None and [c.header for c in table.columns][-3:] == ["python master", "node master",
                                                                             "asgi master"]
    notes = findings(Report("size-sweep", {}, cells))
    (chars,) = [n for n in notes if "counts characters" in n]
    assert chars.startswith("asgi master, websocket, limit 20KB: the limit counts characters, not bytes: 1 frame(s)")
    assert "23,697 B (20,000 characters)" in chars and "polling counts bytes" in chars
    rows = {(r.master, r.transport): r for r in boundary_rows(cells)}
    assert rows[("asgi", WS)].limit_text == "20,000 characters" and rows[("asgi", POLLING)].limit_text == "20,000"
    assert [r.master for r in boundary_rows(cells)] == ["python", "node", "asgi", "asgi"]
