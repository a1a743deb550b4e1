"""``imdiag node install|status``, and the install on first use that every Node-needing command runs.

Where the pinned npm packages are looked up, and why, is ``imdiag.masters.node_packages``.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterable

import typer

from imdiag.cli.common import console, fail
from imdiag.core.errors import ExitCode, ImdiagError
from imdiag.masters.node_packages import (
    LOCK_FILE,
    NodePackages,
    check_tools,
    install,
    locate,
    lock_hash,
    missing_tools,
    top_level,
)

node_app = typer.Typer(
    name="node",
    help="The pinned Node.js packages (socket.io, socket.io-client) that --master node and --client node need: "
         "install them, or say where they are.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _pinned() -> str:
    return ", ".join(f"{name} {version}" for name, version in top_level().items())


def install_with_spinner(packages: NodePackages) -> NodePackages:
    """Install, saying so in one line on stderr (a spinner on a terminal). Raises TargetError."""
    check_tools()  # before announcing anything: a missing npm is one line
    err = console(stderr=True)
    line = f"imdiag: installing the pinned Node.js packages ({_pinned()}) into {packages.prefix} with npm ci, once"
    started = time.monotonic()
    if err.is_terminal:
        with err.status(line):
            installed = install(packages)
        err.print(f"imdiag: installed the pinned Node.js packages into {packages.prefix} "
                  f"in {time.monotonic() - started:.1f} s", soft_wrap=True)
    else:
        print(line, file=err.file, flush=True)  # a CI log: one plain line, never wrapped
        installed = install(packages)
    return installed


def ensure_node_packages(parts: Iterable[str]) -> None:
    """Before a run that starts a Node master or client (``parts``: the masters, and the client):
    install the packages on first use. Raises TargetError."""
    if "node" not in parts:
        return
    packages = locate()
    if not packages.installed:
        install_with_spinner(packages)


@node_app.command("install")
def install_command() -> None:
    """Install the pinned npm packages (npm ci) where imdiag looks for them; nothing if already there."""
    packages = locate()
    if packages.installed:
        print(f"already installed: {_pinned()} in {packages.prefix} ({packages.source})")
        return
    try:
        installed = install_with_spinner(packages)
    except ImdiagError as exc:
        raise fail(str(exc), exc.exit_code) from None
    print(f"installed: {_pinned()} in {installed.prefix} ({installed.source})")


def _tool_version(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        return "not found on PATH"
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{path} (no version: {exc})"
    return f"{done.stdout.strip() or '?'} ({path})"


@node_app.command("status")
def status_command() -> None:
    """Say whether Node.js, npm and the pinned packages are ready, and where. Exit 3 when not."""
    packages = locate()
    state = "installed" if packages.installed else "not installed"
    rows = [
        ("node", _tool_version("node")),
        ("npm", _tool_version("npm")),
        ("pinned", f"{_pinned()} ({LOCK_FILE}, sha256 {lock_hash()}...)"),
        ("packages", f"{state} in {packages.prefix} ({packages.source})"),
    ]
    for name, value in rows:
        print(f"{name:<9} {value}")
    tools = missing_tools()
    if tools is not None and (shutil.which("node") is None or not packages.installed):
        raise fail(tools, ExitCode.TARGET)  # cannot run, or cannot install
    if not packages.installed:
        raise fail("the pinned packages are not installed: run `imdiag node install` (or any --master node "
                   "command, which installs them on first use)", ExitCode.TARGET)
