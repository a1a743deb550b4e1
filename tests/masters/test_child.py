"""Masters in child processes (python and Node.js alike): none outlives its master, a host that
dies is an observation, masters of a kind share a few hosts, and a host speaks the protocol."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from typing import Any

import pytest
import socketio

from imdiag.core.entries import Arrival, ServerError, canonical_digest, reencoded_bytes
from imdiag.core.errors import TargetError
from imdiag.masters.child import ChildMaster, MasterHost
from imdiag.masters.kinds import SERVERS, new_master
from imdiag.masters.ledger import Ledger
from imdiag.masters.python import PythonMaster

from ..helpers import TIMEOUT

KINDS = ["python", pytest.param("node", marks=pytest.mark.node)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _host(master: ChildMaster) -> MasterHost:
    assert master._host is not None
    return master._host


@pytest.mark.parametrize("kind", KINDS)
async def test_stop_ends_the_process_by_closing_stdin(kind: str) -> None:
    master = new_master(kind, 1000)
    await master.start()
    pid = master.pid
    assert pid is not None and _alive(pid)
    await master.stop()
    assert not _alive(pid)
    assert master.returncode == 0  # it left on its own when stdin closed, no signal needed
    await master.stop()  # idempotent


@pytest.mark.parametrize("kind", KINDS)
async def test_no_process_survives_an_exception_inside_async_with(kind: str) -> None:
    pids: list[int] = []
    with pytest.raises(RuntimeError, match="boom"):
        async with new_master(kind, 1000) as master:
            assert master.pid is not None
            pids.append(master.pid)
            raise RuntimeError("boom")
    assert pids and not _alive(pids[0])


@pytest.mark.parametrize("kind", KINDS)
async def test_no_process_survives_a_cancelled_task(kind: str) -> None:
    started = asyncio.Event()
    pids: list[int] = []

    async def serve() -> None:
        async with new_master(kind, 1000) as master:
            assert master.pid is not None
            pids.append(master.pid)
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(serve())
    await asyncio.wait_for(started.wait(), TIMEOUT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not _alive(pids[0])


@pytest.mark.parametrize("kind", KINDS)
async def test_cancelling_stop_kills_the_process(kind: str) -> None:
    master = new_master(kind, 1000)
    await master.start()
    proc = _host(master)._proc  # the host process the master runs in
    assert proc is not None
    stopping = asyncio.create_task(master.stop())
    await asyncio.sleep(0)  # let stop() reach its first await (a yield, not a delay)
    stopping.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await stopping
    await asyncio.wait_for(proc.wait(), TIMEOUT)
    assert not _alive(proc.pid)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_master_that_dies_is_recorded_in_the_ledger(kind: str) -> None:
    async with new_master(kind, 1000) as master:
        assert master.pid is not None
        mark = master.ledger.mark()
        os.kill(master.pid, signal.SIGKILL)
        found = await master.ledger.wait_until(
            lambda e: isinstance(e, ServerError) and "exited with code -9" in e.message, mark, TIMEOUT
        )
        assert found is not None
        assert await asyncio.wait_for(master.wait_died(), TIMEOUT) == f"the {kind} master exited with code -9"


@pytest.mark.parametrize("kind", KINDS)
async def test_port_in_use_is_a_target_error_and_the_host_serves_on(kind: str) -> None:
    async with new_master(kind, 1000) as first:
        with pytest.raises(TargetError, match=rf"cannot listen on 127\.0\.0\.1:{first.port}: .*(?i:in use)"):
            await new_master(kind, 1000, port=first.port).start()
        async with new_master(kind, 1000) as second:  # the failure left the hosts serving
            assert second.port not in (0, first.port)


async def test_masters_of_a_kind_spread_over_a_few_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PythonMaster, "hosts", 2)
    masters = [PythonMaster(limit=1000 * (i + 1)) for i in range(3)]
    async with contextlib.AsyncExitStack() as stack:
        for master in masters:
            await stack.enter_async_context(master)
        pids = [m.pid for m in masters]
        assert pids[0] != pids[1] and pids[2] in pids[:2]  # two hosts; the third goes to the emptier
        assert len({m.port for m in masters}) == 3
    assert not any(_alive(pid) for pid in pids if pid is not None)


async def test_the_python_host_records_like_the_in_process_ledger() -> None:
    """A real python-socketio client's message comes back with the same digest and size the
    ledger computes itself, and whole (not only type and id) when the master records."""
    message: dict[str, Any] = {"type": "worker:register", "id": "r-1", "name": "张三 😀", "n": 2**70, "x": 1.5}
    for record in (False, True):
        ledger = Ledger(keep_messages=record)
        async with PythonMaster(limit=1_000_000, namespace="/worker", ledger=ledger) as master:
            client = socketio.AsyncClient()
            await client.connect(master.url, namespaces=["/worker"], transports=["websocket"], wait_timeout=TIMEOUT)
            try:
                assert await client.call("message", message, namespace="/worker", timeout=TIMEOUT) is True
            finally:
                await client.disconnect()
            arrival = await ledger.wait_for("r-1", TIMEOUT)
        assert isinstance(arrival, Arrival) and arrival.digest == canonical_digest(message)
        assert arrival.type == "worker:register" and arrival.event == "message"
        assert arrival.message == (message if record else None)


@pytest.mark.parametrize("kind", [*KINDS, "asgi"])
async def test_a_by_id_ledger_records_what_has_an_id_and_digests_the_rest(kind: str) -> None:
    """A sweep's masters (``by_id``: every message of a sweep is found by its unique id) record a
    message with a string id as arrived, neither digested nor counted; any other message keeps
    its digest and bytes."""
    with_id: dict[str, Any] = {"type": "t", "id": "i-1", "payload": {"text": "张三 😀", "x": 1.5, "n": 2**60}}
    without = {"type": "t", "id": 7, "payload": {"text": "张三 😀", "x": 1.0}}
    ledger = Ledger(by_id=True)
    async with new_master(kind, 1_000_000, "/worker", ledger=ledger) as master:
        client = socketio.AsyncClient()
        await client.connect(master.url, namespaces=["/worker"], transports=["websocket"], wait_timeout=TIMEOUT)
        try:
            for message in (with_id, without):
                assert await client.call("message", message, namespace="/worker", timeout=TIMEOUT) is True
        finally:
            await client.disconnect()
        counted = await ledger.wait_for("i-1", TIMEOUT)
        digest = canonical_digest(without)
        digested = await ledger.wait_until(lambda e: isinstance(e, Arrival) and e.digest == digest, 0, TIMEOUT)
    assert isinstance(counted, Arrival) and counted.digest == "" and counted.bytes is None
    assert isinstance(digested, Arrival) and digested.message_id is None
    assert digested.bytes == reencoded_bytes(without)


def test_every_server_kind_is_a_child_master() -> None:
    """A new kind plugs in as a ChildMaster: its host speaks the protocol, the rest is shared."""
    assert all(issubclass(kind, ChildMaster) for kind in SERVERS.values())


async def test_the_python_host_answers_commands_in_the_protocol() -> None:
    """The host program alone: ready, listening, failed (bad limit), stopped, and exit on EOF."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "imdiag.masters.python_host", "aiohttp",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        ready = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT * 2)
        assert b'"event":"ready"' in ready and b"python-socketio" in ready
        proc.stdin.write(b'{"cmd":"start","key":"a","limit":1000}\n{"cmd":"start","key":"b","limit":"x"}\n')
        lines = [await asyncio.wait_for(proc.stdout.readline(), TIMEOUT) for _ in range(2)]
        assert any(re.search(rb'"key":"a","event":"listening","port":\d+', line) for line in lines), lines
        assert any(b'"key":"b","event":"failed"' in line for line in lines), lines
        proc.stdin.write(b'{"cmd":"stop","key":"a"}\n')
        assert await asyncio.wait_for(proc.stdout.readline(), TIMEOUT) == b'{"key":"a","event":"stopped"}\n'
        proc.stdin.close()
        assert await asyncio.wait_for(proc.wait(), TIMEOUT) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
