"""``imdiag doctor`` as a process: usage errors (exit 2) and an unreachable master (exit 3), each one
line on stderr; the report is still written when nothing answers."""

from __future__ import annotations

import asyncio
import json
import socket

from ..helpers import TIMEOUT, assert_one_line_error, run_imdiag


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_usage_errors_and_an_unreachable_master(tmp_path):
    probe_report = tmp_path / "probe.json"
    probe_report.write_text(json.dumps({"schema": "imdiag.report/1", "command": "probe", "cells": []}))
    port = _closed_port()
    out = tmp_path / "d.json"
    (size, tap, down) = await asyncio.gather(
        run_imdiag("doctor", "--url", "http://127.0.0.1:1/worker", "--expect-max-payload", "ten", timeout=TIMEOUT * 3),
        run_imdiag("doctor", "--url", "http://127.0.0.1:1/worker", "--tap-report", str(probe_report),
                   timeout=TIMEOUT * 3),
        run_imdiag("doctor", "--url", f"http://127.0.0.1:{port}/worker", "--json", str(out), timeout=TIMEOUT * 3),
    )
    assert_one_line_error(size[0], size[2], 2, "'ten'")
    assert_one_line_error(tap[0], tap[2], 2, f"tap report {probe_report}: a report of imdiag probe, not of imdiag tap")
    code, stdout, stderr = down
    assert code == 3 and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"imdiag: error: cannot reach http://127.0.0.1:{port}/socket.io/ (polling): connection refused (nothing listens "
        f"on port {port}?)")
    report = json.loads(out.read_text())
    got = {h["id"]: h["verdict"] for h in report["hypotheses"]}
    assert got.pop("not-reachable") == "confirmed" and set(got.values()) == {"unknown"}
    assert report["exit_code"] == 3 and report["probe"] is None and report["engineio_v3"]["answered"] is False
    assert "Nothing answers Socket.IO at" in " ".join(stdout.split())


async def test_a_password_in_the_url_is_masked_everywhere_doctor_shows_it(tmp_path):
    """As probe does: the headline, the evidence, the verdict and every report show ``***``."""
    reports = [tmp_path / "d.json", tmp_path / "d.md", tmp_path / "d.html"]
    code, stdout, stderr = await run_imdiag(
        "doctor", "--url", f"http://worker:s3cret@127.0.0.1:{_closed_port()}/worker", "--json", str(reports[0]),
        "--markdown", str(reports[1]), "--html", str(reports[2]), timeout=TIMEOUT * 3)
    assert code == 3, stderr
    written = [path.read_text() for path in reports]
    assert "s3cret" not in stdout + stderr + "".join(written)
    assert all("worker:***@" in text for text in [stdout, *written])
