"""The command line: parse, call, render. No measuring or judging happens here.

Exit codes: 0 done (or gate passed), 1 gate failed, 2 usage or input error,
3 target could not be reached or set up, 130 interrupted (partial report written).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from imdiag import __version__
from imdiag.catalog import TYPE_NAMES, message_type
from imdiag.errors import ExitCode, ImdiagError, InputError
from imdiag.files import write_atomic
from imdiag.model import Cell, MasterRun, Report
from imdiag.plan import DEFAULT_LADDER, DEFAULT_LIMITS, MASTER_SERVERS, SweepSettings
from imdiag.render.json_report import report_to_dict
from imdiag.render.terminal import sweep_renderables
from imdiag.units import format_size, parse_limit, parse_size
from imdiag.wire import Encoder, Transport

EXIT_CODES_HELP = (
    "Exit codes: 0 done, 1 gate failed, 2 usage or input error, "
    "3 target unreachable or could not be set up, 130 interrupted (partial report written)."
)

app = typer.Typer(
    name="imdiag",
    help="Find out, with evidence, why Socket.IO messages never reach the server. " + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

T = TypeVar("T")
MAX_TIMEOUT_S = 3600.0  # an hour for one answer is already no answer


def _console(stderr: bool = False) -> Console:
    console = Console(stderr=stderr, highlight=False, soft_wrap=False)
    if not console.is_terminal:
        # Piped or redirected: wide enough that tables stay one line per row.
        console = Console(stderr=stderr, highlight=False, soft_wrap=False, width=160)
    return console


def fail(message: str, code: ExitCode) -> typer.Exit:
    print(f"imdiag: error: {message}", file=sys.stderr)  # one line, never wrapped
    return typer.Exit(int(code))


def run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine; ImdiagError becomes a one-line message and its exit code."""
    try:
        return asyncio.run(make())
    except ImdiagError as exc:
        raise fail(str(exc), exc.exit_code) from None


def _split(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for value in values or []:
        out += [v.strip() for v in value.split(",") if v.strip()]
    return out


def parse_sizes(values: list[str] | None, default: tuple[int, ...], *, limit: bool = False) -> tuple[int, ...]:
    items = _split(values)
    if not items:
        return default
    parse = parse_limit if limit else parse_size
    sizes = tuple(sorted({parse(v) for v in items}))
    if not limit and sizes and sizes[0] < 1:
        raise InputError("sizes must be at least 1 byte")
    return sizes


def parse_types(values: list[str] | None) -> tuple[str, ...]:
    items = _split(values)
    if not items:
        return TYPE_NAMES
    return tuple(message_type(v).name for v in items)


def parse_transports(values: list[str] | None) -> tuple[Transport, ...]:
    items = _split(values) or [t.value for t in Transport]
    out = []
    for item in items:
        try:
            out.append(Transport(item))
        except ValueError:
            raise InputError(f"unknown transport {item!r}; use websocket, polling or both") from None
    return tuple(dict.fromkeys(out))


def parse_namespace(value: str) -> str:
    if not value.startswith("/"):
        raise InputError(f"invalid namespace {value!r}: a namespace starts with '/' (e.g. /worker)")
    return value


def parse_masters(value: str) -> tuple[str, ...]:
    choices = {"python": ("python",), "node": ("node",), "both": MASTER_SERVERS}
    if value not in choices:
        raise InputError(f"unknown master {value!r}; use python, node or both")
    return choices[value]


def write_report(path: str | None, report: Report) -> None:
    if not path:
        return
    try:
        write_atomic(path, json.dumps(report_to_dict(report), ensure_ascii=False, indent=2) + "\n")
    except OSError as exc:
        raise InputError(f"cannot write report {path}: {exc.strerror or exc}") from None


def progress_for(console: Console) -> Progress | None:
    if not console.is_terminal:
        return None
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    )


MeasureFn = Callable[
    [list[Cell], Callable[[Cell], None], Callable[[int], None], Callable[[str], None]], Coroutine[Any, Any, Report]
]


