"""The ``imdiag`` console script: Ctrl-C even while the CLI's libraries load exits 130, quietly."""

from __future__ import annotations

import sys

INTERRUPTED = 130  # imdiag.errors.ExitCode.INTERRUPTED, without importing anything first


def main() -> None:
    try:
        from imdiag.cli import main as cli_main
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED)
    cli_main()
