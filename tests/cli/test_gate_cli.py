"""`imdiag gate` as CI runs it: real processes, real masters, every exit code, no tracebacks."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ..render.test_html import Page

REPO = Path(__file__).resolve().parents[2]
SMALL = """
limits = ["20KB"]
sizes = ["1KB", "30KB"]
types = ["worker:heartbeat", "worker:messages:update"]
namespace = "/worker"
"""


def imdiag(*args, cwd=REPO, env=None):
    full_env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(REPO)}
    for key in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY"):
        full_env.pop(key, None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "imdiag", *args], check=False, capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=full_env)


def gate_file(tmp_path, *rules, extra="", name="imdiag.toml"):
    path = tmp_path / name
    path.write_text(SMALL + "expect = " + json.dumps(list(rules)) + "\n" + extra)
    return path


def no_traceback(result):
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout


PASSING = [
    "worker:heartbeat=delivered",
    "worker:messages:update=dropped:oversize-close",
    "worker:messages:update#L-1@20KB:websocket:python=delivered",
    "worker:messages:update#L@20KB:websocket=dropped:oversize-close",
    "worker:messages:update#L+1@20KB:polling=dropped:oversize-close",
]


def test_rules_that_hold_exit_0_with_every_output(tmp_path):
    config = gate_file(tmp_path, *PASSING,
                       extra='max_fill = 0.8\n[outputs]\njson = "out/report.json"\nhtml = "out/report.html"\n')
    (tmp_path / "out").mkdir()
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    result = imdiag("gate", "--config", str(config), "--junit", str(tmp_path / "gate.xml"),
                    "--markdown", str(tmp_path / "gate.md"),
                    env={"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ACTIONS": "true"})
    no_traceback(result)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "gate passed" in result.stdout and "::error" not in result.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text())  # relative to the gate file
    assert report["command"] == "gate" and report["gate"]["passed"] is True
    assert report["gate"]["failures"] == [] and report["gate"]["checks"] >= len(PASSING)
    html = (tmp_path / "out" / "report.html").read_text()
    assert f"gate passed: {report['gate']['checks']} checks" in html
    assert html.count('<td class="v ') == len(report["cells"])
    root = ET.parse(tmp_path / "gate.xml").getroot()
    assert root.get("failures") == "0" and int(root.get("tests")) == report["gate"]["checks"]
    markdown = (tmp_path / "gate.md").read_text()
    assert markdown.startswith("## imdiag gate: ✅ passed")
    assert summary.read_text() == "earlier step\n" + markdown + "\n"  # appended, not replaced


def test_a_failing_rule_exits_1_with_evidence_and_annotations(tmp_path):
    config = gate_file(tmp_path, "worker:heartbeat=delivered", "worker:messages:update@20KB:websocket=delivered")
    junit = tmp_path / "gate.xml"
    result = imdiag("gate", "--config", str(config), "--junit", str(junit), "--json", str(tmp_path / "r.json"),
                    "--html", str(tmp_path / "r.html"), env={"GITHUB_ACTIONS": "true"})
    no_traceback(result)
    assert result.returncode == 1, result.stderr
    assert "gate failed: 1 of 3 checks failed" in result.stdout
    assert "expected delivered, got dropped (oversize-close)" in result.stdout and "1009" in result.stdout
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error title=")]
    assert len(errors) == 1 and "worker%3Amessages%3Aupdate@20KB%3Awebsocket=delivered" in errors[0]
    failure = ET.parse(junit).getroot().find(".//failure")
    assert failure.get("type") == "oversize-close" and "Message Too Big" in failure.text
    gate = json.loads((tmp_path / "r.json").read_text())["gate"]
    assert gate["passed"] is False and gate["failures"][0]["cause"] == "oversize-close"
    html = (tmp_path / "r.html").read_text()
    assert "gate failed: 1 of 3 checks failed" in html
    framed = [c for c in Page(html).cells if "gate-fail" in c["class"]]  # the failing cells, outlined
    assert framed and {(c["data-type"], c["data-limit"], c["data-transport"]) for c in framed} == {
        ("worker:messages:update", "20000", "websocket")}


def test_a_rule_matching_no_cell_fails(tmp_path):
    result = imdiag("gate", "--config", str(gate_file(tmp_path, "worker:heartbeat@1MB=delivered")))
    no_traceback(result)
    assert result.returncode == 1 and "rule matched no cell" in result.stdout


def test_expect_on_the_command_line_adds_to_the_file(tmp_path):
    config = gate_file(tmp_path, "worker:heartbeat=delivered")
    result = imdiag("gate", "--config", str(config), "--expect", "worker:heartbeat=dropped")
    no_traceback(result)
    assert result.returncode == 1 and "expected dropped, got delivered" in result.stdout


def test_the_gate_file_is_found_in_the_working_directory(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "team"\n\n[tool.imdiag]\n' + SMALL + 'expect = ["worker:heartbeat=delivered"]\n'
    )
    result = imdiag("gate", cwd=tmp_path)
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    gate_file(tmp_path, "worker:heartbeat=dropped")  # imdiag.toml wins over pyproject.toml
    assert imdiag("gate", cwd=tmp_path).returncode == 1


def test_baseline_regression_and_improvement_through_the_cli(tmp_path):
    config = gate_file(tmp_path, "worker:heartbeat=delivered")
    first = imdiag("gate", "--config", str(config), "--json", str(tmp_path / "old.json"))
    assert first.returncode == 0, first.stderr
    same = imdiag("gate", "--config", str(config), "--baseline", str(tmp_path / "old.json"))
    no_traceback(same)
    assert same.returncode == 0 and "gate passed" in same.stdout

    old = json.loads((tmp_path / "old.json").read_text())
    for cell in old["cells"]:
        if cell["type"] == "worker:messages:update" and cell["label"] == "natural" and cell["transport"] == "websocket":
            cell.update(delivered=True, cause=None)  # it was delivered back then: now a regression
        if cell["type"] == "worker:heartbeat" and cell["transport"] == "polling":
            cell.update(delivered=False, cause="timeout")  # it was lost back then: now an improvement
            cell["message_bytes"] = int(cell["message_bytes"] * 0.5)  # and it grew 100%
    (tmp_path / "edited.json").write_text(json.dumps(old))
    result = imdiag("gate", "--config", str(config), "--baseline", str(tmp_path / "edited.json"),
                    "--max-growth", "150%", "--json", str(tmp_path / "new.json"))
    no_traceback(result)
    assert result.returncode == 1, result.stderr
    gate = json.loads((tmp_path / "new.json").read_text())["gate"]
    assert [(f["kind"], f["cell"]["type"]) for f in gate["failures"]] == [("baseline", "worker:messages:update")]
    assert [(i["kind"], i["cell"]["transport"]) for i in gate["improvements"]] == [("baseline", "polling")]
    assert "↑ now delivered" in result.stdout


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("limits = [20KB]\n", [], "invalid TOML"),
        (SMALL + 'expect = ["worker:heartbeat=arrived"]\n', [], "key 'expect': invalid rule 'worker:heartbeat=arrived'"),
        (SMALL + "max-fill = 0.8\n", [], "key 'max-fill': unknown key"),
        (SMALL + 'limits = ["1XB"]\n', [], "invalid TOML"),  # a key given twice is a TOML error
        ('limits = ["1XB"]\n', [], "key 'limits': invalid size '1XB'"),
        (SMALL, ["--expect", "worker:heartbeat@1MB:pigeon=delivered"], "unknown transport 'pigeon'"),
        (SMALL, ["--max-fill", "2"], "--max-fill: '2' must be more than 0 and at most 1"),
        (SMALL, ["--baseline", "/nonexistent/old.json"], "cannot read baseline /nonexistent/old.json"),
        (SMALL, ["--config", "/nonexistent/imdiag.toml"], "cannot read gate file /nonexistent/imdiag.toml"),
        (SMALL + "timeout = inf\n", [], "key 'timeout': inf: use a number of seconds more than 0"),
        (SMALL + '[outputs]\njson = "."\n', [], "imdiag.toml [outputs] json "),
        (SMALL + '[outputs]\nhtml = "no-such-dir/r.html"\n', [], "[outputs] html "),
        (SMALL, [], "the gate would check nothing: add expect rules (or --expect), max_fill or a baseline"),
    ],
)
def test_bad_gate_file_or_rule_is_one_line_exit_2(tmp_path, content, args, message):
    config = tmp_path / "imdiag.toml"
    config.write_text(content)
    if "--config" not in args:
        args = ["--config", str(config), *args]
    result = imdiag("gate", *args)
    no_traceback(result)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert message in result.stderr and result.stderr.startswith("imdiag: error: ")
    assert result.stdout == ""  # nothing was measured


def test_a_gate_file_that_is_not_utf8_is_exit_2_naming_it(tmp_path):
    for name in ("bad.toml", "pyproject.toml"):
        config = tmp_path / name
        config.write_bytes(b"\xff\xfe")
        result = imdiag("gate", "--config", str(config))
        no_traceback(result)
        assert result.returncode == 2, result.stderr
        assert result.stderr == f"imdiag: error: {config}: not UTF-8 text (TOML is UTF-8)\n"


def test_no_gate_file_is_exit_2(tmp_path):
    result = imdiag("gate", cwd=tmp_path)
    no_traceback(result)
    assert result.returncode == 2 and "no gate file" in result.stderr
    (tmp_path / "imdiag.toml").mkdir()
    result = imdiag("gate", cwd=tmp_path)
    no_traceback(result)
    assert result.returncode == 2
    assert result.stderr == "imdiag: error: cannot read gate file ./imdiag.toml: it is a directory (or pass --config FILE)\n"


def test_a_target_that_cannot_be_set_up_is_exit_3(tmp_path):
    config = gate_file(tmp_path, "worker:heartbeat=delivered", extra='master = "node"\n')
    empty = tmp_path / "bin"
    empty.mkdir()
    result = imdiag("gate", "--config", str(config), env={"PATH": str(empty)})  # no `node` on PATH
    no_traceback(result)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "Node.js is not installed" in result.stderr
    # --master on the command line replaces the file's: the same file with master = "python" ...
    config = gate_file(tmp_path, "worker:heartbeat=delivered")
    result = imdiag("gate", "--config", str(config), "--master", "node", env={"PATH": str(empty)})
    assert result.returncode == 3 and "Node.js is not installed" in result.stderr, result.stderr
    result = imdiag("gate", "--config", str(config), "--master", "martian")
    assert result.returncode == 2 and "unknown master 'martian'" in result.stderr


def _verdicts(path):
    report = json.loads(path.read_text())
    cells = [(c["master"], c["transport"], c["limit"], c["type"], c["label"], c["message_bytes"], c["delivered"],
              c["cause"]) for c in report["cells"]]
    gate = report["gate"]
    return cells, gate["passed"], gate["checks"], [(f["title"], f["cause"]) for f in gate["failures"]]


def test_five_runs_give_the_same_verdicts(tmp_path):
    config = gate_file(tmp_path, *PASSING, "worker:messages:update@20KB:polling=delivered")  # one failure too
    runs = []
    for i in range(5):
        out = tmp_path / f"run{i}.json"
        result = imdiag("gate", "--config", str(config), "--json", str(out))
        no_traceback(result)
        assert result.returncode == 1, result.stderr
        runs.append(_verdicts(out))
    assert all(run == runs[0] for run in runs[1:])
    cells, passed, _checks, failures = runs[0]
    assert not passed and len(failures) == 1 and len(cells) == 14


def test_fixtures_are_replayed_and_judged(tmp_path):
    capture = tmp_path / "capture.jsonl"
    capture.write_text(
        '{"type": "worker:heartbeat", "payload": {"ts": 1}}\n'
        '{"type": "worker:data:sync", "payload": {"text": "' + "快照" * 12_000 + '"}}\n'
    )
    config = tmp_path / "imdiag.toml"
    config.write_text('fixtures = ["capture.jsonl"]\nsweep = false\nlimits = ["20KB"]\nexpect = [\n'
                      '  "worker:heartbeat#replay=delivered",\n'
                      '  "worker:data:sync#replay:capture.jsonl@20KB=dropped:oversize-close",\n]\n')
    result = imdiag("gate", "--config", str(config), "--json", str(tmp_path / "r.json"))
    no_traceback(result)
    assert result.returncode == 0, result.stdout + result.stderr
    cells = json.loads((tmp_path / "r.json").read_text())["cells"]
    assert {(c["label"], c["index"], c["transport"]) for c in cells} == {
        ("replay:capture.jsonl", i, t) for i in (0, 1) for t in ("websocket", "polling")
    }
    assert "replay of " in result.stdout


def test_a_malformed_fixture_is_exit_2(tmp_path):
    (tmp_path / "bad.json").write_text('[{"type": "worker:heartbeat", ')
    config = tmp_path / "imdiag.toml"
    config.write_text('fixtures = ["bad.json"]\nsweep = false\nexpect = ["*=delivered"]\n')
    result = imdiag("gate", "--config", str(config))
    no_traceback(result)
    assert result.returncode == 2 and "bad.json" in result.stderr


def test_the_shipped_gate_file_passes(tmp_path):
    """The project's own gate (imdiag.toml at the repo root) on its shipped fixtures."""
    out = tmp_path / "gate.json"
    result = imdiag("gate", "--json", str(out))
    no_traceback(result)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    report = json.loads(out.read_text())
    labels = {c["label"] for c in report["cells"]}
    assert {"natural", "replay:data_sync.json", "replay:session.jsonl"} <= labels
    again = imdiag("gate", "--baseline", str(out))  # unchanged code: no regression against itself
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
