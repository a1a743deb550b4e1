"""``imdiag probe --url``: parse the options, run the probe, render it. Nothing is measured here."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated
from urllib.parse import urlsplit

import typer

from imdiag.errors import ExitCode, ImdiagError, InputError
from imdiag.files import check_writable
from imdiag.probe.frames import PROBE_TYPE
from imdiag.probe.result import ProbeSettings, SizedMessage
from imdiag.units import parse_size
from imdiag.wire import Encoder


def parse_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        raise InputError(f"invalid --url {url!r}: expected http(s)://host:port[/namespace], e.g. http://127.0.0.1:3000/worker")
    try:
        parts.port  # noqa: B018 - raises on a port out of range or not a number
    except ValueError:
        raise InputError(f"invalid --url {url!r}: the port is not a number from 0 to 65535") from None
    if parts.query or parts.fragment:
        raise InputError(f"invalid --url {url!r}: no query or fragment; the namespace is the URL path")
    return url


def parse_headers(values: list[str] | None) -> tuple[tuple[str, str], ...]:
    out = []
    for value in values or []:
        name, sep, content = value.partition(":")
        name = name.strip()
        if not sep or not name or any(c in name for c in " \t\r\n") or any(c in content for c in "\r\n"):
            raise InputError(f"invalid --header {value!r}: expected 'Name: value', e.g. 'Authorization: Bearer ...'")
        out.append((name, content.strip()))
    return tuple(out)


_JSON_KINDS = {type(None): "null", bool: "boolean", int: "number", float: "number", str: "string", list: "array"}
# Socket.IO clients refuse to emit these (socket.io-client: "... is a reserved event name").
RESERVED_EVENTS = ("connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener")


def parse_event(event: str) -> str:
    if not event:
        raise InputError("--event must not be empty")
    if event in RESERVED_EVENTS:
        raise InputError(f"invalid --event {event!r}: a reserved Socket.IO event name, which clients cannot emit")
    return event


def parse_auth(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        auth = json.loads(value)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid --auth JSON: {exc.msg} at column {exc.colno}; expected an object, "
                         'e.g. \'{"token": "..."}\'') from None
    if not isinstance(auth, dict):
        kind = _JSON_KINDS.get(type(auth), type(auth).__name__)
        raise InputError(f"invalid --auth: a JSON {kind} is not an object; Socket.IO auth is an "
                         'object, e.g. \'{"token": "..."}\'')
    return json.dumps(auth, ensure_ascii=False, separators=(",", ":"))


def load_messages(path: str, *, encoder: Encoder, event: str, namespace: str) -> tuple[SizedMessage, ...]:
    from imdiag.fixtures import load_messages as load_captured
    from imdiag.probe.verdicts import size_messages

    return size_messages(load_captured(path), encoder=encoder, event=event, namespace=namespace)


def probe_command(
    url: Annotated[str, typer.Option("--url", metavar="URL",
                                     help="The master, with the namespace as path: http://host:3000/worker.")],
    path: Annotated[str, typer.Option(metavar="PATH", help="Engine.IO path.")] = "/socket.io/",
    event: Annotated[str, typer.Option(metavar="EVENT", help="Event name the probe messages are emitted on.")] = "message",
    transport: Annotated[
        list[str] | None, typer.Option("--transport", metavar="TRANSPORTS", help="websocket, polling (default: both).")
    ] = None,
    auth: Annotated[str | None, typer.Option("--auth", metavar="JSON", help="Socket.IO auth payload, a JSON object.")] = None,
    header: Annotated[
        list[str] | None, typer.Option("--header", "-H", metavar="'NAME: VALUE'", help="Extra HTTP header; repeatable.")
    ] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Accept self-signed TLS certificates.")] = False,
    timeout: Annotated[float, typer.Option(metavar="SECONDS", help="Seconds to wait for any one answer.")] = 10.0,
    max_bytes: Annotated[str, typer.Option("--max-bytes", metavar="SIZE", help="Never send a frame larger than this.")] = "16MiB",
    probe_type: Annotated[str, typer.Option("--type", metavar="TYPE", help="The probe messages' type.")] = PROBE_TYPE,
    ack: Annotated[bool, typer.Option("--ack", help="The master acknowledges messages: prove acceptance by its ack.")] = False,
    message: Annotated[
        str | None, typer.Option("--message", metavar="FILE", help="Messages to judge against the measured limits "
                                 "(a JSON message, a JSON array or JSON Lines); never sent.")
    ] = None,
    encoder: Annotated[Encoder, typer.Option(help="JSON encoder of the sender of --message: node or python.")] = Encoder.NODE,
    json_path: Annotated[str | None, typer.Option("--json", metavar="FILE", help="Write the JSON report to this file.")] = None,
) -> None:
    """Find a live master's exact frame limit per transport, and how it fails beyond it, safely."""
    from imdiag.cli import _console, check_timeout, fail, parse_transports, run_async, timeout_scale, write_report
    from imdiag.probe.result import to_report
    from imdiag.probe.run import ProbeProgress, partial_result, probe
    from imdiag.render.probe import probe_renderables

    try:
        check_timeout(timeout)
        if not probe_type:
            raise InputError("--type must not be empty")
        limit = parse_size(max_bytes)
        if limit < 1:
            raise InputError("--max-bytes must be at least 1 byte")
        settings = ProbeSettings(
            url=parse_url(url),
            path=path,
            event=parse_event(event),
            transports=parse_transports(transport),
            auth_json=parse_auth(auth),
            headers=parse_headers(header),
            insecure=insecure,
            timeout_s=timeout * timeout_scale(),
            max_bytes=limit,
            probe_type=probe_type,
            ack=ack,
            encoder=encoder,
            message_path=message,
        )
        check_writable(json_path, "--json")
        if message is not None:
            # Sized (and any error in the file reported) before anything is sent; it is never sent.
            sized = load_messages(message, encoder=encoder, event=event, namespace=settings.namespace)
            settings = dataclasses.replace(settings, messages=sized)
    except ImdiagError as exc:
        raise fail(str(exc), exc.exit_code) from None

    progress = ProbeProgress()
    try:
        result = run_async(lambda: probe(settings, progress))
    except KeyboardInterrupt:
        partial = partial_result(settings, progress)
        if partial is None:
            raise fail("interrupted before the handshake: nothing was measured", ExitCode.INTERRUPTED) from None
        result = partial
    out = _console()
    for renderable in probe_renderables(result):
        out.print(renderable)
    try:
        write_report(json_path, to_report(result))
    except ImdiagError as exc:
        raise fail(str(exc), exc.exit_code) from None
    if json_path:
        _console(stderr=True).print(f"report written to {json_path}")
    if result.interrupted:
        raise fail("interrupted (Ctrl-C): the results above are partial", ExitCode.INTERRUPTED)
    if result.stopped:
        first = result.stopped[0]
        raise fail(f"{first.transport.value}: the limit could not be measured: {first.stopped}", ExitCode.TARGET)

