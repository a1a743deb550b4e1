"""Gate renderers: JUnit XML valid against the common schema, Markdown, GitHub annotations."""

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from imdiag.core.gate import CellRef, Check, GateResult, Improvement
from imdiag.render.junit import junit_xml
from imdiag.render.markdown import gate_markdown, github_annotations

XSD = Path(__file__).parent.parent / "assets" / "junit.xsd"
XS = "{http://www.w3.org/2001/XMLSchema}"
SIMPLE_TYPES = {
    "xs:string": re.compile(r".*", re.DOTALL),
    "xs:decimal": re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)"),
    "xs:nonNegativeInteger": re.compile(r"\+?\d+"),
}


def _schema_elements():
    """The xs:element declarations of junit.xsd: attributes, content sequence, text allowed."""
    declared = {}
    for element in ET.parse(XSD).getroot().findall(f"{XS}element"):
        complex_type = element.find(f"{XS}complexType")
        if complex_type is None:
            assert element.get("type") == "xs:string", "the subset interpreter knows only simple text elements"
            declared[element.get("name")] = {"attributes": {}, "sequence": [], "text": True}
            continue
        sequence = [
            (ref.get("ref"), int(ref.get("minOccurs", "1")),
             None if ref.get("maxOccurs") == "unbounded" else int(ref.get("maxOccurs", "1")))
            for ref in complex_type.findall(f"{XS}sequence/{XS}element")
        ]
        attributes = {a.get("name"): (a.get("type"), a.get("use") == "required")
                      for a in complex_type.findall(f"{XS}attribute")}
        declared[element.get("name")] = {"attributes": attributes, "sequence": sequence,
                                         "text": complex_type.get("mixed") == "true"}
    return declared


def validate_structurally(element, declared, path=""):
    """Check an element tree against the xs:element declarations; return a list of problems."""
    where = f"{path}/{element.tag}"
    spec = declared.get(element.tag)
    if spec is None:
        return [f"{where}: element not in the schema"]
    problems = []
    for name, value in element.attrib.items():
        if name not in spec["attributes"]:
            problems.append(f"{where}@{name}: attribute not in the schema")
        elif not SIMPLE_TYPES[spec["attributes"][name][0]].fullmatch(value):
            problems.append(f"{where}@{name}={value!r}: not a {spec['attributes'][name][0]}")
    for name, (_, required) in spec["attributes"].items():
        if required and name not in element.attrib:
            problems.append(f"{where}: required attribute {name} missing")
    if not spec["text"] and (element.text or "").strip():
        problems.append(f"{where}: text not allowed")
    children = list(element)
    position = 0
    for ref, low, high in spec["sequence"]:
        count = 0
        while position < len(children) and children[position].tag == ref and (high is None or count < high):
            count += 1
            position += 1
        if count < low:
            problems.append(f"{where}: expected at least {low} <{ref}>")
    if position < len(children):
        problems.append(f"{where}: unexpected <{children[position].tag}> at child {position}")
    for child in children:
        problems += validate_structurally(child, declared, where)
        if not spec["text"] and (child.tail or "").strip():
            problems.append(f"{where}: text not allowed after <{child.tag}>")
    return problems


def assert_valid_junit(xml_text):
    root = ET.fromstring(xml_text.encode("utf-8"))  # well-formed, or this raises
    try:
        import xmlschema
    except ImportError:
        xmlschema = None
    if xmlschema is not None:  # the real validator, where the environment has it
        xmlschema.XMLSchema(str(XSD)).validate(xml_text)
    assert validate_structurally(root, _schema_elements()) == []
    return root


REF = CellRef("worker:data:sync", "websocket", 1_000_000, "python", "natural", None, 1_313_024)
RESULT = GateResult(
    checks=(
        Check("expect", "worker:heartbeat=delivered", True, "delivered, as expected: recorded",
              CellRef("worker:heartbeat", "websocket", 1_000_000, "python", "natural", None, 147)),
        Check("expect", "worker:data:sync@1MB=delivered", False,
              "expected delivered, got dropped (oversize-close): 1,313,024 B frame: 1009 <Message Too Big> & \"co\"",
              REF, "oversize-close", "1,313,024 B frame: 1009 <Message Too Big> & \"co\""),
        Check("expect", "worker:nope=delivered", False, "rule matched no cell (expected delivered)"),
        # A logged decode error can hold control characters (the polling separator \x1e) and NUL.
        Check("baseline", "regression", False, "delivered in the baseline, dropped now: body\x1ecut\x00",
              REF, "server-decode-error", "body\x1ecut\x00"),
        Check("growth", "growth of worker:data:sync", True, "+1.0%"),
    ),
    improvements=(Improvement("baseline", "now delivered", "dropped (oversize-close) in the baseline, delivered now", REF),),
)


