"""One error hierarchy for imdiag, and the process exit codes it maps to."""

from __future__ import annotations

import enum
from collections.abc import Iterator


class ExitCode(enum.IntEnum):
    """Documented exit codes (README, ``--help``)."""

    OK = 0
    GATE_FAILED = 1
    CONFIRMED = 1  # imdiag doctor: at least one hypothesis (a cause of loss) confirmed
    USAGE = 2
    TARGET = 3
    # The path between client and master breaks a transport (no sticky sessions, a blocked
    # upgrade): diagnosed, with its cause and fix, and not measured; the others were measured.
    DIAGNOSED = 4
    INTERRUPTED = 130


class ImdiagError(Exception):
    """An error imdiag reports in one line, without a traceback."""

    exit_code: ExitCode = ExitCode.USAGE


class InputError(ImdiagError):
    """Bad user input: a size string, an unknown type, a malformed fixture."""

    exit_code = ExitCode.USAGE


class TargetError(ImdiagError):
    """The target could not be reached or set up (port, URL, Node.js)."""

    exit_code = ExitCode.TARGET


class EncodeError(ImdiagError):
    """A message cannot be encoded the way the real sender would encode it."""

    exit_code = ExitCode.USAGE


def reported(error: BaseException) -> BaseException:
    """The one error to report for an error out of a task group: the first imdiag knows how to
    report (one line), else the first."""
    leaves = list(_leaves(error))
    return next((e for e in leaves if isinstance(e, ImdiagError)), leaves[0])


def _leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error
