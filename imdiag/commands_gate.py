"""The CI regression gate on the command line: ``imdiag gate``, and the options other commands share.

``size-sweep`` and ``replay`` take the same gate options (``GateOptions``, built by
``gate_options()`` from the ``*Option`` aliases below) and end with ``finish_with_gate()``,
which judges the report, writes the JSON report with its ``gate`` section, the JUnit and
Markdown files and GitHub annotations, and returns the exit code.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from imdiag.errors import ExitCode, ImdiagError, InputError
from imdiag.files import check_writable, write_atomic
from imdiag.gate import (
    DEFAULT_MAX_GROWTH,
    RULE_SYNTAX,
    GateConfig,
    GateResult,
    GateSpec,
    Rule,
    evaluate,
    gate_to_dict,
    parse_fraction,
    parse_gate_config,
    parse_max_fill,
    parse_rule,
    report_cells,
)
from imdiag.model import Cell, Report
from imdiag.render.json_report import report_to_dict
from imdiag.render.junit import junit_xml
from imdiag.render.markdown import gate_markdown, github_annotations

GATE_EXIT_HELP = "Exit codes: 0 gate passed, 1 gate failed, 2 usage or input error, 3 target could not be set up."

# --- options shared with size-sweep and replay -----------------------------------------------

ExpectOption = Annotated[
    list[str] | None,
    typer.Option("--expect", "-e", metavar="RULE", help=f"Expectation, repeatable: {RULE_SYNTAX}, "
                 "e.g. worker:data:sync@1MB:websocket=dropped:oversize-close. A rule matching no cell fails."),
]
MaxFillOption = Annotated[
    str | None,
    typer.Option("--max-fill", metavar="FRACTION", help="Fail a delivered message larger than this share of its "
                 "limit (0.8 or 80%)."),
]
BaselineOption = Annotated[
    str | None,
    typer.Option("--baseline", metavar="FILE", help="An earlier JSON report: fail cells delivered then and "
                 "dropped now, and types that grew more than --max-growth."),
]
MaxGrowthOption = Annotated[
    str | None,
    typer.Option("--max-growth", metavar="FRACTION", help="With --baseline: the largest allowed growth of a "
                 f"message type's bytes (default {DEFAULT_MAX_GROWTH:.0%})."),
]
JunitOption = Annotated[str | None, typer.Option("--junit", metavar="FILE", help="Write the gate as JUnit XML.")]
MarkdownOption = Annotated[
    str | None,
    typer.Option("--markdown", metavar="FILE", help="Write a Markdown summary (also appended to "
                 "$GITHUB_STEP_SUMMARY when set)."),
]


@dataclass(frozen=True)
class GateOptions:
    """What to check on a report and where to write the outcome. Build it with ``gate_options()``."""

    rules: tuple[Rule, ...] = ()
    max_fill: float | None = None
    max_growth: float = DEFAULT_MAX_GROWTH
    baseline: Mapping[str, Any] | None = None  # the earlier report, loaded and checked
    baseline_path: str | None = None
    junit: str | None = None
    markdown: str | None = None
    json_path: str | None = None  # the command's --json: finish_with_gate writes it
    always: bool = False  # judge even with nothing to check (the gate command)

    @property
    def active(self) -> bool:
        """Anything asked of the gate; an inactive gate only writes the JSON report."""
        return bool(self.always or self.rules or self.max_fill is not None or self.baseline is not None or self.junit or self.markdown)

    @property
    def spec(self) -> GateSpec:
        return GateSpec(self.rules, self.max_fill, self.max_growth)


def load_baseline(path: str) -> Mapping[str, Any]:
    """An earlier ``imdiag.report/1`` JSON report, checked enough that the gate cannot crash on it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read baseline {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"baseline {path}: not UTF-8 text") from None
    try:
        report = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"baseline {path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    report_cells(report, f"baseline {path}")
    return dict(report)


def gate_options(
    expect: list[str] | None = None,
    max_fill: str | float | None = None,
    baseline: str | None = None,
    max_growth: str | float | None = None,
    junit: str | None = None,
    markdown: str | None = None,
    json_path: str | None = None,
) -> GateOptions:
    """Parse the gate options of a command; raises InputError (exit 2) before anything is measured."""
    for path, option in ((junit, "--junit"), (markdown, "--markdown"), (json_path, "--json")):
        check_writable(path, option)
    rules = tuple(parse_rule(text) for text in expect or [])
    return GateOptions(
        rules=rules,
        max_fill=parse_max_fill(max_fill) if max_fill is not None else None,
        max_growth=parse_fraction(max_growth, "--max-growth") if max_growth is not None else DEFAULT_MAX_GROWTH,
        baseline=load_baseline(baseline) if baseline else None,
        baseline_path=baseline,
        junit=junit,
        markdown=markdown,
        json_path=json_path,
    )


