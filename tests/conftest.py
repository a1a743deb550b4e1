"""What every test directory shares: an aiohttp client session, the Node.js and nginx requirements, the Node oracle.

Tests marked ``node`` (``nginx``) are skipped with the install hint when Node.js or the pinned
npm packages (nginx) are missing, except under CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from imdiag.masters.node import NODE_DIR, node_ready
from imdiag.masters.node_packages import node_env

from .helpers import TIMEOUT
from .installs import build_wheel, download_wheelhouse
from .nginx import nginx_missing


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require(reason: str | None) -> None:
    """Skip with ``reason`` locally; under CI=true a missing real part is a failure."""
    if reason is not None:
        if in_ci():
            pytest.fail(f"CI=true requires every real part: {reason}", pytrace=False)
        pytest.skip(reason)


def require_node() -> None:
    require(node_ready())


@pytest.fixture(autouse=True)
def _node_marker(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("node") is not None:
        require_node()
    if request.node.get_closest_marker("nginx") is not None:
        require(nginx_missing())


@pytest.fixture
def self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A server-side TLS context with a fresh self-signed certificate for 127.0.0.1."""
    if shutil.which("openssl") is None:
        require("openssl is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1"],
        check=True, capture_output=True, timeout=TIMEOUT * 3,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


# Reads one JSON request per line, answers one JSON line: what JSON.stringify and the
# master's digest make of the value, or the bytes of the frame a Node client sends for
# [event, namespace, message] (socket.io-parser's Encoder, as socket.io-client uses it, then
# Buffer.from as ws and the polling transport write a string: base64). Answers are
# JSON-encoded strings, so any output (lone surrogates included) survives the pipe.
_NODE_ORACLE = r"""
const { digest } = require("./master.js");
const prefix = process.env.IMDIAG_NODE_PREFIX;  // where imdiag found the npm packages, as master.js
const load = prefix ? require("module").createRequire(require("path").join(prefix, "package.json")) : require;
const { Encoder, PacketType } = load("socket.io-parser");
const encoder = new Encoder();
const rl = require("readline").createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const [op, value] = JSON.parse(line);
  let out;
  if (op === "digest") out = digest(value);
  else if (op === "frame") {
    const [event, nsp, message] = value;
    const [packet] = encoder.encode({ type: PacketType.EVENT, nsp, data: [event, message] });
    out = Buffer.from("4" + packet).toString("base64");
  } else out = JSON.stringify(value);
  process.stdout.write(JSON.stringify(out) + "\n");
});
"""


class NodeOracle:
    """One long-lived node process that answers JSON.stringify / digest requests."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            ["node", "-e", _NODE_ORACLE], cwd=NODE_DIR, env=node_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )

    def _ask(self, op: str, value: Any) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        # ensure_ascii: every str (lone surrogates too) crosses the pipe as \\u escapes.
        self.proc.stdin.write(json.dumps([op, value], ensure_ascii=True).encode() + b"\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the node oracle exited with code {self.proc.wait()}")
        answer = json.loads(line)
        assert isinstance(answer, str)
        return answer

    def stringify(self, value: Any) -> str:
        return self._ask("stringify", value)

    def digest(self, value: Any) -> str:
        return self._ask("digest", value)

    def frame(self, event: str, namespace: str, message: Any) -> bytes:
        """The bytes socket.io-client puts on the wire for ``emit(event, message)`` in ``namespace``."""
        return base64.b64decode(self._ask("frame", [event, namespace, message]))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()  # the readline interface ends and node exits
        try:
            self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="session")
def node_oracle() -> Iterator[NodeOracle]:
    require_node()
    oracle = NodeOracle()
    try:
        yield oracle
    finally:
        oracle.close()


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """imdiag's wheel, built once per session like ``make dist``."""
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """The wheel's dependencies and setuptools, fetched once from the configured indexes."""
    return download_wheelhouse(tmp_path_factory.mktemp("wheelhouse"), wheel)
