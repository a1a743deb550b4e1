"""The CLI as a user runs it: real processes, real exit codes, no tracebacks."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imdiag.cli import app
from imdiag.cli.options import parse_sizes, parse_transports, parse_types
from imdiag.core import quirks
from imdiag.core.errors import InputError
from imdiag.core.quirks import REFERENCE_VERSIONS
from imdiag.masters.kinds import shards_per_lane

from ..helpers import TIMEOUT

DATA_SYNC = str(Path(__file__).resolve().parents[2] / "fixtures" / "data_sync.json")


def imdiag(*args, **kwargs):
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "imdiag", *args], capture_output=True, text=True,
                          timeout=120, env=env, **kwargs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["size-sweep", "--limits", "1.5XB"], "invalid size '1.5XB'"),
        (["size-sweep", "--limits", "0"], "a limit must be at least 1 byte"),
        (["size-sweep", "--types", "worker:nope"], "unknown message type 'worker:nope'"),
        (["size-sweep", "--transports", "carrier-pigeon"], "unknown transport 'carrier-pigeon'"),
        (["size-sweep", "--namespace", "worker"], "a namespace starts with '/'"),
        (["size-sweep", "--limits", ","], "invalid --limits ',': empty; omit --limits for the default"),
        (["size-sweep", "--transports", ""], "invalid --transports '': empty; omit --transports for the default"),
        (["fake-master", "--limit", "12 parsecs"], "invalid size '12 parsecs'"),
        (["size-sweep", "--html", "/nonexistent-imdiag-dir/r.html"], "invalid --html /nonexistent-imdiag-dir/r.html"),
        (["replay", "fixtures/data_sync.json", "--html", "/tmp"], "invalid --html /tmp: it is a directory"),
        (["size-sweep", "--client", "browser"], "unknown client 'browser'; use imdiag, node or python"),
        (["size-sweep", "--transports", "default"], "--transports default is a client library's own choice"),
        (["size-sweep", "--client", "python", "--encoder", "node"], "--client python encodes with its own JSON"),
        (["size-sweep", "--csr"], "--csr turns on the Node master's connectionStateRecovery"),
        (["replay", DATA_SYNC, "--client", "node", "--url", "http://127.0.0.1:9/worker"],
         "--client node needs a master imdiag starts"),
        (["replay", DATA_SYNC, "--client", "python", "--client-batch", "whole"],
         "--client python batches as its library does"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message):
    result = imdiag(*args)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("parse", "option"),
    [
        (lambda v: parse_sizes(v, (1,), limit=True), "--limits"),
        (lambda v: parse_sizes(v, (1,)), "--sizes"),
        (parse_types, "--types"),
        (parse_transports, "--transports"),
    ],
)
def test_an_option_given_empty_is_refused_not_read_as_the_default(parse, option):
    for empty in ([""], [","], [" , "]):
        with pytest.raises(InputError, match=f"^invalid {option} .*: empty; omit {option} for the default$"):
            parse(empty)
    assert parse(None) == parse([])  # not given: the default


def test_port_in_use_is_a_target_error_exit_3():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = imdiag("fake-master", "--port", str(port))
    assert result.returncode == 3
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr


def test_small_sweep_writes_a_stable_json_report(tmp_path):
    out = tmp_path / "report.json"
    result = imdiag("size-sweep", "--limits", "20KB", "--sizes", "1KB,10KB,30KB", "--types",
                    "worker:heartbeat,worker:messages:update", "--namespace", "/worker", "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["schema"] == "imdiag.report/1" and report["command"] == "size-sweep"
    assert report["settings"]["limits"] == [20_000] and report["settings"]["namespace"] == "/worker"
    cells = report["cells"]
    required = {"type", "transport", "limit", "encoder", "wire_bytes", "js_length", "predicted_delivered",
                "delivered", "cause", "evidence"}
    assert all(required <= set(c) for c in cells)
    by = {(c["transport"], c["label"], c["message_bytes"]): c for c in cells if c["type"] == "worker:messages:update"}
    assert by[("websocket", "L-1", 19_999)]["delivered"] is True
    assert by[("websocket", "L", 20_000)]["cause"] == "oversize-close"
    assert by[("polling", "L", 20_000)]["delivered"] is True
    assert by[("polling", "L+1", 20_001)]["cause"] == "oversize-close"
    assert all(c["cause"] is None for c in cells if c["delivered"])
    assert "✓" in result.stdout and "oversize" not in result.stderr


def test_ctrl_c_still_writes_the_measured_cells(tmp_path):
    out = tmp_path / "partial.json"
    env = {**os.environ, "NO_COLOR": "1"}
    # The 1KB lanes finish at once; the 20MB lanes have many large messages to go.
    proc = subprocess.Popen(
        [sys.executable, "-m", "imdiag", "size-sweep", "--limits", "1KB,20MB", "--sizes",
         "1KB,2MB,4MB,6MB,8MB,10MB,12MB,14MB,16MB,18MB", "--json", str(out), "--html", str(tmp_path / "partial.html")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        line = proc.stderr.readline()  # an event: the first lane reports it is done
        assert line.startswith("measured "), line
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=TIMEOUT * 3)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    report = json.loads(out.read_text())
    assert report["interrupted"] is True
    # Every cell of the lane that said it was done is in the report, and the report is partial.
    done = re.match(r"measured (\d+) cells: python master, limit (1KB|20MB), (\w+)", line)
    assert done, line
    limit = {"1KB": 1000, "20MB": 20_000_000}[done.group(2)]
    lane = [c for c in report["cells"] if c["limit"] == limit and c["transport"] == done.group(3)]
    assert len(lane) == int(done.group(1)) > 0
    assert all(c["cause"] is not None or c["delivered"] for c in report["cells"])
    assert len(report["cells"]) < 4 * len(lane)  # four lanes of as many cells each: some were stopped midway
    assert "interrupted" in stdout
    html = (tmp_path / "partial.html").read_text()  # the same partial cells, as a page
    assert "interrupted (Ctrl-C)" in html and html.count('<td class="v ') == len(report["cells"])
    # The run's own time and the masters it measured against, not 0.0 s and none.
    assert report["elapsed_s"] > 0 and f"in {report['elapsed_s']:.1f} s" in stdout and " in 0.0 s" not in stdout
    # (every master: a python lane is split over identical masters, one per host process)
    assert sorted((m["limit"], m["transport"]) for m in report["masters"]) == [
        (limit, transport) for limit in (1000, 20_000_000) for transport in ("polling", "websocket")
        for _ in range(shards_per_lane("python"))]


def test_size_sweep_as_a_gate_exit_codes(tmp_path):
    base = ["size-sweep", "--limits", "20KB", "--sizes", "1KB", "--types", "worker:heartbeat"]
    junit = tmp_path / "gate.xml"
    passing = imdiag(*base, "--expect", "worker:heartbeat@20KB:*=delivered", "--junit", str(junit))
    assert passing.returncode == 0, passing.stderr
    assert "<testsuite" in junit.read_text()
    failing = imdiag(*base, "--expect", "worker:heartbeat@20KB:*=dropped")
    assert failing.returncode == 1 and "gate failed" in failing.stdout + failing.stderr
    bad_rule = imdiag(*base, "--expect", "nonsense")
    assert bad_rule.returncode == 2 and "Traceback" not in bad_rule.stderr


@pytest.mark.parametrize("drifted", [False, True])
def test_the_terminal_says_so_in_one_line(monkeypatch: pytest.MonkeyPatch, drifted: bool) -> None:
    if drifted:
        reference = {**REFERENCE_VERSIONS, "python": {**REFERENCE_VERSIONS["python"], "aiohttp": "0.0.1"}}
        monkeypatch.setattr(quirks, "REFERENCE_VERSIONS", reference)
    result = CliRunner().invoke(app, ["size-sweep", "--limits", "100KB", "--no-boundary", "--sizes", "1KB",
                                      "--types", "worker:heartbeat", "--transports", "websocket"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "README's figures" in line]
    if drifted:
        running = REFERENCE_VERSIONS["python"]["aiohttp"]
        assert lines == [(f"note: the python master ran aiohttp {running} (README: 0.0.1): results may differ from "
                          "the README's figures (the versions they came from are pinned in constraints.txt and "
                          "imdiag/node/package-lock.json)")]
    else:
        assert lines == []
