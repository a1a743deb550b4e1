"""Render ``imdiag doctor`` for people: one line per hypothesis, the verdict, the fixes.

Pure: functions return rich renderables; the CLI prints them. (Markdown: ``render/markdown.py``.)
"""

from __future__ import annotations

from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from imdiag.core.doctor import DoctorResult, Verdict, headline, verdict_words
from imdiag.render.probe import limits_table

_STYLE = {Verdict.CONFIRMED: "bold red", Verdict.RULED_OUT: "green", Verdict.UNKNOWN: "yellow"}


def hypotheses_table(result: DoctorResult) -> Table:
    """One row per hypothesis: its verdict, its id, the evidence and (after an arrow) the next step."""
    table = Table(title="Hypotheses: confirmed, ruled out (with evidence) or not testable here", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("verdict", no_wrap=True)
    table.add_column("hypothesis", no_wrap=True)
    table.add_column("evidence → next step")
    for h in result.hypotheses:
        style = "blue" if h.verdict is Verdict.CONFIRMED and h.question.informational else _STYLE[h.verdict]
        text = Text(h.evidence)
        if h.next_step:
            text.append(f" → {h.next_step}", style="dim")
        table.add_row(Text(verdict_words(h), style=style), h.id, text)
    return table


def doctor_renderables(result: DoctorResult) -> list[RenderableType]:
    out: list[RenderableType] = [Text(headline(result))]
    if result.probe is not None:
        out.append(limits_table(result.probe))
    out.append(hypotheses_table(result))
    out += [Text("Verdict", style="bold"), Text(result.verdict)]
    if result.advice:
        out += [Text("Fix advice", style="bold"), *(Text(f"• {line}") for line in result.advice)]
    return out
