"""The HTML report without a browser: every cell once with its verdict, any cause, nothing fetched."""

from __future__ import annotations

import dataclasses
import enum
import re
from html.parser import HTMLParser
from typing import Any

from imdiag.core.gate import CellRef, Check, GateResult
from imdiag.core.model import (
    Barrier,
    CaptureInfo,
    Cause,
    Cell,
    MasterInfo,
    Observation,
    ReplayDetails,
    Report,
)
from imdiag.core.probe_result import (
    Fit,
    Handshake,
    MessageVerdict,
    ProbeResult,
    ProbeSettings,
    SizedMessage,
    TransportLimit,
    trial,
)
from imdiag.core.sizing import recommend
from imdiag.core.wire import Encoder, Transport
from imdiag.render.html import cause_class, probe_html, report_html

WS, POLLING = Transport.WEBSOCKET, Transport.POLLING


class Page(HTMLParser):
    """The parts of the page the tests look at: verdict cells, tags that could fetch, chart bars."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.cells: list[dict[str, str]] = []
        self.fetching: list[str] = []
        self.bars: list[str] = []
        self.tags: list[str] = []
        self._in_rect = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        if tag == "td" and "v" in a.get("class", "").split():
            self.cells.append(a)
        if tag in ("script", "link", "img", "iframe", "object", "embed") or "src" in a or \
                (a.get("href", "#")[:1] != "#"):
            self.fetching.append(f"<{tag} {a}>")
        if tag == "rect":
            self._in_rect = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "rect":
            self._in_rect = False

    def handle_data(self, data: str) -> None:
        if self._in_rect:
            self.bars.append(data)


def cell(type_: str, label: str, limit: int, size: int, delivered: bool, cause: Any = None, *, master: str = "python",
         transport: Transport = WS, index: int | None = None, predicted: bool | None = None, evidence: str = "") -> Cell:
    return Cell(
        type=type_, transport=transport, limit=limit, encoder=Encoder.NODE, master=master, label=label,
        wire_bytes=size, message_bytes=size, json_bytes=size - 20, js_length=size - 40,
        predicted_delivered=delivered if predicted is None else predicted, delivered=delivered, cause=cause,
        evidence=evidence or ("recorded" if delivered else f"dropped: {cause.value if cause else '?'}"),
        observed=Observation(body_bytes=size, barrier=Barrier.PASSED if delivered else Barrier.CLOSED, close_code=1009),
        index=index,
    )


def sweep_report() -> Report:
    """Two masters x two transports x two limits, natural / ladder / L-1 / L / L+1 rows."""
    cells = []
    for master in ("python", "node"):
        for transport in (WS, POLLING):
            for limit in (100_000, 1_000_000):
                cells.append(cell("worker:heartbeat", "natural", limit, 147, True, master=master, transport=transport))
                for label, size in (("ladder", 1_000), ("ladder", 500_000), ("L-1", limit - 1), ("L", limit),
                                    ("L+1", limit + 1)):
                    ok = size < limit or (size == limit and master == "node")
                    cells.append(cell("worker:data:sync", label, limit, size, ok, None if ok else Cause.OVERSIZE_CLOSE,
                                      master=master, transport=transport))
    return Report("size-sweep", {"limits": [100_000, 1_000_000], "masters": ["python", "node"]}, cells,
                  masters=[MasterInfo("python", "http://127.0.0.1:1", 100_000, {"aiohttp": "0.0.1"})])


def keys(cells: list[dict[str, str]]) -> list[tuple[str, ...]]:
    return sorted(tuple(c[f"data-{k}"] for k in ("master", "transport", "limit", "type", "label", "index", "bytes",
                                                 "verdict", "cause")) for c in cells)


def expected(report: Report) -> list[tuple[str, ...]]:
    return sorted((c.master, c.transport.value, str(c.limit), c.type, c.label, "" if c.index is None else str(c.index),
                   str(c.message_bytes), "delivered" if c.delivered else "dropped", c.cause.value if c.cause else "")
                  for c in report.cells)


def test_every_cell_is_on_the_page_once_with_its_verdict() -> None:
    report = sweep_report()
    page = Page(report_html(report))
    assert keys(page.cells) == expected(report) and len(page.cells) == len(report.cells) == 48
    # The evidence is the tooltip; the symbol and the short cause are in the cell itself.
    dropped = next(c for c in page.cells if c["data-verdict"] == "dropped")
    assert "evidence: dropped: oversize-close" in dropped["title"] and "c-oversize-close" in dropped["class"]
    text = report_html(report)
    for heading in ("size sweep: python master, websocket", "size sweep: node master, polling",
                    "The exact boundary per master", "Where the python and node masters disagree", "Settings",
                    "Versions", "aiohttp", "differs: README"):
        assert heading in text, heading


def test_the_page_fetches_nothing_and_runs_nothing() -> None:
    report = sweep_report()
    hostile = dataclasses.replace(report.cells[0], type='x"><script>alert(1)</script>', delivered=False,
                                  cause=Cause.UNKNOWN, evidence="</td><img src=http://example.com/x>")
    text = report_html(dataclasses.replace(report, cells=[hostile, *report.cells[1:]]))
    page = Page(text)
    assert page.fetching == []
    assert "script" not in page.tags and not re.search(r"url\(|@import|<link", text)
    assert len(page.cells) == len(report.cells)


class FutureCause(str, enum.Enum):
    """A cause this renderer was written without (another engineer adds causes)."""

    PROXY = "proxy-refused"


def test_any_cause_is_shown_and_named() -> None:
    causes: list[Any] = [*Cause, FutureCause.PROXY]
    cells = [cell("worker:data:sync", "natural", 1_000 * (i + 1), 2_000_000, False, c) for i, c in enumerate(causes)]
    text = report_html(Report("size-sweep", {}, cells))
    page = Page(text)
    assert sorted(c["data-cause"] for c in page.cells) == sorted(c.value for c in causes)
    assert cause_class("proxy-refused", False) == "c-other" and cause_class(None, True) == "c-delivered"
    assert "✗ proxy-refused" in text  # the swatch in the legend and the cell text name it
    # Every verdict has a symbol as well as a colour.
    assert all(c["class"].split()[1].startswith("c-") for c in page.cells)


def test_a_replay_has_a_bar_per_message_the_limit_lines_and_the_fix() -> None:
    sizes = [369, 126, 1_313_003, 126]
    cells = [cell(t, "replay", 1_000_000, size, size < 1_000_000, None if size < 1_000_000 else Cause.OVERSIZE_CLOSE,
                  master=m, transport=tr, index=i)
             for i, (t, size) in enumerate(zip(["worker:register", "worker:heartbeat", "worker:data:sync",
                                                "worker:heartbeat"], sizes, strict=True))
             for m in ("python", "node") for tr in (WS, POLLING)]
    details = ReplayDetails(CaptureInfo("fixtures/data_sync.json", "json", 4), ("a note",),
                            (recommend(1_000_000, 1_313_003, "message #2", None),))
    report = Report("replay", {"file": "fixtures/data_sync.json", "limits": [1_000_000]}, cells, details=details)
    text = report_html(report)
    page = Page(text)
    assert keys(page.cells) == expected(report)
    assert len(page.bars) == 4 and page.bars[2].startswith("#2 worker:data:sync: 1,313,003 B")
    assert "limit 1MB</text>" in text and "fix A (raise the limit)" in text and "a note" in text
    assert "replay: node master, polling" in text and "<th>message</th><th>type</th>" in text


def test_a_gate_report_frames_the_failing_cells() -> None:
    report = sweep_report()
    bad = report.cells[-1]
    ref = CellRef(bad.type, bad.transport.value, bad.limit, bad.master, bad.label, bad.index, bad.message_bytes)
    result = GateResult((Check("expect", "worker:data:sync=delivered", False, "was dropped", ref, "oversize-close"),
                         Check("expect", "worker:heartbeat=delivered", True, "ok")))
    page = Page(report_html(dataclasses.replace(report, command="gate"), result))
    framed = [c for c in page.cells if "gate-fail" in c["class"]]
    assert len(framed) == 1 and "gate: fails worker:data:sync=delivered" in framed[0]["title"]
    assert framed[0]["data-bytes"] == str(bad.message_bytes)
    assert "gate failed: 1 of 2 checks failed" in report_html(report, result)


def test_an_interrupted_or_empty_report_still_renders() -> None:
    text = report_html(Report("size-sweep", {}, [], interrupted=True))
    assert "interrupted (Ctrl-C)" in text and "No cells were measured" in text and Page(text).cells == []


def test_the_probe_page() -> None:
    ws = [trial(n, WS, Observation(body_bytes=n, barrier=Barrier.PARSED)) for n in (1_000, 49_999)]
    ws.append(trial(50_000, WS, Observation(body_bytes=50_000, close_code=1009, closed=True, barrier=Barrier.CLOSED)))
    limit = TransportLimit(WS, 80, 16 * 2**20, tuple(ws), 49_999, 50_000)
    settings = ProbeSettings(url="http://127.0.0.1:1/worker", headers=(("X-Token", "secret"),))
    message = SizedMessage(0, "worker:data:sync", "message", "/worker", Encoder.NODE, 60_000, 59_000, 50_000)
    result = ProbeResult(
        settings, Handshake(WS, "sid1", (), 25_000, 20_000, 50_000, "/worker", "nsid", 0.01), (limit,),
        messages=(MessageVerdict(message, (Fit(WS, 49_999, False, -10_001, -20.0),)),),
        explanations={WS: "beyond 49,999 B the server closes with 1009"},
    )
    text = probe_html(result)
    page = Page(text)
    trials = [c for c in page.cells if c.get("data-transport") == "websocket"]
    assert [(c["data-bytes"], c["data-verdict"]) for c in trials] == [
        ("1000", "accepted"), ("49999", "accepted"), ("50000", "rejected")]
    assert [c["data-verdict"] for c in page.cells if "data-transport" not in c] == ["over"]
    assert "49,999 B" in text and "close 1009" in text and "beyond 49,999 B" in text and "secret" not in text
    assert page.fetching == []


def test_a_live_master_that_only_parsed_a_message_says_so() -> None:
    parsed = dataclasses.replace(
        cell("worker:data:sync", "replay", 0, 5_000, False, Cause.UNKNOWN, master="live", index=0),
        observed=Observation(body_bytes=5_000, barrier=Barrier.PARSED),
    )
    page = Page(report_html(Report("replay", {"file": "c.json"}, [parsed])))
    assert [(c["data-verdict"], c["data-cause"]) for c in page.cells] == [("dropped", "unknown")]
    assert "≈ parsed" in report_html(Report("replay", {"file": "c.json"}, [parsed]))
