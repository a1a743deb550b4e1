"""``imdiag tap --upstream URL``: relay a real worker to its real master and show every frame live."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console, RenderableType
from rich.live import Live

from imdiag.cli.common import console, fail, run_async, write_json
from imdiag.cli.files import check_writable
from imdiag.cli.options import JsonOption, parse_listen, parse_upstream
from imdiag.core.errors import ImdiagError, InputError
from imdiag.core.model import Report, TapDetails
from imdiag.core.tap import SessionClosed, SessionOpened, TapEvent, TapSettings
from imdiag.core.units import parse_duration
from imdiag.render.json_report import report_to_dict
from imdiag.render.tap import event_dict, event_line, live_title, summary_lines, type_table

if TYPE_CHECKING:
    # For type checkers only (start-up time): the runner loads the relay and the masters.
    from imdiag.runners.tap import Listening

LIVE_REFRESH_PER_S = 4
ANY_HOST = ("0.0.0.0", "::")


def _settings(upstream: str, listen: str, path: str, duration: str | None, hold_oversize: bool, insecure: bool,
              record: str | None) -> TapSettings:
    host, port, tls = parse_upstream(upstream)
    listen_host, listen_port = parse_listen(listen)
    seconds = parse_duration(duration, "--duration") if duration is not None else None
    if seconds is not None and seconds <= 0:
        raise InputError(f"invalid --duration {duration!r}: it must be more than 0")
    if insecure and not tls:
        raise InputError("--insecure applies to an https upstream")
    if not path.startswith("/"):
        raise InputError(f"invalid --path {path!r}: a path starts with '/' (Socket.IO's default is /socket.io/)")
    return TapSettings(upstream_host=host, upstream_port=port, tls=tls, listen_host=listen_host,
                       listen_port=listen_port, path=path, duration_s=seconds, hold_oversize=hold_oversize,
                       insecure=insecure, record_path=record)


class _Screen:
    """Live on a terminal (the table, and a line per session event); one JSON line per event otherwise."""

    def __init__(self, settings: TapSettings, out: Console):
        self.settings = settings
        self.out = out
        self.live: Live | None = None
        self.listening: Listening | None = None
        self.start = time.monotonic()
        self.open_sessions = 0

    def ready(self, listening: Listening) -> None:
        self.listening = listening
        where = f"{self.settings.listen_host}:{listening.port}"
        if not self.out.is_terminal:
            print(json.dumps({"event": "listening", "t": 0.0, "listen": where, "upstream": self.settings.upstream,
                              "path": self.settings.path}), flush=True)
            return
        self.out.print(f"imdiag tap: listening on http://{where}, relaying to {self.settings.upstream} "
                       f"(Engine.IO path {self.settings.path}); point the worker at http://{where}")
        self.live = Live(console=self.out, refresh_per_second=LIVE_REFRESH_PER_S, transient=True,
                         get_renderable=self.table)
        self.live.start()

    def table(self) -> RenderableType:
        assert self.listening is not None
        title = live_title(f"{self.settings.listen_host}:{self.listening.port}", self.settings.upstream,
                           self.settings.path, time.monotonic() - self.start, self.open_sessions)
        return type_table(self.listening.by_type(), title=title)

    def event(self, event: TapEvent) -> None:
        if isinstance(event, SessionOpened):
            self.open_sessions += 1
        elif isinstance(event, SessionClosed):
            self.open_sessions -= 1
        if not self.out.is_terminal:
            print(json.dumps(event_dict(event), ensure_ascii=False), flush=True)
            return
        line = event_line(event)
        if line is not None:
            (self.live.console if self.live is not None else self.out).print(line)

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def _finish(report: Report, out: Console, json_path: str | None) -> None:
    lines = summary_lines(report)
    if out.is_terminal:
        if isinstance(report.details, TapDetails):
            out.print(type_table(report.details.by_type, title="What crossed the tap"))
        for line in lines:
            out.print(f"• {line}", highlight=False)
    else:
        print(json.dumps({"event": "summary", "t": report.elapsed_s, "lines": lines}, ensure_ascii=False), flush=True)
        for line in lines:  # for people reading a log: one line each, never wrapped
            print(f"• {line}", file=sys.stderr)
    if json_path:
        try:
            write_json(json_path, report_to_dict(report))
        except ImdiagError as exc:
            raise fail(str(exc), exc.exit_code) from None
        print(f"report written to {json_path}", file=sys.stderr)


def tap_command(
    upstream: Annotated[str, typer.Option("--upstream", metavar="URL",
                                          help="The master: http(s)://host:port (no path).")],
    listen: Annotated[str, typer.Option(metavar="HOST:PORT", help="Where the tap listens; point the worker "
                                        "here. 127.0.0.1 unless told otherwise (port 0: any free port).")]
    = "127.0.0.1:3001",
    path: Annotated[str, typer.Option(metavar="PATH", help="The Engine.IO path the tap decodes (other paths "
                                      "are relayed, not decoded).")] = "/socket.io/",
    record: Annotated[str | None, typer.Option(metavar="FILE", help="Write every message the workers send to FILE "
                                               "as JSON Lines, a capture that `imdiag replay FILE` reads.")] = None,
    json_path: JsonOption = None,
    duration: Annotated[str | None, typer.Option(metavar="DURATION", help="Stop after this long, e.g. 10m, 30s "
                                                 "(default: until Ctrl-C).")] = None,
    hold_oversize: Annotated[bool, typer.Option("--hold-oversize", help="Keep frames over the master's maxPayload "
                                                "from the master and answer the worker as the master would "
                                                "(close 1009, or HTTP 413/400). Off: such frames are forwarded "
                                                "and flagged, the tap changes nothing.")] = False,
    insecure: Annotated[bool, typer.Option("--insecure", help="Accept a self-signed TLS certificate from an "
                                           "https upstream.")] = False,
) -> None:
    """Relay workers to their master, byte for byte, and show every message's size and fate live."""
    try:
        settings = _settings(upstream, listen, path, duration, hold_oversize, insecure, record)
        check_writable(json_path, "--json")
        check_writable(record, "--record")
    except ImdiagError as exc:
        raise fail(str(exc), exc.exit_code) from None
    if settings.listen_host in ANY_HOST:
        print(f"imdiag: warning: listening on {settings.listen}, every network interface: any host that reaches "
              "this port reaches the master through the tap", file=sys.stderr)
    # Imported here for start-up time: the runner loads the relay and the masters' package.
    from imdiag.runners.tap import run_tap

    out = console()
    screen = _Screen(settings, out)

    async def main() -> Report:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def stop_once(sig: signal.Signals) -> None:
            # The first Ctrl-C (or SIGTERM) ends the tap cleanly: summary and report. The next is the default.
            stop.set()
            loop.remove_signal_handler(sig)

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_once, sig)
        try:
            return await run_tap(settings, stop=stop, on_event=screen.event, on_ready=screen.ready)
        finally:
            screen.stop()

    _finish(run_async(main), out, json_path)

