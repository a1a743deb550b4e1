"""``imdiag probe --url``: parse the options, run the probe, render it. Nothing is measured here."""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated

import typer

from imdiag.cli.common import (
    console,
    fail,
    print_diagnosed,
    run_async,
    scaled_timeout,
    write_json,
    write_text,
)
from imdiag.cli.files import check_writable
from imdiag.cli.options import (
    AuthOption,
    EncoderOption,
    EventOption,
    HeaderOption,
    HtmlOption,
    InsecureOption,
    JsonOption,
    PathOption,
    TimeoutOption,
    TransportsOption,
    parse_auth,
    parse_event,
    parse_headers,
    parse_path,
    parse_transports,
    parse_url,
)
from imdiag.core.captures import Captured, capture_namespace, open_capture
from imdiag.core.errors import ExitCode, ImdiagError, InputError
from imdiag.core.probe_explain import largest_profile, size_messages
from imdiag.core.probe_frames import PROBE_TYPE
from imdiag.core.probe_result import ProbeResult, ProbeSettings, SizedMessage, exit_code
from imdiag.core.units import parse_size
from imdiag.core.wire import Encoder
from imdiag.render.html import probe_html
from imdiag.render.json_report import probe_not_started_to_dict, probe_to_dict
from imdiag.render.probe import probe_renderables


def _captured(path: str, url_namespace: str) -> tuple[list[Captured], str]:
    """``--message FILE``'s messages and the namespace they are sized in: the URL's when it names
    one, else by the rule of every command (the capture's meta.namespace, else its first record's)."""
    capture = open_capture(path)
    return list(capture.messages()), capture_namespace(capture, url_namespace if url_namespace != "/" else None)


def load_messages(path: str, *, encoder: Encoder, event: str, url_namespace: str) -> tuple[SizedMessage, ...]:
    captured, namespace = _captured(path, url_namespace)
    return size_messages(captured, encoder=encoder, event=event, namespace=namespace)


def _with_messages(settings: ProbeSettings, path: str, encoder: Encoder) -> ProbeSettings:
    """--message: every message sized (errors in the file reported before anything is sent), and
    the largest one's growing list, for fix B's chunks."""
    captured, namespace = _captured(path, settings.namespace)
    sized = size_messages(captured, encoder=encoder, event=settings.event, namespace=namespace)
    profile = largest_profile(captured, sized, encoder=encoder, event=settings.event, namespace=namespace)
    return dataclasses.replace(settings, messages=sized, message_profile=profile)


def probe_settings(url: str, path: str, event: str, transport: list[str] | None, auth: str | None,
                   header: list[str] | None, insecure: bool, timeout: float, max_bytes: str, probe_type: str,
                   ack: bool, message: str | None, encoder: Encoder) -> ProbeSettings:
    """The probe's options, parsed and checked (InputError, exit 2); ``message`` sized, never sent."""
    if not probe_type:
        raise InputError("--type must not be empty")
    limit = parse_size(max_bytes)
    if limit < 1:
        raise InputError("--max-bytes must be at least 1 byte")
    headers = parse_headers(header)
    settings = ProbeSettings(
        url=parse_url(url, headers), path=parse_path(path), event=parse_event(event),
        transports=parse_transports(transport), auth_json=parse_auth(auth), headers=headers, insecure=insecure,
        timeout_s=scaled_timeout(timeout), max_bytes=limit, probe_type=probe_type, ack=ack, encoder=encoder,
        message_path=message,
    )
    if message is not None:  # sized, never sent
        settings = _with_messages(settings, message, encoder)
    return settings


def _finish(result: ProbeResult, json_path: str | None, html_path: str | None) -> None:
    out = console()
    for renderable in probe_renderables(result):
        out.print(renderable)
    try:
        if json_path:
            write_json(json_path, probe_to_dict(result))
        if html_path:
            write_text(html_path, probe_html(result), "HTML report")
    except ImdiagError as exc:
        raise fail(str(exc), exc.exit_code) from None
    for path in (json_path, html_path):
        if path:
            console(stderr=True).print(f"report written to {path}")
    code = exit_code(result)
    if code is ExitCode.INTERRUPTED:
        raise fail("interrupted (Ctrl-C): the results above are partial", code)
    if code is ExitCode.TARGET:
        first = result.undiagnosed[0]
        raise fail(f"{first.transport.value}: the limit could not be measured: {first.stopped}", code)
    if code is ExitCode.DIAGNOSED:
        print_diagnosed("; ".join(f"{t.transport.value} not measured ({t.diagnosis.value if t.diagnosis else '?'})"
                                  for t in result.stopped) + ": see the summary above")
        raise typer.Exit(int(code))


def probe_command(
    url: Annotated[str, typer.Option("--url", metavar="URL",
                                     help="The master, with the namespace as path: http://host:3000/worker.")],
    path: PathOption = "/socket.io/",
    event: EventOption = "message",
    transport: TransportsOption = None,
    auth: AuthOption = None,
    header: HeaderOption = None,
    insecure: InsecureOption = False,
    timeout: TimeoutOption = 10.0,
    max_bytes: Annotated[str, typer.Option("--max-bytes", metavar="SIZE", help="Never send a frame larger than this.")] = "16MiB",
    probe_type: Annotated[str, typer.Option("--type", metavar="TYPE", help="The probe messages' type.")] = PROBE_TYPE,
    ack: Annotated[bool, typer.Option("--ack", help="The master acknowledges messages: prove acceptance by its ack.")] = False,
    message: Annotated[
        str | None, typer.Option("--message", metavar="FILE", help="Messages to judge against the measured limits "
                                 "(a JSON message, a JSON array or JSON Lines); never sent.")
    ] = None,
    encoder: EncoderOption = Encoder.NODE,
    json_path: JsonOption = None,
    html_path: HtmlOption = None,
) -> None:
    """Find a live master's exact frame limit per transport, and how it fails beyond it, safely."""
    # Imported here for start-up time: the runner loads aiohttp.
    from imdiag.runners.probe import ProbeProgress, partial_result, probe

    try:
        settings = probe_settings(url, path, event, transport, auth, header, insecure, timeout, max_bytes, probe_type,
                             ack, message, encoder)
        check_writable(json_path, "--json")
        check_writable(html_path, "--html")
    except ImdiagError as exc:
        raise fail(str(exc), exc.exit_code) from None

    progress = ProbeProgress()
    try:
        result = run_async(lambda: probe(settings, progress))
    except KeyboardInterrupt:
        partial = partial_result(settings, progress)
        if partial is None:
            written = ""
            if json_path:  # the report says so too: a script waiting for it is not left without one
                try:
                    write_json(json_path, probe_not_started_to_dict(settings, time.monotonic() - progress.start))
                    written = f"; {json_path} says so"
                except ImdiagError as exc:
                    written = f"; {exc}"
            raise fail(f"interrupted before the handshake: nothing was measured{written}",
                       ExitCode.INTERRUPTED) from None
        result = partial
    _finish(result, json_path, html_path)
