"""Markdown: the gate for GitHub (a summary for ``$GITHUB_STEP_SUMMARY``, workflow annotations) and
``imdiag doctor --markdown``. Pure."""

from __future__ import annotations

import re

from imdiag.core.doctor import DoctorResult, Verdict, headline, verdict_words
from imdiag.core.gate import Check, GateResult

MAX_ROWS = 300  # a step summary is capped at 1 MiB; past this the table says how many are left out
MAX_ANNOTATIONS = 50  # GitHub shows few per step anyway; the JUnit file has them all


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, no column breaks, no control characters."""
    text = " ".join(text.replace("|", "\\|").split())
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _cell_text(check: Check) -> str:
    return check.cell.describe() if check.cell else ""


def gate_markdown(result: GateResult, *, title: str = "imdiag gate") -> str:
    total = len(result.checks)
    if result.passed:
        head = f"## {title}: ✅ passed ({total} checks)"
    else:
        head = f"## {title}: ❌ failed ({len(result.failures)} of {total} checks failed)"
    lines = [head, ""]
    if result.failures:
        lines += ["| check | cell | cause | what happened |", "|---|---|---|---|"]
        for check in result.failures[:MAX_ROWS]:
            lines.append(f"| ❌ {_cell(check.name)} | {_cell(_cell_text(check))} | {_cell(check.cause or check.kind)} "
                         f"| {_cell(check.message)} |")
        if len(result.failures) > MAX_ROWS:
            lines.append(f"\n{len(result.failures) - MAX_ROWS} more failures: see the JUnit or JSON report.")
        lines.append("")
    if result.improvements:
        lines += ["### Improvements on the baseline", ""]
        lines += [f"- {_cell(i.title)}: {_cell(i.message)}" for i in result.improvements]
        lines.append("")
    if result.checks:
        lines += [f"<details><summary>All {total} checks</summary>", "", "| | check | result |", "|---|---|---|"]
        for check in result.checks[:MAX_ROWS]:
            lines.append(f"| {'✅' if check.passed else '❌'} | {_cell(check.title)} | {_cell(check.message)} |")
        if total > MAX_ROWS:
            lines.append(f"\n{total - MAX_ROWS} more checks: see the JUnit or JSON report.")
        lines += ["", "</details>", ""]
    else:
        lines += ["No checks: add `expect` rules, `max_fill` or a `baseline`.", ""]
    return "\n".join(lines)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotations(result: GateResult) -> list[str]:
    """Workflow commands (``::error title=...::message``) for each failure, ``::notice`` per improvement."""
    lines = [
        f"::error title={_escape_property('imdiag gate: ' + check.title)}::{_escape_data(check.message)}"
        for check in result.failures[:MAX_ANNOTATIONS]
    ]
    if len(result.failures) > MAX_ANNOTATIONS:
        lines.append(f"::error title=imdiag gate::{len(result.failures) - MAX_ANNOTATIONS} more failures in the report")
    lines += [
        f"::notice title={_escape_property('imdiag gate: ' + i.title)}::{_escape_data(i.message)}"
        for i in result.improvements[:MAX_ANNOTATIONS]
    ]
    return lines


_MARK = {Verdict.CONFIRMED: "❌", Verdict.RULED_OUT: "✅", Verdict.UNKNOWN: "❔"}


def doctor_markdown(result: DoctorResult) -> str:
    """The hypotheses as a Markdown table, the verdict and the fixes (a pull request, a step summary)."""
    problems = [h for h in result.hypotheses if h.problem]
    mark = f"❌ {len(problems)} confirmed" if problems else "✅ no problem found"
    lines = [f"## imdiag doctor {_cell(result.settings.where)}: {mark}", "",
             _cell(headline(result)), "",
             "| hypothesis | verdict | evidence | next step |", "|---|---|---|---|"]
    for h in result.hypotheses:
        lines.append(f"| `{h.id}` | {_MARK[h.verdict]} {_cell(verdict_words(h)[2:])} | "
                     f"{_cell(h.evidence)} | {_cell(h.next_step or '-')} |")
    lines += ["", f"**Verdict.** {_cell(result.verdict)}", ""]
    if result.advice:
        lines += ["### Fix advice", "", *(f"- {_cell(line)}" for line in result.advice), ""]
    return "\n".join(lines)
