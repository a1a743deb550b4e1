"""The real Node.js Socket.IO master, driven from python exactly like ``PythonMaster``.

``imdiag/node/master.js`` is a master host (``imdiag.masters.child``): it runs a socket.io v4
server per master (nothing emulated) and reports each connect, arrival, disconnect and
server-side error as one JSON line on stdout, in the order the server dispatched them. It exits
when its stdin closes, so it never outlives this process, even if ``stop()`` never ran.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from imdiag.core.errors import TargetError
from imdiag.masters.child import ChildMaster, HostCommand
from imdiag.masters.node_packages import (
    INSTALL_HINT,
    NODE_DIR,
    PREFIX_ENV,
    NodePackages,
    locate,
    missing_tools,
)

SERVER_NAME = "node"
MASTER_JS = NODE_DIR / "master.js"


def node_ready() -> str | None:
    """None when Node.js and the pinned npm packages are usable, else a one-line reason."""
    return _packages_or_reason()[1]


def _packages_or_reason() -> tuple[NodePackages | None, str | None]:
    if shutil.which("node") is None:
        return None, missing_tools() or "Node.js is not installed"
    if not MASTER_JS.is_file():
        return None, f"{MASTER_JS} is missing from this installation of imdiag"
    packages = locate()
    if not packages.installed:
        return None, (f"the pinned npm packages of the node master are not installed in {packages.prefix} "
                      f"({packages.source}); {INSTALL_HINT}")
    return packages, None


def node_script(script: Path) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """How to run one of imdiag's Node scripts (``node_ready()`` said it can): node and the
    script, and the environment that makes it load the pinned packages from where imdiag found
    (or installed) them."""
    node = shutil.which("node")
    if node is None:
        raise TargetError(node_ready() or "Node.js is not installed")
    return (node, str(script)), ((PREFIX_ENV, str(locate().prefix)),)


class NodeMaster(ChildMaster):
    """socket.io's ``Server`` on Node.js (``imdiag/node/master.js``), in a process of its own."""

    server = SERVER_NAME
    # Not split: its two heaviest lanes (10 MB, polling and websocket) already go to different
    # hosts, and split lanes wait on each other's decoding in a shared host: a default Node sweep
    # took 5.3 s split against 5.1 s, and --master both 7.3-7.9 s against 6.7-7.1 s.
    split_lanes = False

    def __init__(self, *, csr: bool = False, **kwargs: Any):
        """``csr``: socket.io's connectionStateRecovery on, and one small event per second to
        each worker (see master.js)."""
        super().__init__(**kwargs)
        self.csr = csr

    def server_options(self) -> dict[str, Any]:
        return {"csr": self.csr}

    def preflight(self) -> str | None:
        return node_ready()

    def host_command(self) -> HostCommand:
        argv, env = node_script(MASTER_JS)  # preflight() checked that it can run
        return HostCommand(argv, "the node master", cwd=str(NODE_DIR), env=env)
