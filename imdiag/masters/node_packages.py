"""The pinned npm packages of imdiag's Node.js parts: where they are, and installing them once.

``imdiag/node/package-lock.json`` pins them (socket.io and everything it loads). They are looked
up in this order, the first match wins:

1. ``$IMDIAG_NODE_DIR``, when set: the only place looked at; installed there on demand.
2. ``imdiag/node/node_modules`` next to ``master.js``, when it matches the lock (a clone after
   ``make node``, or anyone who ran ``npm ci`` there).
3. the user cache, ``$XDG_CACHE_HOME/imdiag/node-<lock hash>`` (``~/.cache/imdiag/...`` by
   default), installed there on demand with ``npm ci``.

A directory "matches" when npm's own record of what it installed (``node_modules/.package-lock.json``)
holds every package of the lock at its pinned version: a stale ``make node`` or a half-finished
install is never used. A new install is built in a temporary sibling directory and renamed into
place, so two imdiag processes installing at once both end up with a complete directory.
The Node scripts load the packages from the chosen directory through ``IMDIAG_NODE_PREFIX``
(``node_env()``), not from wherever Node's own lookup from the script would find them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imdiag.core.errors import TargetError

NODE_DIR = Path(__file__).resolve().parent.parent / "node"  # master.js, package.json, package-lock.json
LOCK_FILE = NODE_DIR / "package-lock.json"
PACKAGE_FILE = NODE_DIR / "package.json"
ENV_DIR = "IMDIAG_NODE_DIR"
PREFIX_ENV = "IMDIAG_NODE_PREFIX"  # read by the Node scripts (master.js)
INSTALL_COMMAND = ("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
INSTALL_TIMEOUT_S = 600.0  # npm ci of a few packages; from npm's own cache it takes seconds
INSTALL_HINT = "run `imdiag node install`"
NODE_HINT = "install Node.js >= 18 with npm (e.g. `apt-get install nodejs npm`, or https://nodejs.org)"


@dataclass(frozen=True)
class NodePackages:
    """Where the pinned packages are (or will be installed) and whether they are there."""

    prefix: Path  # the directory holding node_modules/
    source: str  # "IMDIAG_NODE_DIR", "next to master.js" or "user cache"
    installed: bool


def lock_hash() -> str:
    return hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()[:16]


def pinned_versions(lock: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Every package of the lock (``node_modules/...`` path) and its pinned version."""
    data = lock if lock is not None else _read_json(LOCK_FILE)
    packages = data.get("packages", {}) if data else {}
    return {k: str(v.get("version")) for k, v in packages.items() if k.startswith("node_modules/")}


