"""``action.yml`` run as GitHub would run it: each step's shell, as written, in order, here.

A tiny reader for the YAML shape action.yml uses (PyYAML is not a dependency): mappings, lists of
mappings, ``|`` blocks, full-line comments. The runner does what GitHub does for a composite
step: ``${{ }}`` expressions in ``env`` filled in (inputs, ``github.action_path``, ``runner.temp``),
``bash --noprofile --norc -eo pipefail`` on the script, ``$GITHUB_PATH`` lines put on PATH for
the later steps. The action's directory is a copy of this checkout's sources, as a checkout of
the action would be. The runner's pip resolves from the session's wheelhouse (``installs.py``:
fetched once from the configured indexes), npm from its registry.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from .conftest import require
from .installs import INSTALL_TIMEOUT, REPO, copy_sources

# --- the YAML reader -----------------------------------------------------------------------------


def _scalar(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    assert not text.startswith(("[", "{", "&", "*", "!", ">")), f"not understood: {text!r}"
    return text


def parse_yaml(text: str) -> Any:
    """The subset action.yml is written in; anything else fails an assertion."""
    raw = text.splitlines()
    # (indent, text, raw line number) of every line that is not blank or a comment
    lines = [(len(r) - len(r.lstrip(" ")), r.strip(), n) for n, r in enumerate(raw)
             if r.strip() and not r.strip().startswith("#")]

    def literal(i: int, indent: int) -> tuple[str, int]:
        """A ``|`` block: the raw lines (blank and # lines included) indented deeper than its key."""
        start = lines[i - 1][2] + 1
        end = start
        while end < len(raw) and (not raw[end].strip() or len(raw[end]) - len(raw[end].lstrip(" ")) > indent):
            end += 1
        body = raw[start:end]
        while body and not body[-1].strip():
            body.pop()
        cut = min(len(r) - len(r.lstrip(" ")) for r in body if r.strip())
        while i < len(lines) and lines[i][2] < end:
            i += 1
        return "\n".join(r[cut:] for r in body) + "\n", i

    def node(i: int, indent: int) -> tuple[Any, int]:
        if lines[i][1].startswith("- "):
            items = []
            while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
                # "- key: value" opens a mapping whose keys sit two columns further in.
                lines[i] = (indent + 2, lines[i][1][2:], lines[i][2])
                item, i = mapping(i, indent + 2)
                items.append(item)
            return items, i
        return mapping(i, indent)

    def mapping(i: int, indent: int) -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        while i < len(lines) and lines[i][0] == indent:
            match = re.fullmatch(r"([A-Za-z0-9_.-]+):(?:\s+(.*))?", lines[i][1])
            assert match, f"not understood: {lines[i][1]!r}"
            key, value = match[1], match[2]
            assert key not in out, f"duplicate key {key}"
            i += 1
            if value == "|":
                out[key], i = literal(i, indent)
            elif value is None:
                assert i < len(lines) and lines[i][0] > indent, f"empty value for {key}"
                out[key], i = node(i, lines[i][0])
            else:
                out[key] = _scalar(value)
        return out, i

    result, end = node(0, 0)
    assert end == len(lines), f"not understood: {lines[end][1]!r}"
    return result


def test_the_reader_reads_this_shape() -> None:
    text = ("a: 1\nb:\n  c: \"\"\n  d:\n    - e: x\n      f: |\n        one\n\n        # not a comment\n"
            "          two\n    - e: y\n# a comment\ng: z\n")
    assert parse_yaml(text) == {
        "a": "1", "b": {"c": "", "d": [{"e": "x", "f": "one\n\n# not a comment\n  two\n"}, {"e": "y"}]}, "g": "z"}
    for bad in ("a: [1, 2]\n", "a: 1\nb\n", "a: 1\na: 2\n"):
        with pytest.raises(AssertionError):
            parse_yaml(bad)


# --- running the composite action's steps --------------------------------------------------------

ACTION = parse_yaml((REPO / "action.yml").read_text(encoding="utf-8"))
EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


def _fill(value: str, inputs: dict[str, str], context: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match[1]
        if name.startswith("inputs."):
            key = name.removeprefix("inputs.")
            assert key in ACTION["inputs"], f"unknown input {key}"
            return inputs.get(key, ACTION["inputs"][key].get("default", ""))
        assert name in context, f"expression not handled by this test: {name}"
        return context[name]

    return EXPRESSION.sub(one, value)


class Runner:
    """A job's environment across steps: PATH from $GITHUB_PATH, one step summary file."""

    def __init__(self, tmp_path: Path, action_path: Path, env: dict[str, str]) -> None:
        self.tmp = tmp_path
        self.context = {"github.action_path": str(action_path), "runner.temp": str(tmp_path / "runner-temp")}
        (tmp_path / "runner-temp").mkdir()
        self.workspace = tmp_path / "workspace"
        self.workspace.mkdir()
        self.github_path = tmp_path / "github_path"
        self.github_path.write_text("")
        self.summary = tmp_path / "step_summary.md"
        self.env = {**env, "GITHUB_ACTIONS": "true", "GITHUB_PATH": str(self.github_path),
                    "GITHUB_STEP_SUMMARY": str(self.summary), "RUNNER_TEMP": self.context["runner.temp"]}

    def run(self, step: dict[str, Any], inputs: dict[str, str]) -> subprocess.CompletedProcess[str]:
        assert step["shell"] == "bash" and "${{" not in step["run"], "a script reads its inputs from env"
        env = {**self.env, **{k: _fill(v, inputs, self.context) for k, v in step.get("env", {}).items()}}
        added = [line for line in self.github_path.read_text().splitlines() if line]
        env["PATH"] = os.pathsep.join([*reversed(added), env["PATH"]])
        script = self.tmp / "step.sh"
        script.write_text(step["run"])
        return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=self.workspace,
                              env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False)


GATE = """
limits = ["20KB"]
sizes = ["1KB", "30KB"]
types = ["worker:heartbeat", "worker:messages:update"]
transports = ["websocket"]
expect = ["worker:heartbeat=delivered", "worker:messages:update#L+1=dropped:oversize-close"]
"""


def test_the_action_installs_imdiag_and_runs_the_gate(tmp_path: Path, wheelhouse: Path) -> None:
    require(None if shutil.which("node") and shutil.which("npm") else "Node.js and npm are needed for master: node")
    assert set(ACTION["inputs"]) == {"config", "junit", "markdown", "html", "baseline", "master"}
    assert ACTION["runs"]["using"] == "composite"
    action_path = tmp_path / "action"
    copy_sources(action_path, "action.yml", "constraints.txt")
    bin_dir = tmp_path / "bin"  # the runner's python3, and nothing of this checkout's venv
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(os.path.realpath(sys.executable))
    home = tmp_path / "home"
    tools = [str(bin_dir), *(os.path.dirname(p) for t in ("node", "npm") if (p := shutil.which(t)))]
    env = {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheelhouse))  # the runner's pip, with a local mirror
    env.update(PATH=os.pathsep.join([*dict.fromkeys(tools), "/usr/bin", "/bin"]), HOME=str(home),
               XDG_CACHE_HOME=str(home / ".cache"), LANG="C.UTF-8", NO_COLOR="1")
    if (Path.home() / ".npm").is_dir():
        env["npm_config_cache"] = str(Path.home() / ".npm")  # npm's download cache: spares the registry
    runner = Runner(tmp_path, action_path, env)
    (runner.workspace / "ci").mkdir()
    (runner.workspace / "ci" / "imdiag.toml").write_text(GATE)
    inputs = {"config": "ci/imdiag.toml", "junit": "junit.xml", "markdown": "gate.md", "html": "gate.html",
              "master": "node"}

    install, node, gate = ACTION["runs"]["steps"]
    done = runner.run(install, inputs)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "imdiag 0.1.0"
    assert runner.github_path.read_text() == f"{tmp_path / 'runner-temp' / 'imdiag-venv' / 'bin'}\n"
    done = runner.run(node, inputs)
    assert done.returncode == 0 and done.stdout.startswith("installed: socket.io 4.8.1, socket.io-client 4.8.1, socket.io-v2 2.5.1 in "), done.stdout + done.stderr
    assert str(home / ".cache" / "imdiag") in done.stdout
    done = runner.run(gate, inputs)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "gate passed: 2 checks" in done.stdout and "node master" in done.stdout
    junit = ET.parse(runner.workspace / "junit.xml").getroot()
    assert junit.get("failures") == "0" and junit.get("tests") == "2"
    assert (runner.workspace / "gate.md").read_text().startswith("## imdiag gate: ✅ passed")
    assert runner.summary.read_text().startswith("## imdiag gate: ✅ passed")
    assert "gate passed: 2 checks" in (runner.workspace / "gate.html").read_text()

    # A failing rule fails the step with exit 1 and an annotation; a bad master input is exit 2.
    failing = GATE.replace("=dropped:oversize-close", "=delivered")
    (runner.workspace / "ci" / "imdiag.toml").write_text(failing)
    done = runner.run(gate, {**inputs, "master": "", "html": "", "baseline": ""})
    assert done.returncode == 1 and "::error title=" in done.stdout, done.stdout + done.stderr
    assert "python master" in done.stdout
    done = runner.run(node, {"master": "martian"})
    assert done.returncode == 2 and "::error title=imdiag::invalid master 'martian'" in done.stdout
