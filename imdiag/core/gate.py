"""The CI regression gate: expectation rules, headroom, baselines, and the gate file. Pure.

The gate reads ``imdiag.report/1`` report dicts (the current one and, optionally, an earlier
one), never the network: what it judges is exactly what the JSON report says.

Rule grammar (``--expect`` and ``expect = [...]`` in the gate file)::

    RULE      = SELECTOR "=" VERDICT
    SELECTOR  = TYPE ["#" LABEL] ["@" LIMIT [":" TRANSPORT [":" MASTER]]]
    TYPE      = a message type, e.g. worker:data:sync, or *
    LABEL     = a cell label: natural, replay, ladder, L-1, L, L+1, or *
    LIMIT     = a size (1MB, 1e6, 1000000, 1MiB) or *
    TRANSPORT = websocket | polling | *
    MASTER    = python | node | *
    VERDICT   = delivered | dropped | dropped:CAUSE   (CAUSE: oversize-close, server-decode-error...)

An omitted part means ``*``. Without ``#LABEL`` a rule is about the messages as they are (the
natural-size and replayed cells), not the synthetic ladder and boundary frames. Every cell a rule
selects must have the verdict; a rule that selects no cell fails ("rule matched no cell"), so a
typo in a type name can never pass silently.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from imdiag.core.catalog import TYPE_NAMES, message_type
from imdiag.core.errors import InputError
from imdiag.core.model import Cause
from imdiag.core.plan import (
    DEFAULT_LADDER,
    DEFAULT_LIMITS,
    GROWING_TYPES,
    MASTER_CHOICES,
    MASTER_CHOICES_TEXT,
    MASTER_SERVERS,
    SweepSettings,
)
from imdiag.core.units import format_bytes, format_size, parse_limit, parse_size, timeout_problem
from imdiag.core.wire import WIRE_TRANSPORTS, Encoder, Transport, event_problem, namespace_problem

REPORT_SCHEMA = "imdiag.report/1"
# Sweep cells of made-up sizes; every other label (natural, replay...) is a real message.
SYNTHETIC_LABELS = frozenset({"ladder", "L-1", "L", "L+1"})
DEFAULT_MAX_GROWTH = 0.10
RULE_SYNTAX = "TYPE[#LABEL][@LIMIT[:TRANSPORT[:MASTER]]]=delivered|dropped|dropped:CAUSE"
CAUSES = tuple(c.value for c in Cause)
ANY = "*"


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellRef:
    """Which cell of a report a check is about (the fields that identify it)."""

    type: str
    transport: str
    limit: int
    master: str
    label: str
    index: int | None
    message_bytes: int

    def describe(self) -> str:
        where = f"{self.master} master, {self.transport}, limit {format_size(self.limit)}"
        what = f"#{self.index} " if self.index is not None else ""
        return f"{self.type} ({what}{self.label}, {format_bytes(self.message_bytes)}) on {where}"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Check:
    """One thing the gate checked; a CI testcase."""

    kind: str  # "expect", "max-fill", "baseline", "growth", "report"
    name: str
    passed: bool
    message: str
    cell: CellRef | None = None
    cause: str | None = None  # the cell's cause, when it was dropped
    evidence: str = ""  # the cell's evidence, as the report has it

    @property
    def title(self) -> str:
        """Unique within a gate run: the check's name and, if any, its cell."""
        return f"{self.name} [{self.cell.describe()}]" if self.cell else self.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "name": self.name, "title": self.title, "passed": self.passed, "message": self.message,
            "cell": self.cell.to_dict() if self.cell else None, "cause": self.cause, "evidence": self.evidence,
        }


@dataclass(frozen=True)
class Improvement:
    """Better than the baseline: reported, never failed."""

    kind: str  # "baseline" (dropped before, delivered now) or "growth" (the type shrank)
    name: str
    message: str
    cell: CellRef | None = None

    @property
    def title(self) -> str:
        return f"{self.name} [{self.cell.describe()}]" if self.cell else self.name

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "title": self.title, "message": self.message,
                "cell": self.cell.to_dict() if self.cell else None}


@dataclass(frozen=True)
class GateResult:
    checks: tuple[Check, ...]
    improvements: tuple[Improvement, ...] = ()

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    @property
    def passed(self) -> bool:
        return not self.failures


def gate_to_dict(result: GateResult) -> dict[str, Any]:
    """The ``gate`` section of the JSON report."""
    return {
        "passed": result.passed,
        "checks": len(result.checks),
        "failures": [c.to_dict() for c in result.failures],
        "improvements": [i.to_dict() for i in result.improvements],
    }