def _error(message: str) -> None:
    print(f"imdiag: error: {message}", file=sys.stderr)  # one line, never wrapped


def _write_json(path: str, report: Report, gate: dict[str, Any] | None) -> None:
    data = report_to_dict(report)
    if gate is not None:
        data["gate"] = gate
    try:
        write_atomic(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    except OSError as exc:
        raise InputError(f"cannot write report {path}: {exc.strerror or exc}") from None


def _write_text(path: str, text: str, what: str) -> None:
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise InputError(f"cannot write {what} {path}: {exc.strerror or exc}") from None


def _append_step_summary(text: str) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as summary:
            summary.write(text + "\n")
    except OSError as exc:
        raise InputError(f"cannot append to GITHUB_STEP_SUMMARY {path}: {exc.strerror or exc}") from None


def print_gate(console: Console, result: GateResult) -> None:
    """The gate's verdict for people: the failures with their evidence, then the total."""
    for check in result.failures:
        console.print(Text.assemble(("✗ ", "red"), check.title), soft_wrap=True)
        console.print(Text(f"    {check.message}"), soft_wrap=True)
    for item in result.improvements:
        console.print(Text.assemble(("↑ ", "green"), f"{item.title}: {item.message}"), soft_wrap=True)
    total = len(result.checks)
    if result.passed:
        console.print(Text(f"gate passed: {total} checks", style="green"), soft_wrap=True)
    else:
        console.print(Text(f"gate failed: {len(result.failures)} of {total} checks failed", style="bold red"),
                      soft_wrap=True)


def finish_with_gate(report: Report, options: GateOptions, console: Console) -> int:
    """Judge ``report``, write every requested output, print the verdict; return the exit code.

    0 passed (or no gate asked for), 1 failed, 2 an output could not be written. Never raises
    ImdiagError: errors are printed as one line on stderr and returned as their exit code.
    """
    started = time.monotonic()
    try:
        if not options.active:
            if options.json_path:
                _write_json(options.json_path, report, None)
            return int(ExitCode.OK)
        result = evaluate(report_to_dict(report), options.spec, options.baseline,
                          baseline_source=f"baseline {options.baseline_path}")
        if options.json_path:
            _write_json(options.json_path, report, gate_to_dict(result))
        elapsed = report.elapsed_s + time.monotonic() - started
        if options.junit:
            _write_text(options.junit, junit_xml(result, name=f"imdiag {report.command}", elapsed_s=elapsed), "JUnit file")
        summary = gate_markdown(result, title=f"imdiag {report.command}")
        if options.markdown:
            _write_text(options.markdown, summary, "Markdown summary")
        _append_step_summary(summary)
    except ImdiagError as exc:
        _error(str(exc))
        return int(exc.exit_code)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for line in github_annotations(result):
            print(line, flush=True)  # workflow commands: raw lines on stdout, never wrapped
    print_gate(console, result)
    return int(ExitCode.OK if result.passed else ExitCode.GATE_FAILED)


# --- the gate file ----------------------------------------------------------------------------

GATE_FILE = "imdiag.toml"
PYPROJECT = "pyproject.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise InputError(f"cannot read gate file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML: {exc}") from None


def load_gate_config(config: str | None, *, timeout_scale: float = 1.0) -> GateConfig:
    """``--config FILE``, else ./imdiag.toml, else ``[tool.imdiag]`` in ./pyproject.toml."""
    if config is not None:
        path = Path(config)
        data = _read_toml(path)
        if path.name == PYPROJECT:
            table = data.get("tool", {}).get("imdiag")
            if not isinstance(table, dict):
                raise InputError(f"{path}: no [tool.imdiag] table")
            return parse_gate_config(table, f"{path} [tool.imdiag]", str(path.parent), timeout_scale=timeout_scale)
        return parse_gate_config(data, str(path), str(path.parent), timeout_scale=timeout_scale)
    if Path(GATE_FILE).is_file():
        return load_gate_config(GATE_FILE, timeout_scale=timeout_scale)
    if Path(PYPROJECT).is_file():
        table = _read_toml(Path(PYPROJECT)).get("tool", {}).get("imdiag")
        if isinstance(table, dict):
            return parse_gate_config(table, f"{PYPROJECT} [tool.imdiag]", ".", timeout_scale=timeout_scale)
    raise InputError(f"no gate file: ./{GATE_FILE} does not exist and ./{PYPROJECT} has no [tool.imdiag] "
                     "table (or pass --config FILE)")


# --- running the team's check -----------------------------------------------------------------


def replay_label(fixture: str) -> str:
    """Replayed cells are labelled ``replay:<file>``: two captures both have a message #0."""
    return f"replay:{os.path.basename(fixture)}"


async def replay_fixtures(config: GateConfig, cells: list[Cell]) -> list[Report]:
    """Replay the gate file's fixtures at its limits, transports, encoder and masters.

    The one place the gate reaches the replay engine. Timing is ``fast`` (each message alone):
    ``original`` timing lets polling batch messages depending on the machine's speed, and a
    gate must give the same verdicts on every run. Cells are appended to ``cells`` (labelled
    ``replay:<file>``) as each capture finishes, so an interrupted gate still holds them.
    """
    from imdiag.replay.run import ReplaySettings, run_replay

    reports = []
    for fixture in config.fixtures:
        settings = ReplaySettings(
            path=fixture, limits=config.limits, transports=config.transports, encoder=config.encoder,
            masters=config.masters, namespace=config.namespace, event=config.event, timing="fast",
            timeout_s=config.timeout_s,
        )
        replayed: list[Cell] = []
        try:
            reports.append(await run_replay(settings, replayed))
        finally:
            label = replay_label(fixture)
            cells.extend(dataclasses.replace(c, label=label) for c in replayed)
    return reports


async def run_gate_check(config: GateConfig, cells: list[Cell]) -> tuple[Report, list[Report]]:
    """The size sweep and the fixture replays the gate file asks for: one report to judge, and
    the sweep's and each replay's own report, for the terminal."""
    from imdiag.worker.sweep import run_sweep

    started = time.monotonic()
    parts: list[Report] = []
    if config.sweep is not None:
        parts.append(await run_sweep(config.sweep, cells))
    if config.fixtures:
        parts += await replay_fixtures(config, cells)
    report = Report(
        command="gate",
        settings=_gate_settings(config),
        cells=list(cells),
        masters=[run for part in parts for run in part.masters],
        elapsed_s=round(time.monotonic() - started, 3),
    )
    return report, parts


def _gate_settings(config: GateConfig) -> dict[str, Any]:
    return {
        "config": config.source,
        "sweep": config.sweep.to_dict() if config.sweep is not None else None,
        "fixtures": list(config.fixtures),
        "limits": list(config.limits),
        "transports": [t.value for t in config.transports],
        "encoder": config.encoder.value,
        "masters": list(config.masters),
        "expect": [r.text for r in config.spec.rules],
        "max_fill": config.spec.max_fill,
        "max_growth": config.spec.max_growth,
        "baseline": config.baseline,
    }


def _options_for(config: GateConfig, cli: GateOptions, cli_baseline: str | None, cli_max_growth: str | None,
                 json_path: str | None) -> GateOptions:
    """Command-line options over the gate file: --expect adds rules, the others replace."""
    baseline_path = cli_baseline or config.baseline
    return GateOptions(
        rules=config.spec.rules + cli.rules,
        max_fill=cli.max_fill if cli.max_fill is not None else config.spec.max_fill,
        max_growth=cli.max_growth if cli_max_growth is not None else config.spec.max_growth,
        baseline=cli.baseline if cli_baseline else (load_baseline(baseline_path) if baseline_path else None),
        baseline_path=baseline_path,
        junit=cli.junit or config.outputs.junit,
        markdown=cli.markdown or config.outputs.markdown,
        json_path=json_path or config.outputs.json,
        always=True,
    )


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
) -> None:
    """Run the gate file's whole check (size sweep and fixtures) and judge it: the CI regression gate.

    Exit codes: 0 gate passed, 1 gate failed, 2 usage or input error (bad gate file or rule),
    3 target could not be set up (port in use, Node.js missing).
    """
    from imdiag.cli import _console, run_async, timeout_scale
    from imdiag.render.replay import replay_renderables
    from imdiag.render.terminal import sweep_renderables

    try:
        gate_config = load_gate_config(config, timeout_scale=timeout_scale())
        cli = gate_options(expect, max_fill, baseline, max_growth, junit, markdown, json_path)
        options = _options_for(gate_config, cli, baseline, max_growth, json_path)
    except ImdiagError as exc:
        _error(str(exc))
        raise typer.Exit(int(exc.exit_code)) from None

    out = _console()
    err = _console(stderr=True)
    cells: list[Cell] = []
    try:
        report, parts = run_async(lambda: run_gate_check(gate_config, cells))
    except KeyboardInterrupt:
        partial = Report("gate", _gate_settings(gate_config), list(cells), interrupted=True)
        code = finish_with_gate(partial, dataclasses.replace(options, junit=None, markdown=None), out)
        if options.json_path and code != ExitCode.USAGE:
            err.print(f"imdiag: interrupted; {len(cells)} measured cells written to {options.json_path}")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    for part in parts:
        if part.command == "replay":
            out.print(Text(f"replay of {part.settings.get('file')}", style="bold"), soft_wrap=True)
        for renderable in replay_renderables(part) if part.command == "replay" else sweep_renderables(part):
            out.print(renderable)
    code = finish_with_gate(report, options, out)
    if options.json_path and code in (ExitCode.OK, ExitCode.GATE_FAILED):
        err.print(f"report written to {options.json_path}")
    raise typer.Exit(code)
