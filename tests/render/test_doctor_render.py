"""``imdiag doctor``'s Markdown and HTML: every hypothesis once, with its verdict in words, escaped."""

from __future__ import annotations

from rich.console import Console

from imdiag.core.doctor import QUESTIONS, DoctorSettings, Unprobed, diagnose
from imdiag.core.probe_result import ProbeSettings
from imdiag.core.wire import OpenInfo
from imdiag.render.doctor import doctor_renderables
from imdiag.render.html import doctor_html
from imdiag.render.markdown import doctor_markdown

REFUSAL = "no | such <namespace>"  # a server's own words, with a table separator and markup in them


def _result():
    opened = OpenInfo("sid", ("websocket",), 25_000, 20_000, 1_000_000)
    settings = DoctorSettings(ProbeSettings(url="http://127.0.0.1:3000/worker"))
    return diagnose(settings, None, unprobed=Unprobed(f"refused: {REFUSAL}", opened, REFUSAL))


def test_markdown_has_one_row_per_hypothesis_and_escapes_the_evidence():
    text = doctor_markdown(_result())
    assert text.startswith("## imdiag doctor http://127.0.0.1:3000/worker: ❌ 1 confirmed")
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == [q.id for q in QUESTIONS]
    missing = next(row for row in rows if row.startswith("| `namespace-missing`"))
    assert missing.startswith("| `namespace-missing` | ❌ confirmed |") and "no \\| such <namespace>" in missing
    assert "**Verdict.**" in text and "### Fix advice" in text


def test_html_has_one_verdict_per_hypothesis_and_no_script():
    page = doctor_html(_result())
    for q in QUESTIONS:
        assert page.count(f'data-id="{q.id}"') == 1
    assert 'data-id="namespace-missing" data-verdict="confirmed"' in page
    assert page.count('data-verdict="unknown"') == len(QUESTIONS) - 3  # not-reachable, protocol-mismatch: ruled out
    assert "no | such &lt;namespace&gt;" in page and "<script" not in page


def test_terminal_shows_the_verdict_words():
    console = Console(width=160, record=True, color_system=None)
    for renderable in doctor_renderables(_result()):
        console.print(renderable)
    text = console.export_text()
    assert "✗ confirmed" in text and "✓ ruled out" in text and "? not testable here" in text
    assert "Verdict" in text and "Fix advice" in text
