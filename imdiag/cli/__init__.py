"""The command line: parse, call, render. No measuring or judging happens here.

One module per command; ``common`` (consoles, errors, reports), ``options`` (every shared
option and its parser), ``gating`` (the gate's options and outcome) and ``measure`` (a measuring
command's run) serve them all. This module only assembles the typer app.

Exit codes: 0 done (or gate passed), 1 gate failed (doctor: a hypothesis confirmed), 2 usage or input error,
3 target could not be reached or set up, 130 interrupted (partial report written).
"""

from __future__ import annotations

import functools
import io
import sys
from typing import Annotated, Any

import typer

from imdiag import __version__
from imdiag.cli.common import EXIT_CODES_HELP, print_error, usage_error_kind, usage_error_line
from imdiag.cli.doctor import doctor_command
from imdiag.cli.fake_master import fake_master
from imdiag.cli.gate import gate_command
from imdiag.cli.node import node_app
from imdiag.cli.probe import probe_command
from imdiag.cli.replay import replay_command
from imdiag.cli.size import size_command
from imdiag.cli.sweep import size_sweep
from imdiag.cli.tap import tap_command
from imdiag.core.errors import ExitCode

app = typer.Typer(
    name="imdiag",
    help="Find out, with evidence, why Socket.IO messages never reach the server. " + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command("size-sweep")(size_sweep)
app.command("fake-master")(fake_master)
app.command("replay")(replay_command)
app.command("size")(size_command)
app.command("probe")(probe_command)
app.command("gate")(gate_command)
app.add_typer(node_app)
app.command("tap")(tap_command)
app.command("doctor")(doctor_command)


def _version(value: bool) -> None:
    if value:
        print(f"imdiag {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False,
) -> None:
    pass


@functools.cache
def _command() -> Any:
    """The click command typer builds from the app (once: a test may run the CLI many times)."""
    return typer.main.get_command(app)


def _tolerant_output() -> None:
    """A string JSON can carry may hold a lone surrogate (a message type, a namespace): printed
    as ``\\udXXX`` (JSON.stringify's escape), never a UnicodeEncodeError halfway through a table."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")


def main(args: list[str] | None = None) -> None:
    """Run the CLI; exits with the command's code. Usage errors are one line, like every error."""
    _tolerant_output()
    try:
        code = _command().main(args=args, prog_name="imdiag", standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        code = int(ExitCode.INTERRUPTED)
    except Exception as exc:
        kind = usage_error_kind(exc)
        if kind is None:
            raise
        if kind == "NoArgsIsHelpError":  # `imdiag` alone: the help, as before
            exc.show()  # type: ignore[attr-defined]
            code = int(getattr(exc, "exit_code", ExitCode.USAGE))
        else:
            print_error(usage_error_line(exc))
            code = int(ExitCode.USAGE)
    sys.exit(code if isinstance(code, int) else 0)
