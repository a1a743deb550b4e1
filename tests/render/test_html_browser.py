"""``--html`` reports of real runs, opened in headless Chromium: they load without an error, fetch
nothing, draw a heatmap (not a blank page), and hold every cell of the run's JSON report.

Errors, requests and the screenshot come from the DevTools protocol (``browser.py``): console
errors, uncaught exceptions, failed loads and log errors all count as errors.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from imdiag.render.html import _CAUSE_COLOURS, _DELIVERED

from ..conftest import require, require_node
from ..helpers import TIMEOUT, run_imdiag
from . import png
from .browser import browser_missing, load_page
from .test_html import Page

SMALL_SWEEP = ("size-sweep", "--limits", "100KB,1MB", "--sizes", "1KB,200KB",
               "--types", "worker:heartbeat,worker:messages:update")
COUNT_CELLS = "document.querySelectorAll('td.v').length"
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".pytest_cache" / "screenshots"  # to look at by hand


def _json_keys(report: dict[str, Any]) -> list[tuple[str, ...]]:
    return sorted((c["master"], c["transport"], str(c["limit"]), c["type"], c["label"],
                   "" if c["index"] is None else str(c["index"]), str(c["message_bytes"]),
                   "delivered" if c["delivered"] else "dropped", c["cause"] or "") for c in report["cells"])


def _html_keys(page: Page) -> list[tuple[str, ...]]:
    return sorted(tuple(c[f"data-{k}"] for k in ("master", "transport", "limit", "type", "label", "index", "bytes",
                                                 "verdict", "cause")) for c in page.cells)


async def _run_with_html(tmp_path: Path, name: str, *args: str) -> tuple[Path, dict[str, Any]]:
    html, report = tmp_path / f"{name}.html", tmp_path / f"{name}.json"
    code, _, stderr = await run_imdiag(*args, "--html", str(html), "--json", str(report), timeout=TIMEOUT * 6)
    assert code == 0, stderr
    return html, json.loads(report.read_text())


async def _check_in_browser(html: Path, report: dict[str, Any], name: str) -> None:
    text = html.read_text(encoding="utf-8")
    # Every cell of the run, once, with its verdict and cause (the HTML is parsed, not searched).
    page = Page(text)
    assert _html_keys(page) == _json_keys(report) and len(page.cells) == len(report["cells"]) > 0
    assert page.fetching == []

    loaded = await load_page(html.as_uri(), evaluate=COUNT_CELLS, scale=0.5, timeout=TIMEOUT * 3)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / f"{name}.png").write_bytes(loaded.png)
    assert loaded.errors == []
    assert loaded.requests == [html.as_uri()]  # the page itself, nothing else: no CDN, no font, no image
    assert loaded.value == len(report["cells"])  # the browser built every cell

    width, height, rows = png.decode(loaded.png, max_rows=900)
    colours = png.colours(rows)
    total = sum(colours.values())
    assert width == 700 and height > 300
    assert colours["#ffffff"] < 0.9 * total, "a blank page"
    # The heatmap's fills are drawn: delivered, and the refusals this run saw.
    assert colours[_DELIVERED[0]] > 500
    for cause in {c["cause"] for c in report["cells"] if c["cause"]} & {"oversize-close"}:
        assert colours[_CAUSE_COLOURS[cause][0]] > 200, cause


@pytest.fixture(autouse=True)
def _chromium() -> None:
    require(browser_missing())


async def test_a_small_sweep_opens_in_chromium(tmp_path: Path) -> None:
    html, report = await _run_with_html(tmp_path, "small-sweep", *SMALL_SWEEP)
    await _check_in_browser(html, report, "small-sweep")


async def test_the_default_sweep_and_the_incident_replay_open_in_chromium(tmp_path: Path) -> None:
    """The two reports of the issue: a default sweep, and the incident's capture on both masters."""
    require_node()
    (sweep, sweep_report), (replay, replay_report) = await asyncio.gather(
        _run_with_html(tmp_path, "default-sweep", "size-sweep"),
        _run_with_html(tmp_path, "replay-both", "replay", "fixtures/data_sync.json", "--master", "both"),
    )
    assert len(sweep_report["cells"]) == 330 and len(replay_report["cells"]) == 20
    await _check_in_browser(sweep, sweep_report, "default-sweep")
    await _check_in_browser(replay, replay_report, "replay-both")
    text = replay.read_text(encoding="utf-8")
    assert Page(text).bars[3].startswith("#3 worker:data:sync: 1,313,003 B") and "Fix advice" in text
