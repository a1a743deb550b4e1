"""The gate's options and outcome on the command line, shared by ``size-sweep``, ``replay`` and ``gate``.

Those commands take the same gate options (``GateOptions``, built by ``gate_options()`` from the
``*Option`` aliases below) and end with ``finish_with_gate()``, which judges the report, writes
the JSON report with its ``gate`` section, the JUnit and Markdown files and GitHub annotations,
and returns the exit code.
"""

from __future__ import annotations

import functools
import inspect
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from imdiag.cli.common import fail, print_error, write_json, write_text
from imdiag.cli.files import check_writable, read_json
from imdiag.cli.options import HtmlOption, JsonOption
from imdiag.core.errors import ExitCode, ImdiagError, InputError
from imdiag.core.gate import (
    DEFAULT_MAX_GROWTH,
    RULE_SYNTAX,
    GateResult,
    GateSpec,
    Rule,
    baseline_cells,
    evaluate,
    gate_to_dict,
    parse_fraction,
    parse_max_fill,
    parse_rule,
)
from imdiag.core.model import Report
from imdiag.render.html import report_html
from imdiag.render.json_report import report_to_dict
from imdiag.render.junit import junit_xml
from imdiag.render.markdown import gate_markdown, github_annotations

GATE_EXIT_HELP = "Exit codes: 0 gate passed, 1 gate failed, 2 usage or input error, 3 target could not be set up."

# --- options shared with size-sweep, replay and gate -----------------------------------------------

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
    html_path: str | None = None  # the command's --html: likewise
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
    report = read_json(path, "baseline")
    baseline_cells(report, f"baseline {path}")
    return dict(report)


def gate_options(
    expect: list[str] | None = None,
    max_fill: str | float | None = None,
    baseline: str | None = None,
    max_growth: str | float | None = None,
    junit: str | None = None,
    markdown: str | None = None,
    json_path: str | None = None,
    html_path: str | None = None,
) -> GateOptions:
    """Parse the gate options of a command; raises InputError (exit 2) before anything is measured."""
    for path, option in ((junit, "--junit"), (markdown, "--markdown"), (json_path, "--json"), (html_path, "--html")):
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
        html_path=html_path,
    )


def write_report(path: str | None, report: Report, gate: dict[str, Any] | None = None) -> None:
    """The report as JSON (with the gate's section when judged), if a path was asked for."""
    if not path:
        return
    data = report_to_dict(report)
    if gate is not None:
        data["gate"] = gate
    write_json(path, data)


def write_html(path: str | None, report: Report, gate: GateResult | None = None) -> None:
    """The report as one HTML page (with the gate's verdict when judged), if a path was asked for."""
    if path:
        write_text(path, report_html(report, gate), "HTML report")


_GATE_PARAMETERS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
    for name, annotation in (("json_path", JsonOption), ("html_path", HtmlOption), ("expect", ExpectOption),
                             ("max_fill", MaxFillOption), ("baseline", BaselineOption), ("max_growth", MaxGrowthOption),
                             ("junit", JunitOption), ("markdown", MarkdownOption))
]


def with_gate_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a measuring command the report's outputs (``--json``, ``--html``) and the gate's options;
    it receives them parsed, as ``gate: GateOptions``.

    Typer reads a command's options from its signature: the wrapper's signature is the command's
    own (without ``gate``) plus these options, declared once here for every command.
    """
    own = inspect.signature(command, eval_str=True)
    parameters = [p for p in own.parameters.values() if p.name != "gate"]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        parts = {p.name: kwargs.pop(p.name) for p in _GATE_PARAMETERS}
        try:
            gate = gate_options(**parts)
        except ImdiagError as exc:
            raise fail(str(exc), exc.exit_code) from None
        command(**kwargs, gate=gate)

    wrapper.__signature__ = own.replace(parameters=parameters + _GATE_PARAMETERS)  # type: ignore[attr-defined]
    return wrapper


def _append_step_summary(text: str) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8", errors="backslashreplace") as summary:
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
            write_report(options.json_path, report, None)
            write_html(options.html_path, report)
            return int(ExitCode.OK)
        result = evaluate(report_to_dict(report), options.spec, options.baseline,
                          baseline_source=f"baseline {options.baseline_path}")
        write_report(options.json_path, report, gate_to_dict(result))
        write_html(options.html_path, report, result)
        elapsed = report.elapsed_s + time.monotonic() - started
        if options.junit:
            write_text(options.junit, junit_xml(result, name=f"imdiag {report.command}", elapsed_s=elapsed), "JUnit file")
        summary = gate_markdown(result, title=f"imdiag {report.command}")
        if options.markdown:
            write_text(options.markdown, summary, "Markdown summary")
        _append_step_summary(summary)
    except ImdiagError as exc:
        print_error(str(exc))
        return int(exc.exit_code)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for line in github_annotations(result):
            print(line, flush=True)  # workflow commands: raw lines on stdout, never wrapped
    print_gate(console, result)
    return int(ExitCode.OK if result.passed else ExitCode.GATE_FAILED)