# --- rules -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    text: str  # as the user wrote it, for messages
    type: str  # a type name or "*"
    label: str | None  # None: the real messages (every label but SYNTHETIC_LABELS); "*": any
    limit: int | None
    transport: str | None
    master: str | None
    delivered: bool
    cause: str | None = None  # only with delivered=False

    @property
    def verdict(self) -> str:
        if self.delivered:
            return "delivered"
        return f"dropped:{self.cause}" if self.cause else "dropped"

    def selects(self, cell: Mapping[str, Any]) -> bool:
        if self.type != ANY and cell["type"] != self.type:
            return False
        if self.label is None:
            if cell["label"] in SYNTHETIC_LABELS:
                return False
        elif self.label != ANY and cell["label"] != self.label and not cell["label"].startswith(self.label + ":"):
            return False  # "#replay" selects "replay:session.jsonl" too
        if self.limit is not None and cell["limit"] != self.limit:
            return False
        if self.transport is not None and cell["transport"] != self.transport:
            return False
        return self.master is None or cell["master"] == self.master

    def holds_for(self, cell: Mapping[str, Any]) -> bool:
        if self.delivered:
            return bool(cell["delivered"])
        return not cell["delivered"] and (self.cause is None or cell.get("cause") == self.cause)


def _rule_error(text: str, why: str) -> InputError:
    return InputError(f"invalid rule {text!r}: {why}; expected {RULE_SYNTAX}")


def parse_rule(text: str) -> Rule:
    """``worker:data:sync@1MB:websocket=dropped:oversize-close`` -> Rule."""
    raw = text.strip()
    selector, eq, verdict = raw.rpartition("=")
    if not eq:
        raise _rule_error(text, "no '=' before the verdict")
    verdict = verdict.strip()
    delivered: bool
    cause: str | None = None
    if verdict == "delivered":
        delivered = True
    elif verdict == "dropped":
        delivered = False
    elif verdict.startswith("dropped:"):
        delivered = False
        cause = verdict.removeprefix("dropped:")
        if cause not in CAUSES:
            raise _rule_error(text, f"unknown cause {cause!r} (causes: {', '.join(CAUSES)})")
    else:
        raise _rule_error(text, f"unknown verdict {verdict!r}")
    head, _, where = selector.partition("@")
    type_name, hash_, label = head.partition("#")
    type_name = type_name.strip()
    if not type_name:
        raise _rule_error(text, "no message type (use * for every type)")
    label = label.strip()
    if hash_ and not label:
        raise _rule_error(text, "empty label after '#'")
    parts = [p.strip() for p in where.split(":")] if where else []
    if len(parts) > 3:
        raise _rule_error(text, f"too many ':' parts after '@' ({len(parts)}, at most LIMIT:TRANSPORT:MASTER)")
    limit_s, transport, master = (parts + ["", "", ""])[:3]
    limit: int | None = None
    if limit_s not in ("", ANY):
        try:
            limit = parse_limit(limit_s)
        except InputError as exc:
            raise _rule_error(text, str(exc)) from None
    if transport not in ("", ANY) and transport not in {t.value for t in WIRE_TRANSPORTS}:
        raise _rule_error(text, f"unknown transport {transport!r} (websocket, polling or *)")
    if master not in ("", ANY) and master not in MASTER_SERVERS:
        raise _rule_error(text, f"unknown master {master!r} ({', '.join(MASTER_SERVERS)} or *)")
    return Rule(
        text=raw, type=type_name, label=label or None, limit=limit,
        transport=transport if transport not in ("", ANY) else None,
        master=master if master not in ("", ANY) else None,
        delivered=delivered, cause=cause,
    )


