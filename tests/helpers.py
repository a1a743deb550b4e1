"""Helpers the tests share: the real ``imdiag`` CLI in a subprocess, and one observed send."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping, Sequence

from aiohttp import web

from imdiag.cli import main as cli_main
from imdiag.clients.engineio import Connection
from imdiag.clients.observe import LedgerWitness, Outgoing, observe
from imdiag.core.model import Observation
from imdiag.core.wire import Encoder
from imdiag.masters.ledger import Ledger

# One unit for every wait in the tests; CI may scale it (IMDIAG_TIMEOUT_SCALE=2), as the commands do.
SCALE = float(os.environ.get("IMDIAG_TIMEOUT_SCALE", "1"))
TIMEOUT = 10.0 * SCALE


async def run_imdiag(*args: str, timeout: float, env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    """``python -m imdiag ARGS`` with NO_COLOR (and ``env`` over this environment); returns
    (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "imdiag", *args, env={**os.environ, "NO_COLOR": "1", **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, stdout.decode(), stderr.decode()


@contextlib.asynccontextmanager
async def imdiag_process(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m imdiag ARGS`` running, with NO_COLOR and pipes; killed on the way out if it still runs."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "imdiag", *args, env={**os.environ, "NO_COLOR": "1"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def interrupt(proc: asyncio.subprocess.Process) -> tuple[bytes, bytes]:
    """Ctrl-C, then everything the process still writes (stdout, stderr)."""
    proc.send_signal(signal.SIGINT)
    return await asyncio.wait_for(proc.communicate(), TIMEOUT)


def run_main(*args: str) -> tuple[int, str, str]:
    """The CLI in this process (fast, for option tables and fuzzing): ``imdiag.cli.main(args)``
    with stdout and stderr as strict UTF-8 streams, as a terminal's are; (exit code, out, err).
    Anything but SystemExit escaping is a failure of the test, as a traceback would be."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli_main(list(args))
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        else:
            code = 0
    texts = []
    for stream in (out, err):
        stream.flush()
        texts.append(stream.buffer.getvalue().decode())  # type: ignore[attr-defined]
    return code, texts[0], texts[1]


async def send_observed(
    conn: Connection, ledger: Ledger, packets: Sequence[bytes], message_ids: Sequence[str], *,
    encoder: Encoder, event: str, namespace: str, timeout: float,
) -> list[Observation]:
    """Send ``packets`` in one write to a master with a ledger; one Observation per message id."""
    outgoing = [Outgoing(frame, message_id=message_id) for frame, message_id in zip(packets, message_ids)]
    return await observe(conn, outgoing, LedgerWitness(ledger, encoder, event, namespace), timeout)


@contextlib.asynccontextmanager
async def serving(handler) -> AsyncIterator[str]:
    """An aiohttp app on 127.0.0.1 answering every method and path with ``handler``."""
    app = web.Application(client_max_size=32 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def html_page(request: web.Request) -> web.Response:
    return web.Response(text="<!doctype html><html><body>Welcome</body></html>", content_type="text/html")


def assert_one_line_error(code: int, stderr: str, exit_code: int, *needles: str) -> None:
    assert code == exit_code, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imdiag: error: "), stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
