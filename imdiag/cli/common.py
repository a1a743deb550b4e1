"""What every command shares: consoles, the one error printer, running a coroutine, writing reports.

Exit codes: 0 done (or gate passed), 1 gate failed (doctor: a hypothesis confirmed), 2 usage or input error,
3 target could not be reached or set up, 4 a transport diagnosed but not measurable (probe,
replay --url), 130 interrupted (partial report written).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from imdiag.cli.files import write_atomic
from imdiag.core.errors import ExitCode, ImdiagError, InputError
from imdiag.core.units import timeout_problem
from imdiag.core.wire import printable

EXIT_CODES_HELP = (
    "Exit codes: 0 done, 1 gate failed (doctor: a hypothesis confirmed), 2 usage or input error, "
    "3 target unreachable or could not be set up, 4 a transport diagnosed but not measurable (the path breaks it), "
    "130 interrupted (partial report written)."
)

T = TypeVar("T")


def console(stderr: bool = False) -> Console:
    out = Console(stderr=stderr, highlight=False, soft_wrap=False)
    if not out.is_terminal:
        # Piped or redirected: wide enough that tables stay one line per row.
        out = Console(stderr=stderr, highlight=False, soft_wrap=False, width=160)
    return out


def print_diagnosed(message: str) -> None:
    """Exit 4's one line: a finding about the path, not an error of the tool."""
    print(f"imdiag: diagnosed: {message}", file=sys.stderr)


def print_error(message: str) -> None:
    """The one way an error reaches the user: one line on stderr, never wrapped (a control
    character from the input, a newline included, is written as its \\uXXXX escape)."""
    print(f"imdiag: error: {printable(message)}", file=sys.stderr)


# typer's usage errors are click's exception classes, which typer >= 0.26 vendors in a private
# module (typer._click) and older versions import from click: they are recognised by class name.
USAGE_ERRORS = ("NoArgsIsHelpError", "NoSuchOption", "MissingParameter", "BadParameter", "UsageError")


def usage_error_kind(exc: BaseException) -> str | None:
    """Which of typer's usage errors ``exc`` is (the most specific), or None."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return next((kind for kind in USAGE_ERRORS if kind in names), None)


def usage_error_line(exc: Exception) -> str:
    """typer's usage errors (bad option value, unknown option, missing argument) as one line
    that says what is allowed, for ``print_error``."""
    kind = usage_error_kind(exc)
    ctx = getattr(exc, "ctx", None)
    command = getattr(ctx, "command_path", None) or "imdiag"
    see = f"`{command} --help` lists every option"
    if kind == "NoSuchOption":
        possibilities = sorted(getattr(exc, "possibilities", None) or [])
        guess = f"; did you mean {' or '.join(possibilities)}?" if possibilities else ""
        return f"no such option {getattr(exc, 'option_name', '')}{guess} ({see})"
    param = getattr(exc, "param", None)
    name = _param_name(param)
    if kind == "MissingParameter":
        what = "argument" if getattr(param, "param_type_name", "") == "argument" else "option"
        help_text = getattr(param, "help", None) or ""
        return f"missing {what} {name}" + (f": {help_text.rstrip('.')}" if help_text else "") + f" ({see})"
    if kind == "BadParameter":
        message = str(getattr(exc, "message", exc)).removeprefix("Value error, ").rstrip(".")
        # typer checks values with pydantic, whose error holds the value as it was typed.
        errors = getattr(exc.__cause__, "errors", None)
        value = errors()[0].get("input") if callable(errors) and errors() else None
        if isinstance(value, str) and repr(value) not in message:
            message = f"{value!r}: {message[:1].lower()}{message[1:]}"
        return f"invalid value for {name}: {message} ({see})"
    format_message = getattr(exc, "format_message", None)
    message = (format_message() if callable(format_message) else str(exc)).rstrip(".")
    return f"{message[:1].lower()}{message[1:]} ({see})"


def _param_name(param: object) -> str:
    opts = getattr(param, "opts", None) or []
    longest = max(opts, key=len) if opts else getattr(param, "name", "") or "a value"
    return str(getattr(param, "metavar", None) or longest) if getattr(param, "param_type_name", "") == "argument" \
        else str(longest)


def fail(message: str, code: ExitCode) -> typer.Exit:
    """Print the error; return the exit to raise (``raise fail(...) from None``)."""
    print_error(message)
    return typer.Exit(int(code))


def run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine; ImdiagError becomes a one-line message and its exit code."""
    try:
        return asyncio.run(make())
    except ImdiagError as exc:
        raise fail(str(exc), exc.exit_code) from None


def write_json(path: str, data: dict[str, Any]) -> None:
    """The one JSON report writer: atomic, UTF-8, indented."""
    try:
        write_atomic(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    except OSError as exc:
        raise InputError(f"cannot write report {path}: {exc.strerror or exc}") from None


def write_text(path: str, text: str, what: str) -> None:
    """A text report (JUnit, Markdown, HTML), atomically; an unwritable path is an InputError."""
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise InputError(f"cannot write {what} {path}: {exc.strerror or exc}") from None


def progress_for(out: Console) -> Progress | None:
    if not out.is_terminal:
        return None
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=out, transient=True,
    )


def check_timeout(seconds: float) -> None:
    """--timeout: a finite number of seconds, more than 0 (not inf, not nan), at most an hour."""
    problem = timeout_problem(seconds)
    if problem:
        raise InputError(f"invalid --timeout {seconds:g}: {problem}")


def timeout_scale() -> float:
    """CI may scale every timeout (IMDIAG_TIMEOUT_SCALE=2) without touching the tests."""
    try:
        return float(os.environ.get("IMDIAG_TIMEOUT_SCALE", "1"))
    except ValueError:
        return 1.0


def scaled_timeout(seconds: float) -> float:
    """--timeout checked, then scaled for the run."""
    check_timeout(seconds)
    return seconds * timeout_scale()
