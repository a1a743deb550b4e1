"""``imdiag tap`` as a process: JSON lines when not a terminal, Ctrl-C ends it with a summary and the
report, the capture replays, and bad input is one line with its exit code."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from pathlib import Path

import pytest
import socketio

from imdiag.cli.tap import _settings as tap_settings
from imdiag.core.captures import load_messages
from imdiag.core.errors import InputError
from imdiag.masters.kinds import PythonMaster

from ..helpers import TIMEOUT, assert_one_line_error, imdiag_process, interrupt, run_imdiag


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(("args", "needle"), [
    (("http://127.0.0.1:3000/worker", "127.0.0.1:3001", "/socket.io/", None, False), "no path, query or fragment"),
    (("master:3000", "127.0.0.1:3001", "/socket.io/", None, False), "invalid --upstream 'master:3000'"),
    (("http://127.0.0.1:99999", "127.0.0.1:3001", "/socket.io/", None, False), "the port is not a number"),
    (("http://127.0.0.1:3000", "here", "/socket.io/", None, False), "invalid --listen 'here'"),
    (("http://127.0.0.1:3000", "127.0.0.1:70000", "/socket.io/", None, False), "invalid --listen '127.0.0.1:70000'"),
    (("http://127.0.0.1:3000", "127.0.0.1:3001", "socket.io", None, False), "invalid --path 'socket.io'"),
    (("http://127.0.0.1:3000", "127.0.0.1:3001", "/socket.io/", "0", False), "invalid --duration '0'"),
    (("http://127.0.0.1:3000", "127.0.0.1:3001", "/socket.io/", "soon", False), "invalid duration 'soon'"),
    (("http://127.0.0.1:3000", "127.0.0.1:3001", "/socket.io/", None, True), "--insecure applies to an https upstream"),
])
def test_bad_options(args: tuple[str, str, str, str | None, bool], needle: str) -> None:
    upstream, listen, path, duration, insecure = args
    with pytest.raises(InputError, match=re.escape(needle)):
        tap_settings(upstream, listen, path, duration, False, insecure, None)


def test_options() -> None:
    settings = tap_settings("https://master.example:8443", ":0", "/io/", "10m", True, True, "c.jsonl")
    assert (settings.upstream, settings.listen, settings.duration_s) == ("https://master.example:8443", "127.0.0.1:0", 600)
    assert (settings.tls, settings.insecure, settings.hold_oversize, settings.record_path) == (True, True, True, "c.jsonl")
    assert tap_settings("http://[::1]", "[::1]:3001", "/", None, False, False, None).listen == "[::1]:3001"
    assert tap_settings("ws://m", "3001", "/", None, False, False, None).upstream == "http://m:80"


async def test_bad_input_is_one_line_and_exit_2() -> None:
    code, _, stderr = await run_imdiag("tap", "--upstream", "http://127.0.0.1:3000/worker", timeout=TIMEOUT)
    assert_one_line_error(code, stderr, 2, "invalid --upstream 'http://127.0.0.1:3000/worker': no path")


async def test_a_port_in_use_is_one_line_and_exit_3() -> None:
    async with PythonMaster(limit=1000) as master:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            code, _, stderr = await run_imdiag("tap", "--upstream", master.url, "--listen", f"127.0.0.1:{port}",
                                               timeout=TIMEOUT)
    assert_one_line_error(code, stderr, 3, f"cannot listen on 127.0.0.1:{port}")


async def test_an_unreachable_upstream_is_one_line_and_exit_3_after_the_any_host_warning() -> None:
    port = _closed_port()
    code, _, stderr = await run_imdiag("tap", "--upstream", f"http://127.0.0.1:{port}", "--listen", "0.0.0.0:0",
                                       timeout=TIMEOUT)
    warning, error = stderr.strip().splitlines()
    assert warning.startswith("imdiag: warning: listening on 0.0.0.0:0, every network interface")
    assert_one_line_error(code, error, 3, f"cannot reach the upstream http://127.0.0.1:{port}: connection refused")


async def test_a_session_through_the_cli_then_ctrl_c(tmp_path: Path) -> None:
    report_path, capture = tmp_path / "tap.json", tmp_path / "capture.jsonl"
    big = {"type": "worker:data:sync", "payload": "x" * 120_000}
    async with PythonMaster(limit=100_000, namespace="/worker") as master, \
            imdiag_process("tap", "--upstream", master.url, "--listen", "127.0.0.1:0", "--json", str(report_path),
                           "--record", str(capture)) as proc:
        assert proc.stdout is not None
        listening = json.loads(await asyncio.wait_for(proc.stdout.readline(), TIMEOUT))
        assert listening["event"] == "listening" and listening["upstream"] == master.url
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(f"http://{listening['listen']}", namespaces=["/worker"], transports=["websocket"])
        await client.call("message", {"type": "worker:heartbeat", "id": "hb", "payload": {}}, namespace="/worker",
                          timeout=TIMEOUT)
        await client.emit("message", big, namespace="/worker")
        lines = []
        while not any(line.get("type") == "worker:data:sync" for line in lines):
            lines.append(json.loads(await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)))
        await client.disconnect()
        rest, stderr = await interrupt(proc)
    assert proc.returncode == 0, stderr
    lines += [json.loads(line) for line in rest.decode().splitlines()]
    kinds = [line["event"] for line in lines]
    assert kinds[0] == "connect" and "namespace" in kinds and "oversize" in kinds and kinds[-1] == "summary"
    refused = next(line for line in lines if line.get("type") == "worker:data:sync")
    assert (refused["outcome"], refused["cause"], refused["refused_by"]) == ("refused", "oversize-close", "master")
    assert refused["wire_bytes"] > 100_000 and refused["over_limit"] is True
    summary = lines[-1]["lines"]
    assert summary[0].startswith("worker:data:sync (/worker, 'message'): 1 sent, 1 refused (close 1009 from the master)")
    assert "stopped (Ctrl-C)" in summary[-1]
    assert "report written to" in stderr.decode() and "Traceback" not in stderr.decode()
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert (report["schema"], report["command"]) == ("imdiag.report/1", "tap")
    assert [c["type"] for c in report["cells"]] == ["worker:heartbeat", "worker:data:sync"]
    assert [c["delivered"] for c in report["cells"]] == [True, False]  # the heartbeat was acked
    assert report["tap"]["stopped_by"] == "ctrl-c" and report["masters"][0]["advertised_max_payload"] == 100_000
    assert [c.message["type"] for c in load_messages(capture)] == ["worker:heartbeat", "worker:data:sync"]
