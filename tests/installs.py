"""What the install tests share: this checkout's sources copied out, the wheel, and a local wheelhouse.

Resolving imdiag's dependencies against the configured indexes takes most of an install's time
(pypi.org's pages are long), so it happens once per session: ``wheelhouse()`` downloads the
wheel's dependencies at constraints.txt's versions, and setuptools to build imdiag from source.
Each install test then runs pip as a user would, with ``--no-index --find-links`` that
wheelhouse (PIP_NO_INDEX / PIP_FIND_LINKS for the action's own pip): every dependency is still
resolved and installed from the wheel's metadata, into a fresh venv.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .helpers import TIMEOUT

REPO = Path(__file__).resolve().parents[1]
INSTALL_TIMEOUT = TIMEOUT * 18  # pip and npm against registries, on a loaded machine


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=INSTALL_TIMEOUT, check=False)


def copy_sources(dest: Path, *extra: str) -> None:
    """What a checkout of imdiag holds for a build (and ``extra`` files), without installed parts."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md", *extra):
        shutil.copy(REPO / name, dest / name)
    shutil.copytree(REPO / "imdiag", dest / "imdiag",
                    ignore=shutil.ignore_patterns("node_modules", "__pycache__", "*.egg-info"))


def build_wheel(directory: Path) -> Path:
    """``make dist`` on a copy of the sources (a build writes build/ and *.egg-info next to them)."""
    copy_sources(directory / "source")
    done = run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", directory / "dist",
               directory / "source", cwd=directory)
    assert done.returncode == 0, done.stderr
    (wheel,) = (directory / "dist").glob("imdiag-*.whl")
    return wheel


def download_wheelhouse(directory: Path, wheel: Path) -> Path:
    house = directory / "wheelhouse"
    done = run(sys.executable, "-m", "pip", "download", "--quiet", "--dest", house, "-c", REPO / "constraints.txt",
               wheel, "setuptools>=68", cwd=directory)
    assert done.returncode == 0, done.stderr
    return house