def parse_fraction(value: object, what: str) -> float:
    """``0.8``, ``"0.8"`` or ``"80%"`` -> 0.8; anything else is an InputError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(f"{what}: expected a fraction like 0.8 or 80%, got {value!r}")
    text = str(value).strip()
    try:
        number = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise InputError(f"{what}: expected a fraction like 0.8 or 80%, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise InputError(f"{what}: {value!r} is not a fraction of at least 0")
    return number


def parse_max_fill(value: object, what: str = "--max-fill") -> float:
    fill = parse_fraction(value, what)
    if not 0 < fill <= 1:
        raise InputError(f"{what}: {value!r} must be more than 0 and at most 1 (100%)")
    return fill


@dataclass(frozen=True)
class GateSpec:
    """What the gate checks, whatever the command that produced the report."""

    rules: tuple[Rule, ...] = ()
    max_fill: float | None = None
    max_growth: float = DEFAULT_MAX_GROWTH


# --- reading reports -------------------------------------------------------------------------

_CELL_KEYS = {"type": str, "transport": str, "limit": int, "master": str, "label": str,
              "message_bytes": int, "delivered": bool}


def report_cells(report: Mapping[str, Any], source: str) -> list[Mapping[str, Any]]:
    """The cells of an ``imdiag.report/1`` dict, checked enough that the gate cannot crash on them."""
    if not isinstance(report, Mapping):
        raise InputError(f"{source}: not an imdiag report (expected a JSON object)")
    if report.get("schema") != REPORT_SCHEMA:
        raise InputError(f"{source}: not an {REPORT_SCHEMA} report (schema {report.get('schema')!r})")
    cells = report.get("cells")
    if not isinstance(cells, list):
        raise InputError(f"{source}: the report has no 'cells' list")
    for i, cell in enumerate(cells):
        if not isinstance(cell, Mapping):
            raise InputError(f"{source}: cells[{i}] is not an object")
        for key, kind in _CELL_KEYS.items():
            value = cell.get(key)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise InputError(f"{source}: cells[{i}].{key} is missing or not a {kind.__name__}")
        index = cell.get("index")
        if index is not None and (not isinstance(index, int) or isinstance(index, bool)):
            raise InputError(f"{source}: cells[{i}].index is not an integer")
    return list(cells)


BASELINE_COMMANDS = ("size-sweep", "replay", "gate")  # the reports whose cells a gate can compare


def baseline_cells(report: Mapping[str, Any], source: str) -> list[Mapping[str, Any]]:
    """The cells of an earlier report to compare with: a report of size-sweep, replay or gate
    (a probe's, doctor's or tap's has no comparable cells), every message at least 1 byte (else
    no growth could ever be measured against it)."""
    if isinstance(report, Mapping) and report.get("schema") == REPORT_SCHEMA:
        command = report.get("command")
        if command not in BASELINE_COMMANDS:
            what = f"imdiag {command}" if isinstance(command, str) else f"command {command!r}"
            raise InputError(f"{source}: a report of {what}, not of {'/'.join(BASELINE_COMMANDS)}")
    cells = report_cells(report, source)
    for i, cell in enumerate(cells):
        if cell["message_bytes"] < 1:
            raise InputError(f"{source}: cells[{i}].message_bytes is {cell['message_bytes']}: a message is at "
                             "least 1 byte")
    return cells


def cell_ref(cell: Mapping[str, Any]) -> CellRef:
    return CellRef(cell["type"], cell["transport"], cell["limit"], cell["master"], cell["label"],
                   cell.get("index"), cell["message_bytes"])


def _verdict_text(cell: Mapping[str, Any]) -> str:
    if cell["delivered"]:
        return "delivered"
    return f"dropped ({cell.get('cause') or 'no cause'})"


def _is_message(cell: Mapping[str, Any]) -> bool:
    return cell["label"] not in SYNTHETIC_LABELS


# --- checks ----------------------------------------------------------------------------------


def _expect_checks(rule: Rule, cells: Sequence[Mapping[str, Any]]) -> list[Check]:
    selected = [c for c in cells if rule.selects(c)]
    if not selected:
        return [Check("expect", rule.text, False, f"rule matched no cell (expected {rule.verdict}; check the type, "
                      "label, limit, transport and master against the report)")]
    checks = []
    for cell in selected:
        ref = cell_ref(cell)
        ok = rule.holds_for(cell)
        got = _verdict_text(cell)
        message = f"{got}, as expected" if ok else f"expected {rule.verdict}, got {got}"
        checks.append(Check("expect", rule.text, ok, f"{message}: {cell.get('evidence', '')}",
                            ref, cell.get("cause"), str(cell.get("evidence", ""))))
    return checks


def _fill_checks(max_fill: float, cells: Sequence[Mapping[str, Any]]) -> list[Check]:
    checks = []
    for cell in cells:
        if not (_is_message(cell) and cell["delivered"]):
            continue
        ref = cell_ref(cell)
        fill = cell["message_bytes"] / cell["limit"]
        ok = cell["message_bytes"] <= max_fill * cell["limit"]
        message = (f"{format_bytes(cell['message_bytes'])} is {fill:.1%} of the limit {format_bytes(cell['limit'])}"
                   f" ({'within' if ok else 'over'} the {max_fill:.0%} budget)")
        checks.append(Check("max-fill", f"max-fill {max_fill:g}", ok, message, ref,
                            None, str(cell.get("evidence", ""))))
    return checks


def _baseline_key(cell: Mapping[str, Any]) -> tuple[Any, ...]:
    key = (cell["master"], cell["transport"], cell["limit"], cell["type"], cell["label"], cell.get("index"))
    # A ladder frame is identified by its size; a real message by its type and index.
    return key + (cell["message_bytes"],) if cell["label"] in SYNTHETIC_LABELS else key


def _baseline_checks(
    cells: Sequence[Mapping[str, Any]], before: Sequence[Mapping[str, Any]], source: str
) -> tuple[list[Check], list[Improvement]]:
    old = {_baseline_key(c): c for c in before}
    checks: list[Check] = []
    improvements: list[Improvement] = []
    compared = 0
    for cell in cells:
        was = old.get(_baseline_key(cell))
        if was is None:
            continue
        compared += 1
        ref = cell_ref(cell)
        if was["delivered"] and not cell["delivered"]:
            checks.append(Check(
                "baseline", "regression", False,
                f"delivered in the baseline, {_verdict_text(cell)} now: {cell.get('evidence', '')}",
                ref, cell.get("cause"), str(cell.get("evidence", "")),
            ))
        elif not was["delivered"] and cell["delivered"]:
            improvements.append(Improvement(
                "baseline", "now delivered",
                f"{_verdict_text(was)} in the baseline, delivered now", ref,
            ))
    only_before = len(old) - compared
    new = len(cells) - compared
    if compared == 0:
        checks.append(Check("baseline", "baseline comparison", False,
                            f"no cell of this report matches a cell of {source} "
                            f"({len(before)} baseline cells): compare reports of the same check"))
    elif not any(c.kind == "baseline" for c in checks):
        checks.append(Check("baseline", "no regression against the baseline", True,
                            f"{compared} cells compared with {source}, none delivered before and dropped now"
                            f" ({only_before} only in the baseline, {new} new)"))
    return checks, improvements


def _message_sizes(cells: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, int | None, str], int]:
    """Per (type, label, index, encoder), the largest frame of the real message.

    ``message_bytes``, not ``wire_bytes``: over polling a body may batch other packets, and
    how many depends on timing, which would make the gate flaky.
    """
    sizes: dict[tuple[str, str, int | None, str], int] = {}
    for cell in cells:
        if _is_message(cell):
            key = (cell["type"], cell["label"], cell.get("index"), str(cell.get("encoder", "")))
            sizes[key] = max(sizes.get(key, 0), cell["message_bytes"])
    return sizes


def _growth_checks(
    cells: Sequence[Mapping[str, Any]], before: Sequence[Mapping[str, Any]], max_growth: float
) -> tuple[list[Check], list[Improvement]]:
    now, old = _message_sizes(cells), _message_sizes(before)
    checks: list[Check] = []
    improvements: list[Improvement] = []
    for key in sorted(now.keys() & old.keys(), key=lambda k: (k[0], k[1], -1 if k[2] is None else k[2], k[3])):
        type_name, label, index, encoder = key
        where = f"#{index} of {label}" if index is not None else label
        name = f"{type_name} ({where}" + (f", {encoder} encoder)" if encoder else ")")
        was, size = old[key], now[key]
        growth = (size - was) / was if was else 0.0
        text = f"{format_bytes(was)} in the baseline, {format_bytes(size)} now ({growth:+.1%}; budget +{max_growth:.0%})"
        checks.append(Check("growth", f"growth of {name}", growth <= max_growth, text))
        if growth < -max_growth:
            improvements.append(Improvement("growth", f"{name} shrank", text))
    return checks, improvements


def evaluate(
    report: Mapping[str, Any],
    spec: GateSpec,
    baseline: Mapping[str, Any] | None = None,
    *,
    baseline_source: str = "the baseline",
) -> GateResult:
    """Judge a report dict against the rules, the headroom budget and an earlier report."""
    cells = report_cells(report, "report")
    checks: list[Check] = []
    improvements: list[Improvement] = []
    if report.get("interrupted"):
        checks.append(Check("report", "report complete", False,
                            "the run was interrupted: a partial report cannot pass the gate"))
    for rule in spec.rules:
        checks += _expect_checks(rule, cells)
    if spec.max_fill is not None:
        checks += _fill_checks(spec.max_fill, cells)
    if baseline is not None:
        before = baseline_cells(baseline, baseline_source)
        found, better = _baseline_checks(cells, before, baseline_source)
        checks += found
        improvements += better
        found, better = _growth_checks(cells, before, spec.max_growth)
        checks += found
        improvements += better
    return GateResult(tuple(checks), tuple(improvements))


# --- the gate file ---------------------------------------------------------------------------

CONFIG_KEYS = (
    "fixtures", "limits", "transports", "encoder", "master", "types", "sizes", "boundary", "sweep",
    "namespace", "event", "seed", "timeout", "expect", "max_fill", "baseline", "max_growth", "outputs",
)
OUTPUT_KEYS = ("json", "junit", "markdown", "html")


@dataclass(frozen=True)
class GateOutputs:
    json: str | None = None
    junit: str | None = None
    markdown: str | None = None
    html: str | None = None


@dataclass(frozen=True)
class GateConfig:
    """A parsed gate file (``imdiag.toml`` or ``[tool.imdiag]``); paths resolved against its directory."""

    source: str  # "imdiag.toml" or "pyproject.toml [tool.imdiag]", for messages
    sweep: SweepSettings | None  # None: no synthetic sweep, fixtures only
    fixtures: tuple[str, ...]
    limits: tuple[int, ...]
    transports: tuple[Transport, ...]
    encoder: Encoder
    masters: tuple[str, ...]
    namespace: str | None  # None: the sweep uses "/", a replay the capture's own
    event: str
    timeout_s: float
    spec: GateSpec
    baseline: str | None = None
    outputs: GateOutputs = field(default_factory=GateOutputs)


def _key_error(source: str, key: str, why: str) -> InputError:
    return InputError(f"{source}: key '{key}': {why}")


def _str(data: Mapping[str, Any], key: str, source: str, default: str) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value:
        raise _key_error(source, key, f"expected a non-empty string, got {value!r}")
    return value


def _str_list(data: Mapping[str, Any], key: str, source: str) -> list[str] | None:
    """A list of strings; a comma-separated string is accepted too, like on the command line."""
    if key not in data:
        return None
    value = data[key]
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        raise _key_error(source, key, f"expected a list of strings, got {value!r}")
    return [str(v) for v in value]


def _nonempty_list(data: Mapping[str, Any], key: str, source: str) -> list[str] | None:
    """A list that must name something when given (limits, transports, types): ``[]`` is refused,
    not read as the default."""
    items = _str_list(data, key, source)
    if items == []:
        raise _key_error(source, key, "empty: remove the key for the default")
    return items


def _sizes(data: Mapping[str, Any], key: str, source: str, default: tuple[int, ...], *, limit: bool) -> tuple[int, ...]:
    # `sizes = []` is documented: no ladder at all.
    items = _nonempty_list(data, key, source) if limit else _str_list(data, key, source)
    if items is None:
        return default
    try:
        sizes = tuple(sorted({(parse_limit if limit else parse_size)(v) for v in items}))
    except InputError as exc:
        raise _key_error(source, key, str(exc)) from None
    if not limit and sizes and sizes[0] < 1:
        raise _key_error(source, key, "sizes must be at least 1 byte")
    return sizes


def _path(base_dir: str, value: str) -> str:
    return value if os.path.isabs(value) else os.path.normpath(os.path.join(base_dir, value))


def _common(data: Mapping[str, Any], source: str) -> tuple[tuple[Transport, ...], Encoder, tuple[str, ...],
                                                        str | None, str, float, int]:
    """The keys the sweep and the replays share: transports, encoder, masters, namespace, event,
    timeout and seed."""
    transports_raw = _nonempty_list(data, "transports", source) or [t.value for t in WIRE_TRANSPORTS]
    try:
        transports = tuple(dict.fromkeys(Transport(t) for t in transports_raw))
        if Transport.DEFAULT in transports:
            raise ValueError("a client library's transport")
    except ValueError:
        raise _key_error(source, "transports", f"{transports_raw!r}: use websocket and/or polling") from None
    try:
        encoder = Encoder(_str(data, "encoder", source, Encoder.NODE.value))
    except ValueError:
        raise _key_error(source, "encoder", f"{data.get('encoder')!r}: use node or python") from None
    master = _str(data, "master", source, "python")
    masters = MASTER_CHOICES.get(master)
    if masters is None:
        raise _key_error(source, "master", f"{master!r}: use {MASTER_CHOICES_TEXT}")
    namespace = _str(data, "namespace", source, "/") if "namespace" in data else None
    namespace_why = namespace_problem(namespace) if namespace is not None else None
    if namespace_why:
        raise _key_error(source, "namespace", f"{namespace!r}: {namespace_why}")
    event = _str(data, "event", source, "message")
    event_why = event_problem(event)
    if event_why:
        raise _key_error(source, "event", f"{event!r}: {event_why}")
    timeout = data.get("timeout", 10.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise _key_error(source, "timeout", f"expected seconds > 0, got {timeout!r}")
    problem = timeout_problem(float(timeout))  # the same rule as --timeout
    if problem:
        raise _key_error(source, "timeout", f"{timeout!r}: {problem}")
    seed = data.get("seed", 1)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise _key_error(source, "seed", f"expected an integer, got {seed!r}")
    for key in ("sweep", "boundary"):
        if key in data and not isinstance(data[key], bool):
            raise _key_error(source, key, f"expected true or false, got {data[key]!r}")
    return transports, encoder, masters, namespace, event, float(timeout), seed


def _rules(data: Mapping[str, Any], source: str) -> tuple[Rule, ...]:
    rules = []
    for text in _str_list(data, "expect", source) or []:
        try:
            rules.append(parse_rule(text))
        except InputError as exc:
            raise _key_error(source, "expect", str(exc)) from None
    return tuple(rules)


def _outputs(data: Mapping[str, Any], source: str, base_dir: str) -> GateOutputs:
    outputs_raw = data.get("outputs", {})
    if not isinstance(outputs_raw, Mapping):
        raise _key_error(source, "outputs", f"expected a table with {', '.join(OUTPUT_KEYS)}, got {outputs_raw!r}")
    bad = sorted(set(outputs_raw) - set(OUTPUT_KEYS))
    if bad:
        raise _key_error(source, f"outputs.{bad[0]}", f"unknown key (known: {', '.join(OUTPUT_KEYS)})")
    paths = {}
    for key, value in outputs_raw.items():
        if not isinstance(value, str) or not value:
            raise _key_error(source, f"outputs.{key}", f"expected a file name, got {value!r}")
        paths[key] = _path(base_dir, value)
    return GateOutputs(**paths)


def parse_gate_config(data: Mapping[str, Any], source: str, base_dir: str, *, timeout_scale: float = 1.0) -> GateConfig:
    """Turn the TOML table of a gate file into a GateConfig; every error names the file and key."""
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise _key_error(source, unknown[0], f"unknown key (known keys: {', '.join(CONFIG_KEYS)})")
    limits = _sizes(data, "limits", source, DEFAULT_LIMITS, limit=True)
    transports, encoder, masters, namespace, event, timeout, seed = _common(data, source)
    fixtures = tuple(_path(base_dir, f) for f in (_str_list(data, "fixtures", source) or []))
    sweep: SweepSettings | None = None
    if data.get("sweep", True):
        type_names = _nonempty_list(data, "types", source)
        try:
            types = tuple(message_type(t).name for t in type_names) if type_names else TYPE_NAMES
        except InputError as exc:
            raise _key_error(source, "types", str(exc)) from None
        sweep = SweepSettings(
            limits=limits, sizes=_sizes(data, "sizes", source, DEFAULT_LADDER, limit=False), types=types,
            ladder_types=GROWING_TYPES, transports=transports, encoder=encoder, namespace=namespace or "/",
            event=event, seed=seed, boundary=data.get("boundary", True), timeout_s=timeout * timeout_scale,
            masters=masters,
        )
    elif not fixtures:
        raise _key_error(source, "sweep", "sweep = false and no fixtures: the gate would check nothing")
    max_fill = parse_max_fill(data["max_fill"], f"{source}: key 'max_fill'") if "max_fill" in data else None
    max_growth = (parse_fraction(data["max_growth"], f"{source}: key 'max_growth'")
                  if "max_growth" in data else DEFAULT_MAX_GROWTH)
    baseline = _path(base_dir, _str(data, "baseline", source, "")) if "baseline" in data else None
    return GateConfig(
        source=source, sweep=sweep, fixtures=fixtures, limits=limits, transports=transports, encoder=encoder,
        masters=masters, namespace=namespace, event=event, timeout_s=timeout * timeout_scale,
        spec=GateSpec(_rules(data, source), max_fill, max_growth), baseline=baseline,
        outputs=_outputs(data, source, base_dir),
    )
