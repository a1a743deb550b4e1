"""The pinned npm packages: the lookup order, the lock check, ``npm ci`` on first use, ``imdiag node``."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from imdiag.core.errors import TargetError
from imdiag.masters import node_packages
from imdiag.masters.node import NodeMaster
from imdiag.masters.node_packages import (
    LOCK_FILE,
    install,
    locate,
    lock_hash,
    matches_lock,
    top_level,
)

from ..conftest import require
from ..helpers import TIMEOUT, assert_one_line_error, run_imdiag


def _fake_install(prefix: Path, versions: dict[str, str | None]) -> None:
    """node_modules/.package-lock.json as npm writes it, and each top-level package.json."""
    lock = json.loads(LOCK_FILE.read_text())
    packages = {path: dict(entry) for path, entry in lock["packages"].items() if path}
    for path, version in versions.items():
        if version is None:
            packages.pop(path)
        else:
            packages[path]["version"] = version
    (prefix / "node_modules").mkdir(parents=True)
    (prefix / "node_modules" / ".package-lock.json").write_text(json.dumps({"packages": packages}))
    for name in top_level():
        (prefix / "node_modules" / name).mkdir(parents=True)
        (prefix / "node_modules" / name / "package.json").write_text("{}")


def test_an_install_matches_only_at_every_pinned_version(tmp_path: Path) -> None:
    good, stale, partial = tmp_path / "good", tmp_path / "stale", tmp_path / "partial"
    _fake_install(good, {})
    _fake_install(stale, {"node_modules/ws": "8.0.0"})
    _fake_install(partial, {"node_modules/ws": None})
    assert matches_lock(good)
    assert not matches_lock(stale) and not matches_lock(partial) and not matches_lock(tmp_path / "none")
    shutil.rmtree(good / "node_modules" / "socket.io")  # npm's record outlived the package
    assert not matches_lock(good)


def test_lookup_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(node_packages, "NODE_DIR", tmp_path / "clone")  # no `make node` there
    monkeypatch.delenv("IMDIAG_NODE_DIR", raising=False)
    found = locate()
    assert found.prefix == tmp_path / "cache" / "imdiag" / f"node-{lock_hash()}"
    assert (found.source, found.installed) == ("user cache", False)
    _fake_install(tmp_path / "clone", {})
    assert locate().prefix == tmp_path / "clone" and locate().installed  # a clone's `make node` wins
    monkeypatch.setenv("IMDIAG_NODE_DIR", str(tmp_path / "mine"))
    assert (locate().prefix, locate().source, locate().installed) == (tmp_path / "mine", "IMDIAG_NODE_DIR", False)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # not absolute: ignored, as XDG says
    monkeypatch.delenv("IMDIAG_NODE_DIR")
    monkeypatch.setattr(node_packages, "NODE_DIR", tmp_path / "elsewhere")
    assert locate().prefix.parent == Path.home() / ".cache" / "imdiag"


def _fake_npm(directory: Path, script: str) -> str:
    """A PATH with a fake `npm` first, then node (the real one, else a stub) and the system's tools."""
    directory.mkdir()
    node = shutil.which("node")
    if node:
        (directory / "node").symlink_to(node)
    for name, text in (("npm", script), ("node", "") if not node else ("", "")):
        if name:
            (directory / name).write_text("#!/bin/sh\n" + text)
            (directory / name).chmod(0o755)
    return f"{directory}{os.pathsep}{os.defpath}"


async def test_without_npm_one_line_says_what_to_install(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path / "empty"), "IMDIAG_NODE_DIR": str(tmp_path / "packages")}
    code, _, stderr = await run_imdiag("size-sweep", "--master", "node", timeout=TIMEOUT, env=env)
    assert_one_line_error(code, stderr, 3, "Node.js is not installed (no `node` and no `npm` on PATH)",
                          "install Node.js >= 18 with npm")
    require(None if shutil.which("node") else "Node.js is not installed")
    (tmp_path / "nodeonly").mkdir()
    (tmp_path / "nodeonly" / "node").symlink_to(str(shutil.which("node")))
    env["PATH"] = str(tmp_path / "nodeonly")
    code, _, stderr = await run_imdiag("node", "install", timeout=TIMEOUT, env=env)
    assert_one_line_error(code, stderr, 3, "npm is not installed (no `npm` on PATH)")


