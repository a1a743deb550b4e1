"""Run a measuring command (``size-sweep``, ``replay``): progress, tables, gate, report, Ctrl-C."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NoReturn

import typer
from rich.console import Console, RenderableType
from rich.text import Text

from imdiag.cli.common import console, fail, print_diagnosed, progress_for, run_async
from imdiag.cli.gating import GateOptions, finish_with_gate, write_html, write_report
from imdiag.core.errors import ExitCode, ImdiagError
from imdiag.core.model import PATH_CAUSES, Cell, MasterInfo, Report
from imdiag.core.quirks import version_drift

# (cells, on_cell, on_planned, note, on_started): the runner appends each cell as it is measured
# and names its masters once they are up, so Ctrl-C still reports both.
MeasureFn = Callable[
    [list[Cell], Callable[[Cell], None], Callable[[int], None], Callable[[str], None],
     Callable[[Sequence[MasterInfo]], None]],
    Coroutine[Any, Any, Report],
]


def run_measured(
    command: str, description: str, settings: dict[str, Any], measure: MeasureFn,
    render: Callable[[Report], list[RenderableType]], gate: GateOptions,
) -> NoReturn:
    """A progress bar on a terminal (plain progress lines otherwise), then the tables, the gate
    and the report. Ctrl-C still prints and writes what was measured."""
    started_at = time.monotonic()
    out = console()
    err = console(stderr=True)
    cells: list[Cell] = []
    masters: list[MasterInfo] = []
    progress = progress_for(err)
    task_id = None

    def planned(total: int) -> None:
        nonlocal task_id
        if progress is not None:
            task_id = progress.add_task(description, total=total)

    def measured(cell: Cell) -> None:
        if progress is not None and task_id is not None:
            progress.advance(task_id)

    def note(line: str) -> None:
        if progress is None:  # not a terminal: plain lines, for CI logs
            err.print(line)

    try:
        if progress is not None:
            progress.start()
        try:
            report = run_async(lambda: measure(cells, measured, planned, note, masters.extend))
        finally:
            if progress is not None:
                progress.stop()
    except KeyboardInterrupt:
        masters.sort(key=lambda r: (r.server, r.limit, r.transport.value if r.transport else ""))
        report = Report(command, settings, list(cells), masters=masters, interrupted=True,
                        elapsed_s=round(time.monotonic() - started_at, 3))
        for renderable in render(report):
            out.print(renderable)
        try:
            write_report(gate.json_path, report)
            write_html(gate.html_path, report)
        except ImdiagError as exc:
            raise fail(str(exc), exc.exit_code) from None
        for path in (gate.json_path, gate.html_path):
            if path:
                err.print(f"imdiag: interrupted; {len(cells)} measured cells written to {path}")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    for renderable in render(report):
        out.print(renderable)
    print_version_drift(out, report.masters)
    code = finish_with_gate(report, gate, out)
    diagnosed = sorted({f"{c.transport.value} ({c.cause.value})" for c in report.cells if c.cause in PATH_CAUSES})
    if code == ExitCode.OK and diagnosed and not gate.active:
        # The path broke a transport: a finding (exit 4), unless a gate judged the report.
        print_diagnosed(f"the path to the master breaks {', '.join(diagnosed)}: see Why above")
        code = int(ExitCode.DIAGNOSED)
    raise typer.Exit(code)


def print_version_drift(out: Console, masters: Sequence[MasterInfo]) -> None:
    """One line when the masters ran other versions than the README's figures came from."""
    note = version_drift((m.server, m.versions) for m in masters)
    if note is not None:
        out.print(Text(note, style="yellow"), soft_wrap=True)
