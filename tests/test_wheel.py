"""The wheel users install: built like ``make dist``, installed into a fresh venv outside the clone,
it runs a sweep there, and ``--master node`` installs the pinned npm packages itself on first use.

The venv starts empty (no ``--system-site-packages``: that would reuse this checkout's editable
install and prove nothing); pip installs the wheel and its dependencies from the session's
wheelhouse (``tests/installs.py``), with constraints.txt. PATH holds the venv, ``node``, ``npm``
and the system's basic tools; HOME is new, so the npm packages go to a new user cache.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from .conftest import require
from .installs import REPO, run

SWEEP = ("size-sweep", "--limits", "100KB", "--no-boundary", "--sizes", "1KB,200KB")


def test_the_wheel_installs_and_runs_outside_the_clone(tmp_path: Path, wheel: Path, wheelhouse: Path) -> None:
    venv = tmp_path / "venv"
    done = run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # This checkout's pip installs into the new venv (--python): no pip bootstrap in it.
    done = run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--quiet", "--no-index",
               "--find-links", wheelhouse, "-c", REPO / "constraints.txt", wheel, cwd=tmp_path)
    assert done.returncode == 0, done.stderr

    home = tmp_path / "home"
    home.mkdir()
    tools = [str(venv / "bin")] + [os.path.dirname(p) for t in ("node", "npm") if (p := shutil.which(t))]
    env = {"PATH": os.pathsep.join([*dict.fromkeys(tools), "/usr/bin", "/bin"]), "HOME": str(home),
           "XDG_CACHE_HOME": str(home / ".cache"), "NO_COLOR": "1", "LANG": "C.UTF-8"}
    if (Path.home() / ".npm").is_dir():
        env["npm_config_cache"] = str(Path.home() / ".npm")  # npm's download cache: spares the registry
    where = run(venv / "bin" / "python", "-c", "import imdiag; print(imdiag.__file__)", cwd=tmp_path, env=env)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr

    python = run(venv / "bin" / "imdiag", *SWEEP, "--json", "python.json", cwd=tmp_path, env=env)
    assert python.returncode == 0, python.stderr
    report = json.loads((tmp_path / "python.json").read_text())
    assert [(c["message_bytes"], c["delivered"]) for c in report["cells"] if c["type"] == "worker:data:sync"
            and c["label"] == "ladder" and c["transport"] == "websocket"] == [(1_000, True), (200_000, False)]

    require(None if shutil.which("node") and shutil.which("npm") else "Node.js and npm are needed for --master node")
    node = run(venv / "bin" / "imdiag", *SWEEP, "--master", "node", "--json", "node.json", cwd=tmp_path, env=env)
    assert node.returncode == 0, node.stderr
    (installed,) = (home / ".cache" / "imdiag").glob("node-*")
    assert node.stderr.startswith(f"imdiag: installing the pinned Node.js packages (socket.io 4.8.1, socket.io-client 4.8.1, socket.io-v2 2.5.1) into {installed}")
    report = json.loads((tmp_path / "node.json").read_text())
    assert {m["versions"]["socket.io"] for m in report["masters"]} == {"4.8.1"}
    refused = {c["cause"] for c in report["cells"] if c["message_bytes"] == 200_000}
    assert refused == {"oversize-close"} and all(c["delivered"] for c in report["cells"] if c["message_bytes"] == 1_000)
    # Nothing was written into site-packages, and the next run reuses the install.
    assert not list((venv / "lib").glob("python*/site-packages/imdiag/node/node_modules"))
    again = run(venv / "bin" / "imdiag", "node", "status", cwd=tmp_path, env=env)
    assert again.returncode == 0 and f"installed in {installed} (user cache)" in again.stdout, again.stdout
