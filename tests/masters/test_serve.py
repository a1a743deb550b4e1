"""The reference master with real clients: python-socketio's own AsyncClient, and the CLI."""

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import socketio

from imdiag.core.catalog import Catalog
from imdiag.masters.ledger import Arrival, Disconnect, Ledger
from imdiag.masters.python import PythonMaster

from ..helpers import TIMEOUT


# websocket only: python-socketio's client takes ~25 s to close a polling session.
@pytest.mark.parametrize("transport", ["websocket"])
async def test_a_real_python_socketio_worker_is_recorded(transport):
    message = Catalog(9).natural("worker:register").obj()
    async with PythonMaster(limit=1_000_000, namespace="/worker") as master:
        client = socketio.AsyncClient()
        await client.connect(master.url, namespaces=["/worker"], transports=[transport], wait_timeout=TIMEOUT)
        try:
            acked = await client.call("message", message, namespace="/worker", timeout=TIMEOUT)
        finally:
            await client.disconnect()
        arrival = await master.ledger.wait_for(message["id"], TIMEOUT)
        assert acked is True
        assert arrival is not None and arrival.type == "worker:register" and arrival.event == "message"
        disconnect = await master.ledger.wait_until(lambda e: isinstance(e, Disconnect), 0, TIMEOUT)
        assert disconnect is not None
    assert [e for e in master.ledger.entries if isinstance(e, Arrival)] == [arrival]


@pytest.mark.parametrize("kind", ["python", "asgi"])
def test_fake_master_cli_logs_arrivals_live(kind):
    env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "imdiag", "fake-master", "--master", kind, "--port", "0",
                             "--limit", "1MB", "--namespace", "/worker"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        banner = proc.stdout.readline()
        url = re.search(r"listening on (http://127\.0\.0\.1:\d+)", banner)
        assert url, banner
        assert "maxHttpBufferSize 1,000,000 B" in banner and banner.startswith(f"{kind} reference master")
        assert ("websocket counts characters, closed with 1000" in banner) is (kind == "asgi")

        async def emit() -> None:
            client = socketio.AsyncClient()
            await client.connect(url.group(1), namespaces=["/worker"], transports=["websocket"],
                                 wait_timeout=TIMEOUT)
            await client.call("message", {"type": "worker:heartbeat", "id": "hb-1"}, namespace="/worker",
                              timeout=TIMEOUT)
            await client.disconnect()

        asyncio.run(emit())
        lines = [proc.stdout.readline() for _ in range(3)]
        assert "connect " in lines[0]
        assert "arrival    worker:heartbeat id=hb-1" in lines[1]
        assert "disconnect" in lines[2]
    finally:
        proc.terminate()
        proc.communicate(timeout=TIMEOUT)


async def test_a_streaming_ledger_keeps_nothing_but_numbers_what_it_streams():
    """The standalone master's ledger (retain=False): a long session must not grow memory."""
    streamed = []
    ledger = Ledger(on_entry=streamed.append, keep_messages=True, retain=False)
    ledger.connect("s1", "/")
    big = {"type": "worker:data:sync", "id": "x", "blob": "y" * 100_000}
    ledger.arrival("s1", "/", "message", big)
    ledger.disconnect("s1", "/", "transport close")
    assert ledger.entries == [] and ledger.find("x") is None
    assert [e.seq for e in streamed] == [0, 1, 2]
    assert streamed[1].message is big  # the recorder sees the whole message as it arrives


@pytest.mark.parametrize("kind", ["python", pytest.param("node", marks=pytest.mark.node)])
async def test_fake_master_exits_3_when_its_server_process_dies(kind):
    env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    master = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "imdiag", "fake-master", "--master", kind, "--port", "0", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        await asyncio.wait_for(master.stdout.readline(), TIMEOUT * 2)
        children = [int(p) for p in Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()]
        assert len(children) == 1
        os.kill(children[0], 9)  # the server's process dies on its own
        _, stderr = await asyncio.wait_for(master.communicate(), TIMEOUT)
    finally:
        if master.returncode is None:
            master.kill()
            await master.wait()
    assert master.returncode == 3
    assert stderr.decode().strip() == f"imdiag: error: the {kind} master exited with code -9"