def top_level(lock: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The packages the scripts require by name (``socket.io``...), with their pinned version."""
    data = lock if lock is not None else _read_json(LOCK_FILE)
    pinned = pinned_versions(data)
    names = (data or {}).get("packages", {}).get("", {}).get("dependencies", {})
    return {name: pinned.get(f"node_modules/{name}", "?") for name in names}


def matches_lock(prefix: Path) -> bool:
    """npm's record of ``prefix/node_modules`` holds every locked package at its pinned version."""
    lock = _read_json(LOCK_FILE)
    installed = _read_json(prefix / "node_modules" / ".package-lock.json")
    if not lock or not installed:
        return False
    have = installed.get("packages", {})
    for path, entry in lock.get("packages", {}).items():
        if not path.startswith("node_modules/"):
            continue
        found = have.get(path)
        if found is None and (entry.get("optional") or entry.get("devOptional")):
            continue  # an optional package for another platform: npm did not install it
        if found is None or found.get("version") != entry.get("version"):
            return False
    # npm's record could outlive a deleted package directory: the required ones must be on disk.
    return all((prefix / "node_modules" / name / "package.json").is_file() for name in top_level(lock))


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/imdiag``, else ``~/.cache/imdiag`` (XDG base directories)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "imdiag"


def locate() -> NodePackages:
    """The directory to use, in the lookup order of this module's docstring."""
    chosen = os.environ.get(ENV_DIR, "")
    if chosen:
        prefix = Path(chosen).expanduser().absolute()
        return NodePackages(prefix, ENV_DIR, matches_lock(prefix))
    if matches_lock(NODE_DIR):
        return NodePackages(NODE_DIR, "next to master.js", True)
    prefix = cache_root() / f"node-{lock_hash()}"
    return NodePackages(prefix, "user cache", matches_lock(prefix))


def node_env(packages: NodePackages | None = None) -> dict[str, str]:
    """The environment for a Node script of imdiag: it loads the packages from ``prefix``."""
    where = packages or locate()
    return {**os.environ, PREFIX_ENV: str(where.prefix)}


def missing_tools() -> str | None:
    """None when ``node`` and ``npm`` are on PATH, else a one-line reason saying what to install."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None:
        return f"Node.js is not installed (no `node`{'' if npm else ' and no `npm`'} on PATH): {NODE_HINT}"
    if npm is None:
        return f"npm is not installed (no `npm` on PATH): {NODE_HINT}"
    return None


def check_tools() -> None:
    """TargetError (exit 3) saying what to install when ``node`` or ``npm`` is missing."""
    reason = missing_tools()
    if reason is not None:
        raise TargetError(f"the pinned Node.js packages cannot be installed: {reason}")


def install(packages: NodePackages) -> NodePackages:
    """``npm ci`` the lock into ``packages.prefix``; returns it installed. Raises TargetError."""
    check_tools()
    target = packages.prefix
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir() and any(target.iterdir()):
            # An existing directory (IMDIAG_NODE_DIR, or a damaged install): repaired in place;
            # npm ci replaces node_modules/ and leaves anything else there alone. Never over
            # someone else's package.json (IMDIAG_NODE_DIR pointed at a project).
            theirs = _read_json(target / "package.json")
            ours = _read_json(PACKAGE_FILE) or {}
            if (target / "package.json").exists() and (theirs or {}).get("name") != ours.get("name"):
                raise TargetError(f"{target} holds another package.json: point {ENV_DIR} at a directory "
                                  "of imdiag's own (it is created if missing)")
            _npm_ci(target)
        else:
            _install_beside(target)
    except OSError as exc:
        raise TargetError(f"cannot install the Node.js packages into {target}: {exc.strerror or exc}; "
                          f"set {ENV_DIR} to a writable directory") from None
    if not matches_lock(target):
        raise TargetError(f"npm ci finished but {target / 'node_modules'} does not match {LOCK_FILE}")
    return NodePackages(target, packages.source, True)


def _install_beside(target: Path) -> None:
    """Build the install in a temporary sibling, then rename it into place (atomic)."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide a shared install (a CI image) from other users
    try:
        _npm_ci(staging)
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()  # an empty directory made for us: take its place
        try:
            staging.rename(target)
        except OSError:
            if not matches_lock(target):  # not another imdiag that finished first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _npm_ci(directory: Path) -> None:
    shutil.copyfile(PACKAGE_FILE, directory / "package.json")
    shutil.copyfile(LOCK_FILE, directory / "package-lock.json")
    npm = shutil.which("npm")
    assert npm is not None
    try:
        done = subprocess.run([npm, *INSTALL_COMMAND[1:]], cwd=directory, capture_output=True, text=True,
                              timeout=INSTALL_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise TargetError(f"npm ci did not finish within {INSTALL_TIMEOUT_S:g} s (installing into {directory})") from None
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        # npm's first error line says what went wrong ("npm error code E404", "npm ERR! ...").
        errors = [line for line in lines if line.lower().startswith(("npm err!", "npm error")) and len(line) > 10]
        detail = errors[0] if errors else (lines[-1] if lines else "no output")
        raise TargetError(f"npm ci failed with exit code {done.returncode}: {detail[:300]}")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
