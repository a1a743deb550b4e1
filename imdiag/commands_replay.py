"""``imdiag replay FILE`` and ``imdiag size FILE``: parse options, call, render. Nothing else.

The helpers of ``imdiag.cli`` are imported inside the commands: ``cli`` imports this module
while it is itself being imported.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from imdiag.errors import ImdiagError, InputError
from imdiag.units import format_size, parse_limit
from imdiag.wire import Encoder

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "": 1.0, "m": 60.0, "min": 60.0}


def parse_duration(text: str, option: str) -> float:
    """``2s``, ``500ms``, ``1.5`` (seconds), ``1m``."""
    raw = text.strip().lower()
    number = raw.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = raw[len(number):].strip()
    try:
        value = float(number) * _DURATION_UNITS[unit]
    except (ValueError, KeyError):
        raise InputError(f"invalid duration {text!r} for {option}: use e.g. 2s, 500ms or 1.5") from None
    if value < 0:
        raise InputError(f"invalid duration {text!r} for {option}: it must not be negative")
    return value


def parse_scales(values: list[str] | None) -> tuple[int, ...]:
    from imdiag.cli import _split

    items = _split(values) or ["1"]
    scales = []
    for item in items:
        try:
            scale = int(item.lower().removeprefix("x"))
        except ValueError:
            raise InputError(f"invalid scale {item!r}: use whole numbers, e.g. --scale 1,2,4,8") from None
        if not 1 <= scale <= 1000:
            raise InputError(f"invalid scale {item!r}: use 1 to 1000")
        scales.append(scale)
    return tuple(sorted(set(scales)))


def parse_headers(values: list[str] | None) -> tuple[tuple[str, str], ...]:
    out = []
    for value in values or []:
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            raise InputError(f"invalid header {value!r}: use 'Name: value'")
        out.append((name.strip(), content.strip()))
    return tuple(out)


def parse_auth(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        raise InputError(f"invalid --auth {value!r}: expected a JSON object, e.g. '{{\"token\": \"...\"}}'") from None
    if not isinstance(parsed, dict):
        raise InputError(f"invalid --auth {value!r}: expected a JSON object")
    return json.dumps(parsed, separators=(",", ":"), ensure_ascii=False)


def _choice(value: str, choices: tuple[str, ...], option: str) -> str:
    if value not in choices:
        raise InputError(f"invalid {option} {value!r}; use {' or '.join(choices)}")
    return value


from imdiag.commands_gate import (  # noqa: E402
    BaselineOption,
    ExpectOption,
    JunitOption,
    MarkdownOption,
    MaxFillOption,
    MaxGrowthOption,
    gate_options,
)


def replay_command(
    file: Annotated[str, typer.Argument(metavar="FILE", help="A capture: JSON array, {meta, messages} or JSON Lines.")],
    limits: Annotated[
        list[str] | None,
        typer.Option("--limit", "--limits", "-l", metavar="LIMITS", help="Server limits (maxHttpBufferSize), "
                     "comma-separated. Default: 1MB"),
    ] = None,
    transports: Annotated[
        list[str] | None, typer.Option("--transports", "--transport", metavar="TRANSPORTS",
                                       help="websocket, polling (default: both).")
    ] = None,
    encoder: Annotated[Encoder, typer.Option(help="JSON encoder of the sender: node (JSON.stringify) or python.")] = Encoder.NODE,
    master: Annotated[str, typer.Option(metavar="python|node|both", help="Which real server plays the master.")] = "python",
    namespace: Annotated[str | None, typer.Option(help="Namespace to send in (default: the capture's, else /).")] = None,
    event: Annotated[str, typer.Option(help="Event for records that name none.")] = "message",
    timing: Annotated[str, typer.Option(metavar="fast|original", help="fast: one message at a time; original: "
                                        "the capture's gaps (capped by --max-gap), polling batches as a client would.")] = "fast",
    max_gap: Annotated[str, typer.Option("--max-gap", metavar="DURATION", help="Longest gap kept with --timing original.")] = "2s",
    client_batch: Annotated[
        str, typer.Option("--client-batch", metavar="split|whole", help="Polling flushes: split at the server's "
                          "maxPayload (engine.io-client >= 6.1) or whole (older clients, python-engineio).")
    ] = "split",
    scale: Annotated[list[str] | None, typer.Option("--scale", metavar="SCALES", help="Repeat payload list items, "
                                                    "e.g. 1,2,4,8: at which scale does each type drop?")] = None,
    url: Annotated[str | None, typer.Option(metavar="URL", help="A live master instead of reference masters, "
                                            "namespace in the path: http://host:3000/worker")] = None,
    path: Annotated[str, typer.Option(help="Engine.IO path (with --url).")] = "/socket.io/",
    header: Annotated[list[str] | None, typer.Option("--header", metavar="'NAME: VALUE'", help="HTTP header (with --url), repeatable.")] = None,
    auth: Annotated[str | None, typer.Option(metavar="JSON", help="Socket.IO auth payload (with --url).")] = None,
    insecure: Annotated[bool, typer.Option(help="Accept self-signed TLS certificates (with --url).")] = False,
    ack: Annotated[bool, typer.Option(help="Send with an ack id and count a message delivered when the live "
                                      "master acknowledges it (with --url).")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for any one answer.")] = 10.0,
    json_path: Annotated[str | None, typer.Option("--json", metavar="FILE", help="Write the JSON report to this file.")] = None,
    expect: ExpectOption = None,
    max_fill: MaxFillOption = None,
    baseline: BaselineOption = None,
    max_growth: MaxGrowthOption = None,
    junit: JunitOption = None,
    markdown: MarkdownOption = None,
) -> None:
    """Replay captured messages against reference masters (or a live one) and say which arrive."""
    from imdiag.cli import (
        _console,
        check_timeout,
        fail,
        parse_masters,
        parse_namespace,
        parse_sizes,
        parse_transports,
        run_measured,
        timeout_scale,
    )
    from imdiag.fixtures import open_fixture
    from imdiag.render.replay import replay_renderables
    from imdiag.replay.run import CLIENT_BATCHES, TIMINGS, ReplaySettings, run_replay

    try:
        check_timeout(timeout)
        gate = gate_options(expect, max_fill, baseline, max_growth, junit, markdown, json_path=json_path)
        settings = ReplaySettings(
            path=file,
            limits=parse_sizes(limits, (1_000_000,), limit=True),
            transports=parse_transports(transports),
            encoder=encoder,
            masters=parse_masters(master),
            namespace=parse_namespace(namespace) if namespace is not None else None,
            event=event,
            timing=_choice(timing, TIMINGS, "--timing"),
            max_gap_s=parse_duration(max_gap, "--max-gap"),
            client_batch=_choice(client_batch, CLIENT_BATCHES, "--client-batch"),
            scales=parse_scales(scale),
            timeout_s=timeout * timeout_scale(),
            url=url,
            path_prefix=path,
            headers=parse_headers(header),
            auth_json=parse_auth(auth),
            insecure=insecure,
            ack=ack,
        )
        if url is None and (header or auth or insecure or ack):
            raise InputError("--header, --auth, --insecure and --ack apply to a live master: add --url")
        open_fixture(file)  # a malformed capture is one line, before any master starts
    except ImdiagError as exc:
        raise fail(str(exc), exc.exit_code) from None

    if settings.timing == "original":
        _console(stderr=True).print(
            f"timing original: gaps longer than {settings.max_gap_s:g} s are shortened to {settings.max_gap_s:g} s"
        )
    run_measured(
        "replay", "replaying", settings.to_dict(),
        lambda cells, measured, planned, note: run_replay(settings, cells, on_cell=measured, on_planned=planned),
        replay_renderables, json_path, gate,
    )


def size_command(
    file: Annotated[str, typer.Argument(metavar="FILE", help="A capture: JSON array, {meta, messages} or JSON Lines.")],
    limit: Annotated[str, typer.Option("--limit", "-l", help="The server limit to compare with.")] = "1MB",
    namespace: Annotated[str | None, typer.Option(help="Namespace the frames are sent in (default: each record's, else /).")] = None,
    event: Annotated[str, typer.Option(help="Event for records that name none.")] = "message",
) -> None:
    """Sizes of each captured message by every measure, against a limit. No network."""
    from imdiag.cli import _console, fail, parse_namespace
    from imdiag.fixtures import open_fixture
    from imdiag.render.replay import size_renderables
    from imdiag.sizing import MessageSize, list_profile, recommend, size_of

    try:
        parsed_limit = parse_limit(limit)
        ns = parse_namespace(namespace) if namespace is not None else None
        fixture = open_fixture(file)
        sizes: list[MessageSize] = []
        largest: tuple[int, str, int] | None = None
        profile = None
        for captured in fixture.messages():
            message_ns = ns or captured.namespace or "/"
            size = size_of(captured, event=event, namespace=message_ns)
            sizes.append(size)
            frame = size.of(Encoder.NODE).frame_bytes
            if largest is None or frame > largest[2]:
                largest = (captured.index, captured.type, frame)
                profile = list_profile(captured, encoder=Encoder.NODE, event=event, namespace=message_ns)
    except ImdiagError as exc:
        raise fail(str(exc), exc.exit_code) from None
    recommendation = None
    if largest is not None:
        recommendation = recommend(parsed_limit, largest[2], f"message #{largest[0]} ({largest[1]}, node encoder)", profile)
    out = _console()
    for renderable in size_renderables(sizes, parsed_limit, file, recommendation):
        out.print(renderable)
    if largest is not None and largest[2] > parsed_limit:
        out.print(f"largest frame {largest[2]:,} B is over the limit {format_size(parsed_limit)}", style="dim")