def run_measured(
    command: str, description: str, settings: dict[str, Any], measure: MeasureFn,
    render: Callable[[Report], list[RenderableType]], json_path: str | None, gate: GateOptions,
) -> NoReturn:
    """Run a measuring command: a progress bar on a terminal (plain progress lines otherwise),
    the tables, the gate and the report. Ctrl-C still prints and writes what was measured."""
    out = _console()
    err = _console(stderr=True)
    cells: list[Cell] = []
    progress = progress_for(err)
    task_id = None

    def planned(total: int) -> None:
        nonlocal task_id
        if progress is not None:
            task_id = progress.add_task(description, total=total)

    def measured(cell: Cell) -> None:
        if progress is not None and task_id is not None:
            progress.advance(task_id)

    def note(line: str) -> None:
        if progress is None:  # not a terminal: plain lines, for CI logs
            err.print(line)

    report: Report
    try:
        if progress is not None:
            progress.start()
        try:
            report = run_async(lambda: measure(cells, measured, planned, note))
        finally:
            if progress is not None:
                progress.stop()
    except KeyboardInterrupt:
        report = Report(command, settings, list(cells), interrupted=True)
        for renderable in render(report):
            out.print(renderable)
        try:
            write_report(json_path, report)
        except ImdiagError as exc:
            raise fail(str(exc), exc.exit_code) from None
        if json_path:
            err.print(f"imdiag: interrupted; {len(cells)} measured cells written to {json_path}")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    for renderable in render(report):
        out.print(renderable)
    raise typer.Exit(finish_with_gate(report, gate, out))


def check_timeout(seconds: float) -> None:
    """--timeout: a finite number of seconds, more than 0 (not inf, not nan)."""
    if not math.isfinite(seconds) or seconds <= 0:
        raise InputError(f"invalid --timeout {seconds:g}: use a number of seconds more than 0, e.g. 10")
    if seconds > MAX_TIMEOUT_S:
        raise InputError(f"invalid --timeout {seconds:g}: at most {MAX_TIMEOUT_S:g} seconds")


def timeout_scale() -> float:
    """CI may scale every timeout (IMDIAG_TIMEOUT_SCALE=2) without touching the tests."""
    try:
        return float(os.environ.get("IMDIAG_TIMEOUT_SCALE", "1"))
    except ValueError:
        return 1.0


# --- commands --------------------------------------------------------------------------------

from imdiag.commands_gate import (  # noqa: E402
    BaselineOption,
    ExpectOption,
    JunitOption,
    MarkdownOption,
    MaxFillOption,
    GateOptions,
    MaxGrowthOption,
    finish_with_gate,
    gate_options,
)


@app.command("size-sweep")
def size_sweep(
    limits: Annotated[
        list[str] | None,
        typer.Option("--limits", "-l", metavar="LIMITS", help="Server buffer limits (maxHttpBufferSize), comma-separated. "
                     f"Default: {','.join(format_size(x) for x in DEFAULT_LIMITS)}"),
    ] = None,
    sizes: Annotated[
        list[str] | None,
        typer.Option("--sizes", "-s", metavar="SIZES", help="Ladder of frame sizes for the growing types. "
                     f"Default: {','.join(format_size(x) for x in DEFAULT_LADDER)}"),
    ] = None,
    types: Annotated[list[str] | None, typer.Option("--types", "-t", metavar="TYPES", help="Message types (default: all seven).")] = None,
    transports: Annotated[
        list[str] | None, typer.Option("--transports", metavar="TRANSPORTS", help="websocket, polling (default: both).")
    ] = None,
    encoder: Annotated[Encoder, typer.Option(help="JSON encoder of the sender: node (JSON.stringify) or python.")] = Encoder.NODE,
    master: Annotated[
        str, typer.Option(metavar="python|node|both", help="Which real server plays the master: python (python-socketio, embedded), "
                          "node (the pinned Node.js socket.io) or both, side by side.")
    ] = "python",
    namespace: Annotated[str, typer.Option(help="Socket.IO namespace, e.g. /worker.")] = "/",
    event: Annotated[str, typer.Option(help="Event name the worker emits on.")] = "message",
    boundary: Annotated[bool, typer.Option(help="Also send frames of exactly L-1, L and L+1 bytes.")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the payload generator.")] = 1,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for any one answer.")] = 10.0,
    json_path: Annotated[str | None, typer.Option("--json", metavar="FILE", help="Write the JSON report to this file.")] = None,
    expect: ExpectOption = None,
    max_fill: MaxFillOption = None,
    baseline: BaselineOption = None,
    max_growth: MaxGrowthOption = None,
    junit: JunitOption = None,
    markdown: MarkdownOption = None,
) -> None:
    """Send every message type at increasing sizes to reference masters at several limits."""
    try:
        settings = SweepSettings(
            limits=parse_sizes(limits, DEFAULT_LIMITS, limit=True),
            sizes=parse_sizes(sizes, DEFAULT_LADDER),
            types=parse_types(types),
            transports=parse_transports(transports),
            encoder=encoder,
            namespace=parse_namespace(namespace),
            event=event,
            seed=seed,
            boundary=boundary,
            timeout_s=timeout * timeout_scale(),
            masters=parse_masters(master),
        )
        check_timeout(timeout)
        gate = gate_options(expect, max_fill, baseline, max_growth, junit, markdown, json_path=json_path)
    except ImdiagError as exc:
        raise fail(str(exc), exc.exit_code) from None

    from imdiag.worker.sweep import run_sweep

    def lane_line(run: MasterRun, count: int) -> str:
        transport = run.transport.value if run.transport else ""
        return f"measured {count} cells: {run.server} master, limit {format_size(run.limit)}, {transport}"

    run_measured(
        "size-sweep", "sweeping", settings.to_dict(),
        lambda cells, measured, planned, note: run_sweep(
            settings, cells, on_cell=measured, on_planned=planned,
            on_lane_done=lambda run, count: note(lane_line(run, count)),
        ),
        sweep_renderables, json_path, gate,
    )


