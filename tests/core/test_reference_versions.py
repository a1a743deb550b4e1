"""The versions the README's figures came from: pinned for `make`, and named when a run differs."""

from __future__ import annotations

import json
import re
from pathlib import Path

from imdiag.core.quirks import REFERENCE_VERSIONS, version_drift

ROOT = Path(__file__).resolve().parents[2]


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if match := re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip()):
            pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


def test_the_reference_versions_are_the_pinned_ones() -> None:
    pins = _constraints()
    assert REFERENCE_VERSIONS["python"] and REFERENCE_VERSIONS["node"] and REFERENCE_VERSIONS["asgi"]
    for server in ("python", "asgi"):
        for package, version in REFERENCE_VERSIONS[server].items():
            assert pins.get(package) == version, \
                f"constraints.txt pins {package} {pins.get(package)}, servers.toml says {version}"
    lock = json.loads((ROOT / "imdiag" / "node" / "package-lock.json").read_text())["packages"]
    for package, version in REFERENCE_VERSIONS["node"].items():
        assert lock[f"node_modules/{package}"]["version"] == version, package
    # Every runtime dependency is pinned, not only the three the rules name.
    for name in ("python-socketio", "python-engineio", "aiohttp", "typer", "rich", "orjson", "yarl", "multidict",
                 "uvicorn", "wsproto", "h11", "click"):
        assert name in pins, name


def test_drift_is_one_line_naming_what_differs() -> None:
    same = [("python", dict(REFERENCE_VERSIONS["python"])), ("node", {**REFERENCE_VERSIONS["node"], "node": "v99"})]
    assert version_drift(same) is None
    other = [("python", {**REFERENCE_VERSIONS["python"], "aiohttp": "3.9.0"}), ("live", {"aiohttp": "1.0"}),
             ("node", {"ws": "8.0.0", "socket.io": REFERENCE_VERSIONS["node"]["socket.io"]})]
    note = version_drift(other)
    assert note is not None and "\n" not in note
    pinned = REFERENCE_VERSIONS["python"]["aiohttp"]
    assert f"the python master ran aiohttp 3.9.0 (README: {pinned})" in note
    assert f"the node master ran ws 8.0.0 (README: {REFERENCE_VERSIONS['node']['ws']})" in note
    assert "socket.io" not in note and "live" not in note
