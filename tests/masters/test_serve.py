"""The reference master with real clients: python-socketio's own AsyncClient, and the CLI."""

import asyncio
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import socketio

from imdiag.clients.engineio import Endpoint, open_connection
from imdiag.core.captures import load_messages
from imdiag.core.catalog import Catalog
from imdiag.core.wire import Transport
from imdiag.masters.ledger import Arrival, Disconnect, Ledger, ServerError
from imdiag.masters.python import PythonMaster

from ..helpers import TIMEOUT, imdiag_process, interrupt


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


CUT = b'42/worker,["message",{"type":'


def _loopback() -> str:
    """::1 where the machine has IPv6 loopback (the URL then needs brackets), else 127.0.0.1."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return "127.0.0.1"
    return "::1"


def test_an_ipv6_master_url_has_brackets():
    assert PythonMaster(limit=1000, host="::1", port=3000).url == "http://[::1]:3000"
    assert PythonMaster(limit=1000, port=3000).url == "http://127.0.0.1:3000"


async def test_fake_master_records_lone_surrogates_ties_decode_errors_to_a_post_and_sums_up_on_ctrl_c(tmp_path):
    """A real python-socketio worker sends what JSON.stringify can write (a lone surrogate in the
    type and the payload): the master logs and records the arrival. A POST it cannot decode is
    logged with its sid and size. Ctrl-C prints the totals and exits 130."""
    host = _loopback()
    capture = tmp_path / "capture.jsonl"
    message = {"type": "worker:\ud800", "id": "s-1", "payload": {"text": "a\udc00b"}}
    async with imdiag_process("fake-master", "--port", "0", "--host", host, "--path", "noslash",
                              "--namespace", "/worker", "--record", str(capture)) as proc:
        assert proc.stdout is not None
        banner = (await proc.stdout.readline()).decode()
        found = re.search(r"listening on (http://\S+?)/noslash/ ", banner)
        assert found, banner  # --path noslash is served at /noslash/
        url = found.group(1)
        assert url.startswith("http://[::1]:" if host == "::1" else "http://127.0.0.1:")

        client = socketio.AsyncClient()
        await client.connect(url, namespaces=["/worker"], transports=["websocket"], socketio_path="noslash",
                             wait_timeout=TIMEOUT)
        await client.call("message", message, namespace="/worker", timeout=TIMEOUT)
        await client.disconnect()
        async with aiohttp.ClientSession() as session:
            conn = await open_connection(Endpoint(url, namespace="/worker", path="/noslash/"),
                                         Transport.POLLING, session, TIMEOUT)
            try:
                await conn.send([CUT])  # no JSON: the master logs a decode error
            finally:
                await conn.close()

        lines = [(await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode() for _ in range(5)]
        arrival = next(line for line in lines if " arrival " in line)
        assert "arrival    worker:\\ud800 id=s-1" in arrival  # shown as JSON.stringify escapes it
        decode = next(line for line in lines if "decode-err" in line)
        # The same sid as the connection's connect line, and the POST's size: the loss is tied to it.
        sid = re.search(r"decode-err sid=(\S+) POST (\d+) B message async handler error", decode)
        assert sid and int(sid.group(2)) == len(CUT), decode
        assert any(f"connect    sid={sid.group(1)} namespace=/worker" in line for line in lines), lines
        out, err = await interrupt(proc)
    assert proc.returncode == 130 and b"Traceback" not in err, err
    assert b"arrivals: 1, " in out and b"worker:\\ud800 1 (" in out and b"decode errors: 1;" in out
    assert b"disconnects: 2 (" in out
    (recorded,) = load_messages(capture)  # the capture holds the message as it arrived
    assert recorded.message == message


def test_an_arrival_is_recorded_whatever_its_digest_does():
    """A message the handler received is delivered: a digest that fails must not lose it."""
    ledger = Ledger()
    ledger.arrival("s1", "/", "message", {"type": "t", "id": "x", "v": object()})  # no JSON encoder takes it
    found = ledger.find("x")
    assert found is not None and found.digest == "" and found.type == "t"
    (error,) = [e for e in ledger.entries if isinstance(e, ServerError)]
    assert "digest" in error.message and not error.decode


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


async def test_fake_master_totals_give_the_time_it_served_not_its_last_event():
    """With no arrival at all, the totals still say how long the master served."""
    async with imdiag_process("fake-master", "--port", "0") as proc:
        assert proc.stdout is not None
        assert b"listening on" in await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
        await asyncio.sleep(0.3)  # the time under test: nothing happens meanwhile, there is no event to await
        out, err = await interrupt(proc)
    assert proc.returncode == 130, err
    served = re.search(rb"totals after (\d+\.\d+) s:", out)
    assert served and float(served.group(1)) >= 0.3, out
