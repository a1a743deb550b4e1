"""Headless Chromium over the DevTools protocol: open a page, collect its errors and requests, screenshot it.

Chromium runs as a child process with its own temporary profile and the flags that keep it quiet
on a closed network; imdiag's own dependency aiohttp speaks the protocol's websocket.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
)


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def browser_missing() -> str | None:
    """None when a Chromium is on PATH, else the one-line reason to skip."""
    if find_browser() is None:
        return "Chromium is not installed (no `chromium` on PATH; Debian: apt-get install chromium)"
    return None


@dataclass
class PageLoad:
    """What happened while a page loaded."""

    errors: list[str] = field(default_factory=list)  # exceptions, console errors, failed loads
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    png: bytes = b""  # the whole page
    value: Any = None  # what the ``evaluate`` expression returned


class _Session:
    """One flat DevTools session: commands by id, events into a list."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    async def read(self) -> None:
        async for message in self.ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
            else:
                self.events.append(data)
                self.changed.set()
        for future in self.pending.values():
            future.set_exception(ConnectionError("the browser closed the DevTools connection"))

    async def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        command: dict[str, Any] = {"id": next(self.ids), "method": method, "params": params or {}}
        if session:
            command["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[command["id"]] = future
        await self.ws.send_str(json.dumps(command))
        answer = await future
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return dict(answer.get("result", {}))

    async def wait_for(self, method: str) -> dict[str, Any]:
        while True:
            for event in self.events:
                if event.get("method") == method:
                    return event
            self.changed.clear()
            await self.changed.wait()


@contextlib.asynccontextmanager
async def _browser(width: int, height: int) -> AsyncIterator[str]:
    """A headless Chromium; yields its DevTools websocket URL, kills it and its profile after."""
    profile = tempfile.mkdtemp(prefix="imdiag-chromium-")
    browser = find_browser()
    assert browser is not None
    proc = await asyncio.create_subprocess_exec(
        browser, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    drain: asyncio.Task[None] | None = None
    try:
        assert proc.stderr is not None
        lines = []
        while line := await proc.stderr.readline():
            text = line.decode(errors="replace").strip()
            lines.append(text)
            if text.startswith("DevTools listening on "):
                break
        else:
            raise RuntimeError("chromium exited before listening: " + " | ".join(lines[-5:]))

        async def keep_draining() -> None:  # an unread stderr pipe could stall the browser
            assert proc.stderr is not None
            while await proc.stderr.readline():
                pass

        drain = asyncio.create_task(keep_draining())
        yield text.removeprefix("DevTools listening on ")
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        if drain is not None:
            drain.cancel()
        shutil.rmtree(profile, ignore_errors=True)


async def load_page(url: str, *, evaluate: str | None = None, width: int = 1400, height: int = 900,
                    scale: float = 1.0, timeout: float = 30.0) -> PageLoad:
    """Open ``url``, wait for its load event, screenshot the whole page at ``scale``."""
    result = PageLoad()
    async with (asyncio.timeout(timeout), _browser(width, height) as ws_url, aiohttp.ClientSession() as http,
                http.ws_connect(ws_url, max_msg_size=0) as ws):
        cdp = _Session(ws)
        reader = asyncio.create_task(cdp.read())
        try:
            target = await cdp.send("Target.createTarget", {"url": "about:blank"})
            attached = await cdp.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
            sid = attached["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                await cdp.send(f"{domain}.enable", session=sid)
            await cdp.send("Page.navigate", {"url": url}, sid)
            await cdp.wait_for("Page.loadEventFired")
            if evaluate is not None:
                answer = await cdp.send("Runtime.evaluate", {"expression": evaluate, "returnByValue": True}, sid)
                result.value = answer.get("result", {}).get("value")
            metrics = await cdp.send("Page.getLayoutMetrics", session=sid)
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            shot = await cdp.send("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": scale},
            }, sid)
            result.png = base64.b64decode(shot["data"])
            _collect(cdp.events, result)
            with contextlib.suppress(RuntimeError, ConnectionError):
                await cdp.send("Browser.close")
        finally:
            reader.cancel()
    return result


def _collect(events: list[dict[str, Any]], result: PageLoad) -> None:
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Network.requestWillBeSent":
            result.requests.append(params["request"]["url"])
        elif method == "Network.loadingFailed":
            result.errors.append(f"load failed: {params.get('errorText')}")
        elif method == "Runtime.exceptionThrown":
            result.errors.append(f"exception: {params['exceptionDetails'].get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            result.errors.append(f"console.{params['type']}: {params.get('args')}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            result.errors.append(f"log: {params['entry'].get('text')} ({params['entry'].get('url', '')})")
