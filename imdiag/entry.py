"""The ``imdiag`` console script: Ctrl-C even while the CLI's libraries load exits 130, quietly."""

from __future__ import annotations

import sys

INTERRUPTED = 130  # imdiag.core.errors.ExitCode.INTERRUPTED, without importing anything first


def main() -> None:
    try:
        # Imported here for start-up time (and so that Ctrl-C while it loads exits quietly).
        from imdiag.cli import main as cli_main
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED)
    cli_main()
