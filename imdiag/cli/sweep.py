"""``imdiag size-sweep``: parse the options, run the sweep, render it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import RenderableType

from imdiag.cli.common import fail, scaled_timeout
from imdiag.cli.gating import GateOptions, with_gate_options
from imdiag.cli.measure import run_measured
from imdiag.cli.node import ensure_node_packages
from imdiag.cli.options import (
    FRAME_HELP,
    LIMIT_HELP,
    ClientEncoderOption,
    ClientOption,
    CsrOption,
    EventOption,
    MasterOption,
    TimeoutOption,
    TransportsOption,
    check_csr,
    client_encoder,
    parse_client,
    parse_event,
    parse_masters,
    parse_namespace,
    parse_sizes,
    parse_transports,
    parse_types,
)
from imdiag.core.errors import ImdiagError
from imdiag.core.model import MasterInfo, Report
from imdiag.core.plan import DEFAULT_LADDER, DEFAULT_LIMITS, SweepSettings
from imdiag.core.units import format_size
from imdiag.render.terminal import sweep_renderables
from imdiag.render.worker import worker_renderables


def _lane_line(run: MasterInfo, count: int) -> str:
    transport = run.transport.value if run.transport else ""
    return f"measured {count} cells: {run.server} master, limit {format_size(run.limit)}, {transport}"


@with_gate_options
def size_sweep(
    limits: Annotated[
        list[str] | None,
        typer.Option("--limits", "-l", metavar="LIMITS", help="Server buffer limits (maxHttpBufferSize), comma-separated, "
                     f"each {LIMIT_HELP} Default: {','.join(format_size(x) for x in DEFAULT_LIMITS)}"),
    ] = None,
    sizes: Annotated[
        list[str] | None,
        typer.Option("--sizes", "-s", metavar="SIZES", help=f"Ladder of frame sizes for the growing types. {FRAME_HELP} "
                     f"Default: {','.join(format_size(x) for x in DEFAULT_LADDER)}"),
    ] = None,
    types: Annotated[list[str] | None, typer.Option("--types", "-t", metavar="TYPES", help="Message types (default: all seven).")] = None,
    transports: TransportsOption = None,
    encoder: ClientEncoderOption = None,
    master: MasterOption = "python",
    client: ClientOption = "imdiag",
    csr: CsrOption = False,
    namespace: Annotated[str, typer.Option(help="Socket.IO namespace, e.g. /worker.")] = "/",
    event: EventOption = "message",
    boundary: Annotated[bool, typer.Option(help="Also send frames of exactly L-1, L and L+1 bytes.")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the payload generator.")] = 1,
    timeout: TimeoutOption = 10.0,
    *,
    gate: GateOptions,
) -> None:
    """Send every message type at increasing sizes to reference masters at several limits."""
    # Imported here for start-up time: the runner loads aiohttp and socketio.
    from imdiag.runners.sweep import run_sweep

    try:
        worker = parse_client(client)
        masters = parse_masters(master)
        settings = SweepSettings(
            limits=parse_sizes(limits, DEFAULT_LIMITS, limit=True),
            sizes=parse_sizes(sizes, DEFAULT_LADDER),
            types=parse_types(types),
            transports=parse_transports(transports, worker),
            encoder=client_encoder(worker, encoder),
            namespace=parse_namespace(namespace),
            event=parse_event(event),
            seed=seed,
            boundary=boundary,
            timeout_s=scaled_timeout(timeout),
            masters=masters,
            client=worker,
            csr=check_csr(csr, masters),
        )
        ensure_node_packages((*settings.masters, settings.client.value))
    except ImdiagError as exc:
        raise fail(str(exc), exc.exit_code) from None

    run_measured(
        "size-sweep", "sweeping", settings.to_dict(),
        lambda cells, measured, planned, note, on_started: run_sweep(
            settings, cells, on_cell=measured, on_planned=planned,
            on_lane_done=lambda run, count: note(_lane_line(run, count)), on_started=on_started,
        ),
        _renderables, gate,
    )


def _renderables(report: Report) -> list[RenderableType]:
    return sweep_renderables(report) + worker_renderables(report)
