"""``imdiag gate``: run the gate file's whole check and judge it, the CI regression gate."""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated

import typer
from rich.text import Text

from imdiag.cli.common import console, fail, run_async, timeout_scale
from imdiag.cli.files import check_writable
from imdiag.cli.gating import (
    BaselineOption,
    ExpectOption,
    GateOptions,
    JunitOption,
    MarkdownOption,
    MaxFillOption,
    MaxGrowthOption,
    finish_with_gate,
    gate_options,
    load_baseline,
)
from imdiag.cli.measure import print_version_drift
from imdiag.cli.node import ensure_node_packages
from imdiag.cli.options import HtmlOption, parse_masters
from imdiag.core.errors import ExitCode, ImdiagError, InputError
from imdiag.core.gate import GateConfig
from imdiag.core.model import Cell, MasterInfo, Report
from imdiag.render.replay import replay_renderables
from imdiag.render.terminal import sweep_renderables


def _options_for(config: GateConfig, cli: GateOptions, cli_baseline: str | None, cli_max_growth: str | None,
                 json_path: str | None, html_path: str | None) -> GateOptions:
    """Command-line options over the gate file: --expect adds rules, the others replace."""
    baseline_path = cli_baseline or config.baseline
    # The command line's outputs were checked by gate_options(); the gate file's are checked here,
    # before the sweep, not after it.
    outputs = config.outputs
    for given, key, path in ((cli.json_path, "json", outputs.json), (cli.html_path, "html", outputs.html),
                             (cli.junit, "junit", outputs.junit), (cli.markdown, "markdown", outputs.markdown)):
        if not given:
            check_writable(path, f"{config.source} [outputs] {key}")
    rules = config.spec.rules + cli.rules
    max_fill = cli.max_fill if cli.max_fill is not None else config.spec.max_fill
    if not rules and max_fill is None and not baseline_path:
        raise InputError(f"{config.source}: the gate would check nothing: add expect rules (or --expect), "
                         "max_fill or a baseline")
    return GateOptions(
        rules=rules,
        max_fill=max_fill,
        max_growth=cli.max_growth if cli_max_growth is not None else config.spec.max_growth,
        baseline=cli.baseline if cli_baseline else (load_baseline(baseline_path) if baseline_path else None),
        baseline_path=baseline_path,
        junit=cli.junit or config.outputs.junit,
        markdown=cli.markdown or config.outputs.markdown,
        json_path=json_path or config.outputs.json,
        html_path=html_path or config.outputs.html,
        always=True,
    )


def _with_masters(config: GateConfig, masters: tuple[str, ...]) -> GateConfig:
    sweep = dataclasses.replace(config.sweep, masters=masters) if config.sweep is not None else None
    return dataclasses.replace(config, masters=masters, sweep=sweep)


def _print_parts(parts: list[Report]) -> None:
    out = console()
    for part in parts:
        if part.command == "replay":
            out.print(Text(f"replay of {part.settings.get('file')}", style="bold"), soft_wrap=True)
        for renderable in replay_renderables(part) if part.command == "replay" else sweep_renderables(part):
            out.print(renderable)


def gate_command(
    config: Annotated[
        str | None, typer.Option("--config", "-c", metavar="FILE", help="Gate file (default: ./imdiag.toml, "
                                 "else [tool.imdiag] in ./pyproject.toml).")
    ] = None,
    expect: ExpectOption = None,
    max_fill: MaxFillOption = None,
    baseline: BaselineOption = None,
    max_growth: MaxGrowthOption = None,
    junit: JunitOption = None,
    markdown: MarkdownOption = None,
    json_path: Annotated[str | None, typer.Option("--json", metavar="FILE", help="Write the JSON report, with its "
                                                  "gate section, to this file.")] = None,
    html_path: HtmlOption = None,
    master: Annotated[
        str | None, typer.Option(metavar="python|node|asgi|both|all", help="Which reference masters, instead of "
                                 "the gate file's `master`.")
    ] = None,
) -> None:
    """Run the gate file's whole check (size sweep and fixtures) and judge it: the CI regression gate.

    Exit codes: 0 gate passed, 1 gate failed, 2 usage or input error (bad gate file or rule),
    3 target could not be set up (port in use, Node.js missing).
    """
    # Imported here for start-up time: the runners load aiohttp and socketio.
    from imdiag.runners.gate import gate_settings, load_gate_config, run_gate_check

    try:
        gate_config = load_gate_config(config, timeout_scale=timeout_scale())
        if master is not None:
            gate_config = _with_masters(gate_config, parse_masters(master))
        cli = gate_options(expect, max_fill, baseline, max_growth, junit, markdown, json_path, html_path)
        options = _options_for(gate_config, cli, baseline, max_growth, json_path, html_path)
        ensure_node_packages(gate_config.masters)
    except ImdiagError as exc:
        raise fail(str(exc), exc.exit_code) from None

    out = console()
    err = console(stderr=True)
    cells: list[Cell] = []
    masters: list[MasterInfo] = []
    started_at = time.monotonic()
    try:
        report, parts = run_async(lambda: run_gate_check(gate_config, cells, masters.extend))
    except KeyboardInterrupt:
        partial = Report("gate", gate_settings(gate_config), list(cells), masters=masters, interrupted=True,
                         elapsed_s=round(time.monotonic() - started_at, 3))
        code = finish_with_gate(partial, dataclasses.replace(options, junit=None, markdown=None), out)
        for path in (options.json_path, options.html_path):
            if path and code != ExitCode.USAGE:
                err.print(f"imdiag: interrupted; {len(cells)} measured cells written to {path}")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    _print_parts(parts)
    print_version_drift(out, report.masters)
    code = finish_with_gate(report, options, out)
    if options.json_path and code in (ExitCode.OK, ExitCode.GATE_FAILED):
        err.print(f"report written to {options.json_path}")
    raise typer.Exit(code)