@app.command("fake-master")
def fake_master(
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 3000,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    limit: Annotated[str, typer.Option(help="maxHttpBufferSize, e.g. 1MB (Socket.IO's default).")] = "1MB",
    namespace: Annotated[str, typer.Option(help="Namespace the workers join, e.g. /worker.")] = "/",
    path: Annotated[str, typer.Option(help="Engine.IO path.")] = "/socket.io/",
    record: Annotated[
        str | None, typer.Option(metavar="FILE", help="Append every arrival to FILE as JSON Lines (a capture "
                                 "`imdiag replay FILE` reads), flushed as it goes. python master only.")
    ] = None,
    master: Annotated[
        str, typer.Option(metavar="python|node", help="Which real server: python (python-socketio on aiohttp, "
                          "in this process) or node (the pinned Node.js socket.io, as a child process).")
    ] = "python",
) -> None:
    """Run a reference master standalone and log every arrival, error and disconnect live."""
    from imdiag.fake_master.ledger import Entry
    from imdiag.fake_master.run import serve_forever
    from imdiag.fake_master.server import MasterInfo
    from imdiag.render.terminal import ledger_line, master_banner

    try:
        parsed_limit = parse_limit(limit)
        ns = parse_namespace(namespace)
        if not 0 <= port <= 65535:
            raise InputError(f"invalid port {port}: use 0 to 65535")
        if master not in ("python", "node"):
            raise InputError(f"invalid --master {master!r}: use python or node")
        if master == "node" and record is not None:
            raise InputError("--record needs --master python: the node master reports each arrival's type, "
                             "id, digest and size, not the message itself")
    except ImdiagError as exc:
        raise fail(str(exc), exc.exit_code) from None

    def ready(info: MasterInfo) -> None:
        print(master_banner(info), flush=True)  # log lines: never wrapped, flushed as they come

    def entry(e: Entry) -> None:
        print(ledger_line(e), flush=True)

    try:
        run_async(lambda: serve_forever(limit=parsed_limit, host=host, port=port, namespace=ns, path=path,
                                        on_entry=entry, on_ready=ready, record=record, server=master))
    except KeyboardInterrupt:
        print("stopped", flush=True)


# The other commands live in their own modules; they import helpers from this one.
from imdiag.commands_gate import gate_command  # noqa: E402
from imdiag.commands_probe import probe_command  # noqa: E402
from imdiag.commands_replay import replay_command, size_command  # noqa: E402

app.command("replay")(replay_command)
app.command("size")(size_command)
app.command("probe")(probe_command)
app.command("gate")(gate_command)


def _version(value: bool) -> None:
    if value:
        print(f"imdiag {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False,
) -> None:
    pass


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(int(ExitCode.INTERRUPTED))
