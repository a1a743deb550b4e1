"""``imdiag replay FILE``: parse the options, run the replay, render it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import RenderableType

from imdiag.cli.common import console, fail, scaled_timeout
from imdiag.cli.gating import GateOptions, with_gate_options
from imdiag.cli.measure import run_measured
from imdiag.cli.node import ensure_node_packages
from imdiag.cli.options import (
    LIMIT_HELP,
    AuthOption,
    ClientEncoderOption,
    ClientOption,
    CsrOption,
    HeaderOption,
    InsecureOption,
    MasterOption,
    PathOption,
    TimeoutOption,
    TransportsOption,
    check_csr,
    client_encoder,
    parse_auth,
    parse_choice,
    parse_client,
    parse_event,
    parse_headers,
    parse_masters,
    parse_namespace,
    parse_path,
    parse_scales,
    parse_sizes,
    parse_transports,
    parse_url,
)
from imdiag.core.captures import open_capture
from imdiag.core.errors import ImdiagError, InputError
from imdiag.core.model import Report
from imdiag.core.plan import CLIENT_BATCHES, TIMINGS, ReplaySettings
from imdiag.core.units import parse_duration
from imdiag.core.worker import ClientKind
from imdiag.render.replay import replay_renderables
from imdiag.render.worker import worker_renderables

FileArgument = Annotated[str, typer.Argument(metavar="FILE", help="A capture: JSON array, {meta, messages} or JSON Lines.")]


@with_gate_options
def replay_command(
    file: FileArgument,
    limits: Annotated[
        list[str] | None,
        typer.Option("--limit", "--limits", "-l", metavar="LIMITS", help="Server limits (maxHttpBufferSize), "
                     f"comma-separated, each {LIMIT_HELP} Default: 1MB"),
    ] = None,
    transports: TransportsOption = None,
    encoder: ClientEncoderOption = None,
    master: MasterOption = "python",
    client: ClientOption = "imdiag",
    csr: CsrOption = False,
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
    path: PathOption = "/socket.io/",
    header: HeaderOption = None,
    auth: AuthOption = None,
    insecure: InsecureOption = False,
    ack: Annotated[bool, typer.Option(help="Send with an ack id and count a message delivered when the live "
                                      "master acknowledges it (with --url).")] = False,
    timeout: TimeoutOption = 10.0,
    *,
    gate: GateOptions,
) -> None:
    """Replay captured messages against reference masters (or a live one) and say which arrive."""
    # Imported here for start-up time: the runner loads aiohttp and socketio.
    from imdiag.runners.replay import run_replay

    try:
        if url is None and (header or auth or insecure or ack):
            raise InputError("--header, --auth, --insecure and --ack apply to a live master: add --url")
        worker = parse_client(client)
        masters = parse_masters(master)
        if worker is not ClientKind.IMDIAG:
            if url is not None:
                raise InputError(f"--client {worker.value} needs a master imdiag starts (its ledger proves what "
                                 "arrived): drop --url, or replay to a live master with --client imdiag")
            if client_batch != "split":
                raise InputError(f"--client-batch is imdiag's own client's batching; --client {worker.value} "
                                 "batches as its library does")
        if url is not None and csr:
            raise InputError("--csr applies to the Node master imdiag starts, not to --url")
        settings = ReplaySettings(
            path=file,
            limits=parse_sizes(limits, (1_000_000,), limit=True),
            transports=parse_transports(transports, worker),
            encoder=client_encoder(worker, encoder),
            masters=masters,
            client=worker,
            csr=check_csr(csr, masters) if url is None else False,
            namespace=parse_namespace(namespace) if namespace is not None else None,
            event=parse_event(event),
            timing=parse_choice(timing, TIMINGS, "--timing"),
            max_gap_s=parse_duration(max_gap, "--max-gap"),
            client_batch=parse_choice(client_batch, CLIENT_BATCHES, "--client-batch"),
            scales=parse_scales(scale),
            timeout_s=scaled_timeout(timeout),
            url=parse_url(url, parse_headers(header)) if url is not None else None,
            path_prefix=parse_path(path),
            headers=parse_headers(header),
            auth_json=parse_auth(auth),
            insecure=insecure,
            ack=ack,
        )
        open_capture(file)  # a malformed capture is one line, before any master starts
        if settings.url is None:
            ensure_node_packages((*settings.masters, settings.client.value))
    except ImdiagError as exc:
        raise fail(str(exc), exc.exit_code) from None

    if settings.timing == "original":
        console(stderr=True).print(
            f"timing original: gaps longer than {settings.max_gap_s:g} s are shortened to {settings.max_gap_s:g} s"
        )
    run_measured(
        "replay", "replaying", settings.to_dict(),
        lambda cells, measured, planned, note, on_started: run_replay(
            settings, cells, on_cell=measured, on_planned=planned, on_started=on_started),
        _renderables, gate,
    )


def _renderables(report: Report) -> list[RenderableType]:
    return replay_renderables(report) + worker_renderables(report)
