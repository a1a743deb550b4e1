"""The gate's API that size-sweep and replay plug into: gate_options() and finish_with_gate()."""

import json
import re
import xml.etree.ElementTree as ET

import pytest
from rich.console import Console

from imdiag.cli.gating import finish_with_gate, gate_options
from imdiag.core.errors import InputError
from imdiag.core.model import Cause, Cell, Observation, Report
from imdiag.core.wire import Encoder, Transport


def _report():
    def cell(type_, size, delivered):
        return Cell(type=type_, transport=Transport.WEBSOCKET, limit=1_000_000, encoder=Encoder.NODE, master="python",
                    label="natural", wire_bytes=size, message_bytes=size, json_bytes=size, js_length=size,
                    predicted_delivered=delivered, delivered=delivered,
                    cause=None if delivered else Cause.OVERSIZE_CLOSE,
                    evidence="recorded" if delivered else f"{size:,} B frame: 1009",
                    observed=Observation(body_bytes=size, ledger_seq=1 if delivered else None,
                                         close_code=None if delivered else 1009))

    return Report("size-sweep", {"limits": [1_000_000]},
                  [cell("worker:heartbeat", 150, True), cell("worker:data:sync", 1_313_024, False)])


def _console():
    return Console(record=True, width=200, no_color=True)


def test_finish_with_gate_without_gate_options_only_writes_the_report(tmp_path):
    out = tmp_path / "r.json"
    console = _console()
    assert finish_with_gate(_report(), gate_options(json_path=str(out)), console) == 0
    report = json.loads(out.read_text())
    assert "gate" not in report and len(report["cells"]) == 2 and console.export_text() == ""


def test_finish_with_gate_judges_writes_and_returns_the_exit_code(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    options = gate_options(expect=["worker:heartbeat=delivered", "worker:data:sync@1MB=delivered"], max_fill="80%",
                           junit=str(tmp_path / "j.xml"), markdown=str(tmp_path / "s.md"),
                           json_path=str(tmp_path / "r.json"))
    console = _console()
    assert finish_with_gate(_report(), options, console) == 1
    gate = json.loads((tmp_path / "r.json").read_text())["gate"]
    assert gate["passed"] is False and gate["checks"] == 3 and len(gate["failures"]) == 1
    assert ET.parse(tmp_path / "j.xml").getroot().get("name") == "imdiag size-sweep"
    assert (tmp_path / "s.md").read_text().startswith("## imdiag size-sweep: ❌ failed")
    assert capsys.readouterr().out.startswith("::error title=imdiag gate%3A worker%3Adata%3Async@1MB=delivered")
    assert "gate failed: 1 of 3 checks failed" in console.export_text()
    passing = gate_options(expect=["worker:heartbeat=delivered"])
    assert finish_with_gate(_report(), passing, _console()) == 0


def test_finish_with_gate_reports_an_unwritable_output_as_exit_2(tmp_path, capsys):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    options = gate_options(expect=["worker:heartbeat=delivered"], junit=str(out_dir / "j.xml"))
    out_dir.rmdir()  # gone while the command ran: the late write still fails in one line
    assert finish_with_gate(_report(), options, _console()) == 2
    err = capsys.readouterr().err
    assert err.startswith("imdiag: error: cannot write") and err.count("\n") == 1


def test_gate_options_fail_fast_on_bad_input(tmp_path):

    (tmp_path / "old.json").write_text("{not json")
    (tmp_path / "deep.json").write_text('{"cells":' + "[" * 3000 + "]" * 3000 + "}")
    (tmp_path / "huge.json").write_text('{"schema":' + "9" * 5000 + ',"cells":[]}')
    for kwargs, message in [
        ({"expect": ["worker:heartbeat"]}, "no '='"),
        ({"baseline": str(tmp_path / "deep.json")}, f"baseline {tmp_path / 'deep.json'}:1:509: arrays and objects nested"),
        ({"baseline": str(tmp_path / "huge.json")}, "not an imdiag.report/1 report (schema <integer of 5,000 digits>)"),
        ({"max_fill": "0"}, "more than 0"),
        ({"max_growth": "ten"}, "--max-growth"),
        ({"baseline": str(tmp_path / "old.json")}, "invalid JSON at line 1"),
        ({"junit": str(tmp_path / "missing" / "j.xml")}, "directory"),
        ({"json_path": str(tmp_path)}, "it is a directory"),
    ]:
        with pytest.raises(InputError, match=re.escape(message)):
            gate_options(**kwargs)
