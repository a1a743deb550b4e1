"""The gate as JUnit XML, the format CI viewers load (GitHub, GitLab, Jenkins). Pure.

One ``<testsuite>`` per kind of check (expect, max-fill, baseline, growth), one ``<testcase>``
per check; a failed check carries its message, the dropped cell's cause as the failure type and
its evidence as the text. The layout follows the common JUnit schema (tests/assets/junit.xsd).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from imdiag.core.gate import Check, GateResult, Improvement

KIND_ORDER = ("report", "expect", "max-fill", "baseline", "growth")
SUITE_PREFIX = "imdiag.core.gate"
# XML 1.0 cannot carry most control characters even escaped (a polling body holds \x1e):
# they are written as \xNN so the file still parses everywhere.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _failure_text(check: Check) -> str:
    lines = [check.message]
    if check.cell is not None:
        lines.append(f"cell: {check.cell.describe()}")
    if check.cause:
        lines.append(f"cause: {check.cause}")
    if check.evidence and check.evidence not in check.message:
        lines.append(f"evidence: {check.evidence}")
    return "\n".join(lines)


def _improvement_text(items: list[Improvement]) -> str:
    return "\n".join(f"improvement: {i.title}: {i.message}" for i in items)


def junit_xml(result: GateResult, *, name: str = "imdiag gate", elapsed_s: float = 0.0) -> str:
    """The JUnit XML document for a gate result, as a string with an XML declaration."""
    kinds = sorted({c.kind for c in result.checks}, key=lambda k: (KIND_ORDER.index(k) if k in KIND_ORDER else 99, k))
    root = ET.Element("testsuites", {
        "name": xml_text(name),
        "tests": str(len(result.checks)),
        "failures": str(len(result.failures)),
        "errors": "0",
        "skipped": "0",
        "time": f"{elapsed_s:.3f}",
    })
    for kind in kinds or [""]:
        checks = [c for c in result.checks if c.kind == kind]
        suite_name = f"{SUITE_PREFIX}.{kind}" if kind else SUITE_PREFIX
        suite = ET.SubElement(root, "testsuite", {
            "name": suite_name,
            "tests": str(len(checks)),
            "failures": str(sum(1 for c in checks if not c.passed)),
            "errors": "0",
            "skipped": "0",
            "time": "0",
        })
        for check in checks:
            case = ET.SubElement(suite, "testcase", {"classname": suite_name, "name": xml_text(check.title), "time": "0"})
            if not check.passed:
                failure = ET.SubElement(case, "failure", {
                    "message": xml_text(check.message),
                    "type": check.cause or check.kind,
                })
                failure.text = xml_text(_failure_text(check))
        better = [i for i in result.improvements if i.kind == kind]
        if better:
            ET.SubElement(suite, "system-out").text = xml_text(_improvement_text(better))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