async def test_a_failing_npm_is_one_line_and_leaves_nothing_behind(tmp_path: Path) -> None:
    path = _fake_npm(tmp_path / "bin", "echo 'npm error code E404' >&2; echo 'npm error 404 Not Found' >&2; exit 1\n")
    env = {"PATH": path, "IMDIAG_NODE_DIR": str(tmp_path / "cache" / "packages")}
    code, _, stderr = await run_imdiag("replay", "fixtures/data_sync.json", "--master", "both", timeout=TIMEOUT, env=env)
    lines = stderr.strip().splitlines()
    assert code == 3 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("imdiag: installing the pinned Node.js packages (socket.io ")  # said once, first
    assert lines[1:] == ["imdiag: error: npm ci failed with exit code 1: npm error code E404"], stderr
    assert os.listdir(tmp_path / "cache") == []  # the staging directory is gone


@pytest.mark.node
async def test_installed_on_first_use_then_reused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    require(None if shutil.which("npm") else "npm is not installed")
    target = tmp_path / "packages"
    env = {"IMDIAG_NODE_DIR": str(target)}
    code, stdout, stderr = await run_imdiag("node", "status", timeout=TIMEOUT, env=env)
    assert code == 3 and f"not installed in {target} (IMDIAG_NODE_DIR)" in stdout, stdout + stderr
    code, stdout, stderr = await run_imdiag("node", "install", timeout=10 * TIMEOUT, env=env)
    assert code == 0, stderr
    assert stderr.startswith("imdiag: installing the pinned Node.js packages") and len(stderr.splitlines()) == 1
    assert f"installed: socket.io 4.8.1, socket.io-client 4.8.1, socket.io-v2 2.5.1 in {target}" in stdout
    code, stdout, stderr = await run_imdiag("node", "status", timeout=TIMEOUT, env=env)
    assert code == 0 and f"installed in {target} (IMDIAG_NODE_DIR)" in stdout and stderr == ""
    code, stdout, stderr = await run_imdiag("node", "install", timeout=TIMEOUT, env=env)
    assert code == 0 and stdout.startswith("already installed") and stderr == ""
    # master.js loads the packages from there, not from next to itself: mark one and look.
    package_json = target / "node_modules" / "ws" / "package.json"
    marked: dict[str, Any] = {**json.loads(package_json.read_text()), "version": "8.23.0-from-imdiag-node-dir"}
    package_json.write_text(json.dumps(marked))
    monkeypatch.setenv("IMDIAG_NODE_DIR", str(target))
    async with NodeMaster(limit=1000) as master:
        assert master.versions["ws"] == "8.23.0-from-imdiag-node-dir"
        assert master.versions["socket.io"] == "4.8.1"


def test_an_empty_directory_made_for_it_is_filled(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The rename-into-place path without npm: a fake npm writes what npm ci would."""
    script = "".join(f"mkdir -p node_modules/{name}\necho '{{}}' > node_modules/{name}/package.json\n"
                     for name in top_level())
    script += "cp package-lock.json node_modules/.package-lock.json\n"
    monkeypatch.setenv("PATH", _fake_npm(tmp_path / "bin", script))
    target = tmp_path / "made"
    target.mkdir()
    monkeypatch.setenv("IMDIAG_NODE_DIR", str(target))
    installed = install(locate())
    assert installed.installed and matches_lock(target) and sorted(os.listdir(tmp_path)) == ["bin", "made"]


def test_another_projects_directory_is_left_alone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", _fake_npm(tmp_path / "bin", "touch npm-ran\n"))
    project = tmp_path / "project"
    project.mkdir()
    (project / "package.json").write_text('{"name": "their-app"}')
    monkeypatch.setenv("IMDIAG_NODE_DIR", str(project))
    with pytest.raises(TargetError, match="holds another package.json"):
        install(locate())
    assert (project / "package.json").read_text() == '{"name": "their-app"}'
    assert not (project / "npm-ran").exists()