def test_junit_validates_against_the_schema_and_counts_right():
    root = assert_valid_junit(junit_xml(RESULT, elapsed_s=1.5))
    assert root.tag == "testsuites" and root.get("tests") == "5" and root.get("failures") == "3"
    assert root.get("time") == "1.500"
    suites = {s.get("name"): s for s in root}
    assert list(suites) == ["imdiag.core.gate.expect", "imdiag.core.gate.baseline", "imdiag.core.gate.growth"]
    expect = suites["imdiag.core.gate.expect"]
    assert (expect.get("tests"), expect.get("failures"), expect.get("errors")) == ("3", "2", "0")
    cases = expect.findall("testcase")
    assert cases[1].get("name") == "worker:data:sync@1MB=delivered [" + REF.describe() + "]"
    failure = cases[1].find("failure")
    assert failure.get("type") == "oversize-close"
    assert "<Message Too Big> & \"co\"" in failure.get("message")  # escaped in the file, intact when read
    assert "cause: oversize-close" in failure.text and "cell: worker:data:sync" in failure.text
    assert cases[0].find("failure") is None
    baseline = suites["imdiag.core.gate.baseline"]
    assert "\\x1e" in baseline.find("testcase/failure").text and "\\x00" in baseline.find("testcase/failure").text
    assert "improvement: now delivered" in baseline.find("system-out").text


def test_junit_with_no_checks_is_still_valid():
    root = assert_valid_junit(junit_xml(GateResult(())))
    assert root.get("tests") == "0" and len(root) == 1 and root[0].get("tests") == "0"


def test_validator_catches_what_the_schema_forbids():
    declared = _schema_elements()
    bad = ET.fromstring('<testsuites><testsuite name="x" tests="one" failures="0"><testcase name="a"/>'
                        "<failure/></testsuite></testsuites>")
    problems = validate_structurally(bad, declared)
    assert any("tests='one'" in p for p in problems)
    assert any("required attribute errors" in p for p in problems)
    assert any("required attribute classname" in p for p in problems)
    assert any("unexpected <failure>" in p for p in problems)


def test_markdown_summary_table():
    text = gate_markdown(RESULT)
    assert text.startswith("## imdiag gate: ❌ failed (3 of 5 checks failed)")
    rows = [line for line in text.splitlines() if line.startswith("| ❌ ") and not line.startswith("| ❌ |")]
    assert len(rows) == 3
    assert "body cut\\x00" in rows[2]  # control characters shown, not written
    row = rows[0]
    assert "worker:data:sync@1MB=delivered" in row and "oversize-close" in row and REF.describe() in row
    assert row.count(" | ") == 3  # four columns: no stray '|' from the evidence
    assert "### Improvements on the baseline" in text and "<details>" in text
    passed = gate_markdown(GateResult((RESULT.checks[0],)))
    assert passed.startswith("## imdiag gate: ✅ passed (1 checks)") and "| ❌" not in passed


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_markdown_cells_stay_on_one_line(newline):
    check = Check("expect", "a|b", False, f"line one{newline}line two | three")
    text = gate_markdown(GateResult((check,)))
    row = next(line for line in text.splitlines() if line.startswith("| ❌ a"))
    assert "a\\|b" in row and "line one line two \\| three" in row


def test_github_annotations_are_one_escaped_line_each():
    lines = github_annotations(RESULT)
    assert [line.split(" ", 1)[0] for line in lines] == ["::error", "::error", "::error", "::notice"]
    title, message = lines[0].removeprefix("::error title=").split("::", 1)
    assert title.startswith("imdiag gate%3A worker%3Adata%3Async@1MB=delivered [")
    assert "%2C" in title and ":" not in title
    assert message.startswith("expected delivered, got dropped (oversize-close)")
    assert all("\n" not in line and "\r" not in line for line in lines)
    multi = github_annotations(GateResult((Check("expect", "r", False, "50% lost\nsecond line"),)))
    assert multi == ["::error title=imdiag gate%3A r::50%25 lost%0Asecond line"]
    assert github_annotations(GateResult((RESULT.checks[0],))) == []
