"""``imdiag fake-master``: a master standalone, logging every arrival, error and disconnect live."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from imdiag.cli.common import fail, run_async
from imdiag.cli.node import ensure_node_packages
from imdiag.cli.options import LIMIT_HELP, parse_namespace, parse_path
from imdiag.core.entries import Entry, Totals
from imdiag.core.errors import ExitCode, ImdiagError, InputError
from imdiag.core.model import MasterInfo
from imdiag.core.plan import MASTER_SERVERS
from imdiag.core.units import parse_limit
from imdiag.render.log import ledger_line, master_banner, totals_lines


def _check(port: int, master: str, record: str | None) -> None:
    if not 0 <= port <= 65535:
        raise InputError(f"invalid port {port}: use 0 to 65535")
    if master not in MASTER_SERVERS:
        raise InputError(f"invalid --master {master!r}: use {', '.join(MASTER_SERVERS[:-1])} or {MASTER_SERVERS[-1]}")
    if master == "node" and record is not None:
        raise InputError("--record needs --master python or asgi: the node master reports each arrival's type, "
                         "id, digest and size, not the message itself")


def fake_master(
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 3000,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    limit: Annotated[str, typer.Option(help=f"maxHttpBufferSize, e.g. 1MB (Socket.IO's default); {LIMIT_HELP}")] = "1MB",
    namespace: Annotated[str, typer.Option(help="Namespace the workers join, e.g. /worker.")] = "/",
    path: Annotated[str, typer.Option(help="Engine.IO path; socket.io means /socket.io/.")] = "/socket.io/",
    record: Annotated[
        str | None, typer.Option(metavar="FILE", help="Append every arrival to FILE as JSON Lines (a capture "
                                 "`imdiag replay FILE` reads), flushed as it goes. python and asgi masters only.")
    ] = None,
    master: Annotated[
        str, typer.Option(metavar="python|node|asgi", help="Which real server: python (python-socketio on aiohttp), "
                          "node (the pinned Node.js socket.io) or asgi (python-socketio's ASGIApp under uvicorn); "
                          "each runs in a child process.")
    ] = "python",
) -> None:
    """Run a reference master standalone and log every arrival, error and disconnect live."""
    # Imported here for start-up time: the masters load aiohttp and socketio.
    from imdiag.masters.serve import serve_forever

    try:
        parsed_limit = parse_limit(limit)
        ns = parse_namespace(namespace)
        engineio_path = parse_path(path)
        _check(port, master, record)
        ensure_node_packages([master])
    except ImdiagError as exc:
        raise fail(str(exc), exc.exit_code) from None

    totals = Totals()
    serving = False
    serving_since = 0.0

    def ready(info: MasterInfo) -> None:
        nonlocal serving, serving_since
        serving, serving_since = True, time.monotonic()
        print(master_banner(info), flush=True)  # log lines: never wrapped, flushed as they come

    def entry(e: Entry) -> None:
        totals.add(e)
        print(ledger_line(e), flush=True)

    try:
        run_async(lambda: serve_forever(limit=parsed_limit, host=host, port=port, namespace=ns, path=engineio_path,
                                        on_entry=entry, on_ready=ready, record=record, server=master))
    except KeyboardInterrupt:
        print("stopped (Ctrl-C)", flush=True)
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    finally:
        if serving:  # Ctrl-C or the master died: what it saw, in a few lines
            print("\n".join(totals_lines(totals, time.monotonic() - serving_since)), flush=True)
