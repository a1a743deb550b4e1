"""The wheel users install: built like ``make dist``, installed into a fresh venv outside the clone,
it runs a sweep there, and ``--master node`` installs the pinned npm packages itself on first use.

The venv starts empty (no ``--system-site-packages``: that would reuse this checkout's editable
install and prove nothing); pip fills it from the wheel and the machine's configured indexes,
with constraints.txt. PATH holds the venv, ``node``, ``npm`` and the system's basic tools.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import require
from .helpers import TIMEOUT

REPO = Path(__file__).resolve().parents[1]
SWEEP = ("size-sweep", "--limits", "100KB", "--no-boundary", "--sizes", "1KB,200KB")


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = TIMEOUT * 18
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def copy_sources(dest: Path, *extra: str) -> None:
    """What a checkout of imdiag holds for a build (and ``extra`` files), without installed parts."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md", *extra):
        shutil.copy(REPO / name, dest / name)
    shutil.copytree(REPO / "imdiag", dest / "imdiag",
                    ignore=shutil.ignore_patterns("node_modules", "__pycache__", "*.egg-info"))


def build_wheel(tmp_path: Path) -> Path:
    """``make dist`` on a copy of the sources (a build writes build/ and *.egg-info next to them)."""
    copy_sources(tmp_path / "source")
    done = _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", tmp_path / "dist",
                tmp_path / "source", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (wheel,) = (tmp_path / "dist").glob("imdiag-*.whl")
    return wheel


def test_the_wheel_installs_and_runs_outside_the_clone(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    venv = tmp_path / "venv"
    done = _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # This checkout's pip installs into the new venv (--python): no pip bootstrap in it.
    done = _run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--quiet",
                "-c", REPO / "constraints.txt", wheel, cwd=tmp_path)
    assert done.returncode == 0, done.stderr

    home = tmp_path / "home"
    home.mkdir()
    tools = [str(venv / "bin")] + [os.path.dirname(p) for t in ("node", "npm") if (p := shutil.which(t))]
    env = {"PATH": os.pathsep.join([*dict.fromkeys(tools), "/usr/bin", "/bin"]), "HOME": str(home),
           "XDG_CACHE_HOME": str(home / ".cache"), "NO_COLOR": "1", "LANG": "C.UTF-8"}
    if "npm_config_cache" not in os.environ and (Path.home() / ".npm").is_dir():
        env["npm_config_cache"] = str(Path.home() / ".npm")  # npm's download cache: spares the registry
    where = _run(venv / "bin" / "python", "-c", "import imdiag; print(imdiag.__file__)", cwd=tmp_path, env=env)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr

    python = _run(venv / "bin" / "imdiag", *SWEEP, "--json", "python.json", cwd=tmp_path, env=env)
    assert python.returncode == 0, python.stderr
    report = json.loads((tmp_path / "python.json").read_text())
    assert [(c["message_bytes"], c["delivered"]) for c in report["cells"] if c["type"] == "worker:data:sync"
            and c["label"] == "ladder" and c["transport"] == "websocket"] == [(1_000, True), (200_000, False)]

    require(None if shutil.which("node") and shutil.which("npm") else "Node.js and npm are needed for --master node")
    node = _run(venv / "bin" / "imdiag", *SWEEP, "--master", "node", "--json", "node.json", cwd=tmp_path, env=env)
    assert node.returncode == 0, node.stderr
    cache = home / ".cache" / "imdiag"
    (installed,) = cache.glob("node-*")
    assert node.stderr.startswith(f"imdiag: installing the pinned Node.js packages (socket.io 4.8.1) into {installed}")
    report = json.loads((tmp_path / "node.json").read_text())
    assert {m["versions"]["socket.io"] for m in report["masters"]} == {"4.8.1"}
    refused = {c["cause"] for c in report["cells"] if c["message_bytes"] == 200_000}
    assert refused == {"oversize-close"} and all(c["delivered"] for c in report["cells"] if c["message_bytes"] == 1_000)
    # Nothing was written into site-packages, and the next run reuses the install.
    assert not list((venv / "lib").glob("python*/site-packages/imdiag/node/node_modules"))
    again = _run(venv / "bin" / "imdiag", "node", "status", cwd=tmp_path, env=env)
    assert again.returncode == 0 and f"installed in {installed} (user cache)" in again.stdout, again.stdout
