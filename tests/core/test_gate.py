"""The gate judges report dicts: rules, headroom, baselines, the gate file."""

import copy

import pytest

from imdiag.core.errors import InputError
from imdiag.core.gate import (
    DEFAULT_MAX_GROWTH,
    GateSpec,
    evaluate,
    gate_to_dict,
    parse_fraction,
    parse_gate_config,
    parse_max_fill,
    parse_rule,
)
from imdiag.core.wire import Encoder, Transport


def cell(type_="worker:heartbeat", transport="websocket", limit=1_000_000, master="python", label="natural",
         message_bytes=150, delivered=True, cause=None, index=None, encoder="node"):
    return {
        "type": type_, "transport": transport, "limit": limit, "encoder": encoder, "master": master,
        "label": label, "index": index, "wire_bytes": message_bytes, "message_bytes": message_bytes,
        "js_length": message_bytes, "predicted_delivered": delivered, "delivered": delivered,
        "cause": cause, "evidence": "the master recorded it" if delivered else f"{message_bytes:,} B frame: 1009",
    }


def report(*cells, interrupted=False):
    return {"schema": "imdiag.report/1", "command": "size-sweep", "interrupted": interrupted, "cells": list(cells)}


SYNC = "worker:data:sync"
INCIDENT = report(
    cell(),
    cell(transport="polling"),
    cell(limit=100_000),
    cell(SYNC, message_bytes=1_313_024, delivered=False, cause="oversize-close"),
    cell(SYNC, transport="polling", message_bytes=1_313_024, delivered=False, cause="oversize-close"),
    cell(SYNC, limit=10_000_000, message_bytes=1_313_024),
    cell(SYNC, label="ladder", message_bytes=1_000),
    cell(SYNC, label="L-1", message_bytes=999_999),
    cell(SYNC, label="L", message_bytes=1_000_000, delivered=False, cause="oversize-close"),
)


def run(*rules, rep=INCIDENT, **kwargs):
    return evaluate(rep, GateSpec(tuple(parse_rule(r) for r in rules), **kwargs))


# --- rule grammar ----------------------------------------------------------------------------


def test_rule_grammar_full_and_short_forms():
    rule = parse_rule(" worker:data:sync@1MB:websocket:node=dropped:oversize-close ")
    assert (rule.type, rule.label, rule.limit, rule.transport, rule.master) == (SYNC, None, 1_000_000, "websocket", "node")
    assert (rule.delivered, rule.cause, rule.verdict) == (False, "oversize-close", "dropped:oversize-close")
    short = parse_rule("worker:heartbeat=delivered")
    assert (short.limit, short.transport, short.master, short.delivered) == (None, None, None, True)
    star = parse_rule("*#L-1@*:*:*=dropped")
    assert (star.type, star.label, star.limit, star.transport, star.master) == ("*", "L-1", None, None, None)
    assert parse_rule("x@1e6=delivered").limit == parse_rule("x@1000000=delivered").limit == 1_000_000


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("worker:heartbeat", "no '='"),
        ("worker:heartbeat=arrived", "unknown verdict 'arrived'"),
        ("worker:heartbeat=dropped:lost", "unknown cause 'lost'"),
        ("=delivered", "no message type"),
        ("worker:heartbeat@1XB=delivered", "invalid size '1XB'"),
        ("worker:heartbeat@0=delivered", "at least 1 byte"),
        ("worker:heartbeat@1MB:pigeon=delivered", "unknown transport 'pigeon'"),
        ("worker:heartbeat@1MB:websocket:deno=delivered", "unknown master 'deno'"),
        ("worker:heartbeat@1MB:websocket:node:x=delivered", "too many ':' parts"),
        ("worker:heartbeat#=delivered", "empty label"),
    ],
)
def test_bad_rules_say_why_and_show_the_grammar(text, why):
    with pytest.raises(InputError) as info:
        parse_rule(text)
    assert why in str(info.value) and "TYPE[#LABEL][@LIMIT" in str(info.value)


# --- each rule kind, passing and failing -----------------------------------------------------


def test_delivered_rule_passes_on_every_selected_cell():
    result = run("worker:heartbeat=delivered")
    assert result.passed and len(result.checks) == 3
    assert all(c.kind == "expect" and c.cell is not None for c in result.checks)


def test_delivered_rule_fails_with_cause_and_evidence():
    result = run(f"{SYNC}@1MB:websocket=delivered")
    assert not result.passed
    (failure,) = result.failures
    assert failure.cause == "oversize-close" and "1009" in failure.evidence
    assert failure.message.startswith("expected delivered, got dropped (oversize-close)")
    assert failure.cell.limit == 1_000_000 and failure.cell.transport == "websocket"


def test_dropped_rule_with_and_without_cause():
    assert run(f"{SYNC}@1MB=dropped").passed
    assert run(f"{SYNC}@1MB:*=dropped:oversize-close").passed
    wrong = run(f"{SYNC}@1MB=dropped:server-decode-error")
    assert len(wrong.failures) == 2 and "got dropped (oversize-close)" in wrong.failures[0].message
    delivered = run(f"{SYNC}@10MB=dropped")
    assert [f.message.split(":")[0] for f in delivered.failures] == ["expected dropped, got delivered"]


def test_wildcards_and_master_selectors():
    assert run("*@100KB=delivered").passed  # only the heartbeat at 100KB
    assert not run("*@1MB:websocket=delivered").passed
    assert run("worker:heartbeat@*:*:python=delivered").passed
    assert not run("worker:heartbeat@*:*:node=delivered").passed  # no node cells: matched nothing
    assert parse_rule("worker:heartbeat@*:*:asgi=delivered").master == "asgi"


def test_rules_skip_synthetic_frames_unless_labelled():
    # Without #LABEL only the real message is judged, not the 1KB ladder frame or L-1.
    assert run(f"{SYNC}@1MB:websocket=dropped").passed
    assert run(f"{SYNC}#L-1@1MB=delivered").passed
    assert run(f"{SYNC}#L@1MB=dropped:oversize-close").passed
    assert not run(f"{SYNC}#*@1MB:websocket=dropped").passed  # the ladder and L-1 cells were delivered


def test_replay_labels_name_their_capture():
    rep = report(cell(label="replay:session.jsonl", index=0), cell(label="replay:data_sync.json", index=0,
                                                                    delivered=False, cause="oversize-close"))
    assert run("worker:heartbeat#replay:session.jsonl=delivered", rep=rep).passed
    assert not run("worker:heartbeat#replay=delivered", rep=rep).passed  # both captures
    assert len(run("worker:heartbeat=dropped", rep=rep).checks) == 2  # real messages: both


def test_a_rule_that_matches_no_cell_fails_loudly():
    for rule in ("worker:heartbaet=delivered", "worker:heartbeat@2MB=delivered", f"{SYNC}#L+1=dropped"):
        result = run(rule)
        assert not result.passed
        (failure,) = result.failures
        assert "rule matched no cell" in failure.message and failure.cell is None


def test_an_interrupted_report_never_passes():
    result = run("worker:heartbeat=delivered", rep=report(cell(), interrupted=True))
    assert not result.passed and result.failures[0].kind == "report"


# --- headroom --------------------------------------------------------------------------------


def test_max_fill_fails_a_delivered_message_near_its_limit():
    rep = report(cell(message_bytes=800_000), cell(SYNC, message_bytes=800_001),
                 cell(SYNC, label="L-1", message_bytes=999_999),  # synthetic: not a real message
                 cell("worker:register", message_bytes=2_000_000, delivered=False, cause="oversize-close"))
    result = evaluate(rep, GateSpec(max_fill=0.8))
    assert [c.passed for c in result.checks] == [True, False]
    (failure,) = result.failures
    assert failure.cell.type == SYNC and "80.0% of the limit" in failure.message and "over the 80% budget" in failure.message


def test_fractions_accept_decimals_and_percent():
    assert parse_fraction("80%", "x") == parse_fraction(0.8, "x") == parse_fraction("0.8", "x") == 0.8
    assert parse_max_fill("100%") == 1.0
    for bad in ("0", "1.5", "lots", "-1%", True, "nan"):
        with pytest.raises(InputError):
            parse_max_fill(bad)


# --- baselines -------------------------------------------------------------------------------


def test_baseline_regression_fails_and_improvement_is_reported():
    before = copy.deepcopy(INCIDENT)
    now = copy.deepcopy(INCIDENT)
    now["cells"][0].update(delivered=False, cause="connection-closed", evidence="reset")  # heartbeat lost
    now["cells"][3].update(delivered=True, cause=None)  # sync now fits over websocket at 1MB
    result = evaluate(now, GateSpec(), before, baseline_source="old.json")
    failures = [c for c in result.failures if c.kind == "baseline"]
    assert len(failures) == 1 and failures[0].cell.type == "worker:heartbeat" and failures[0].cause == "connection-closed"
    assert "delivered in the baseline" in failures[0].message
    (better,) = result.improvements
    assert better.kind == "baseline" and better.cell.type == SYNC and better.cell.transport == "websocket"
    assert not result.passed


def test_baseline_same_report_passes_with_a_summary_check():
    result = evaluate(INCIDENT, GateSpec(), copy.deepcopy(INCIDENT))
    assert result.passed and not result.improvements
    assert any(c.kind == "baseline" and "9 cells compared" in c.message for c in result.checks)


def test_ladder_cells_are_matched_by_size_real_messages_by_type_and_index():
    before = report(cell(SYNC, label="ladder", message_bytes=1_000), cell("x", label="replay", index=3, message_bytes=10))
    now = report(cell(SYNC, label="ladder", message_bytes=2_000, delivered=False, cause="oversize-close"),
                 cell("x", label="replay", index=3, message_bytes=10, delivered=False, cause="oversize-close"))
    result = evaluate(now, GateSpec(), before)
    regressions = [c for c in result.failures if c.kind == "baseline"]
    assert [c.cell.type for c in regressions] == ["x"]  # the 2,000 B ladder frame is new, not a regression


def test_a_baseline_of_another_check_fails_instead_of_passing_empty():
    result = evaluate(INCIDENT, GateSpec(), report(cell(limit=42)))
    assert not result.passed and "no cell of this report matches" in result.failures[0].message
    result = evaluate(INCIDENT, GateSpec(), report(cell(limit=42)), baseline_source="baseline old.json")
    assert "matches a cell of baseline old.json (1 baseline cells)" in result.failures[0].message


def test_growth_over_budget_is_a_regression_shrink_an_improvement():
    before = report(cell(SYNC, message_bytes=1_000_000), cell("worker:register", message_bytes=400),
                    cell("worker:heartbeat", message_bytes=150))
    now = report(cell(SYNC, message_bytes=1_100_001), cell("worker:register", message_bytes=440),
                 cell("worker:heartbeat", message_bytes=100))
    result = evaluate(now, GateSpec(), before)
    growth = {c.name: c for c in result.checks if c.kind == "growth"}
    assert not growth[f"growth of {SYNC} (natural, node encoder)"].passed
    assert "+10.0%" in growth[f"growth of {SYNC} (natural, node encoder)"].message
    assert growth["growth of worker:register (natural, node encoder)"].passed  # exactly +10%: within budget
    assert [i.name for i in result.improvements] == ["worker:heartbeat (natural, node encoder) shrank"]
    assert evaluate(now, GateSpec(max_growth=0.2), before).passed
    assert DEFAULT_MAX_GROWTH == 0.10


@pytest.mark.parametrize(
    ("baseline", "why"),
    [
        ({"schema": "other"}, "not an imdiag.report/1 report"),
        ({"schema": "imdiag.report/1", "command": "replay"}, "no 'cells' list"),
        ({**report(), "cells": [{"type": "x"}]}, "cells[0].transport is missing"),
        (report(dict(cell(), limit="1MB")), "cells[0].limit"),
        ([], "not an imdiag report"),
        ({**report(cell()), "command": "probe"}, "a report of imdiag probe, not of size-sweep/replay/gate"),
        ({**report(cell()), "command": None}, "a report of command None, not of size-sweep/replay/gate"),
        (report(cell(message_bytes=0)), "cells[0].message_bytes is 0: a message is at least 1 byte"),
        (report(cell(message_bytes=-5)), "cells[0].message_bytes is -5"),
    ],
)
def test_a_malformed_baseline_is_an_input_error(baseline, why):
    with pytest.raises(InputError) as info:
        evaluate(INCIDENT, GateSpec(), baseline, baseline_source="baseline old.json")
    assert why in str(info.value) and "baseline old.json" in str(info.value)


def test_gate_section_of_the_json_report():
    result = run("worker:heartbeat=delivered", f"{SYNC}@1MB=delivered")
    section = gate_to_dict(result)
    assert section["passed"] is False and section["checks"] == 5
    assert [f["cause"] for f in section["failures"]] == ["oversize-close", "oversize-close"]
    assert section["failures"][0]["cell"]["type"] == SYNC and section["improvements"] == []


# --- the gate file ---------------------------------------------------------------------------


def test_gate_file_parses_every_key(tmp_path):
    config = parse_gate_config({
        "fixtures": ["fixtures/a.json"], "limits": ["100KB", 1000000], "transports": "websocket",
        "encoder": "python", "master": "both", "types": ["worker:heartbeat"], "sizes": [], "boundary": False,
        "namespace": "/worker", "event": "msg", "seed": 7, "timeout": 5,
        "expect": ["worker:heartbeat=delivered"], "max_fill": "80%", "baseline": "old.json", "max_growth": 0.2,
        "outputs": {"json": "out/r.json", "junit": "/abs/j.xml"},
    }, "imdiag.toml", "/repo", timeout_scale=2)
    assert config.fixtures == ("/repo/fixtures/a.json",) and config.baseline == "/repo/old.json"
    assert config.limits == (100_000, 1_000_000) and config.transports == (Transport.WEBSOCKET,)
    assert config.encoder is Encoder.PYTHON and config.masters == ("python", "node")
    assert config.sweep is not None and config.sweep.sizes == () and config.sweep.boundary is False
    assert config.sweep.timeout_s == 10 and config.sweep.seed == 7 and config.sweep.event == "msg"
    assert config.spec.max_fill == 0.8 and config.spec.max_growth == 0.2 and len(config.spec.rules) == 1
    assert config.outputs.json == "/repo/out/r.json" and config.outputs.junit == "/abs/j.xml"
    assert config.namespace == "/worker" and parse_gate_config({}, "x", ".").namespace is None


@pytest.mark.parametrize(
    ("data", "key", "why"),
    [
        ({"max-fill": 0.8}, "max-fill", "unknown key"),
        ({"limits": ["1XB"]}, "limits", "invalid size '1XB'"),
        ({"limits": []}, "limits", "empty: remove the key for the default"),
        ({"limits": ""}, "limits", "empty: remove the key for the default"),
        ({"transports": []}, "transports", "empty: remove the key for the default"),
        ({"types": []}, "types", "empty: remove the key for the default"),
        ({"transports": ["pigeon"]}, "transports", "websocket and/or polling"),
        ({"encoder": "rust"}, "encoder", "node or python"),
        ({"master": "deno"}, "master", "python, node, asgi, both (python and node) or all"),
        ({"types": ["worker:nope"]}, "types", "unknown message type"),
        ({"expect": ["worker:heartbeat=arrived"]}, "expect", "unknown verdict"),
        ({"expect": 3}, "expect", "list of strings"),
        ({"max_fill": 2}, "max_fill", "at most 1"),
        ({"timeout": 0}, "timeout", "more than 0"),
        ({"timeout": "10"}, "timeout", "seconds > 0"),
        ({"timeout": float("inf")}, "timeout", "inf: use a number of seconds more than 0"),
        ({"timeout": float("nan")}, "timeout", "more than 0"),
        ({"timeout": 1e308}, "timeout", "1e+308: at most 3600 seconds"),
        ({"sweep": "yes"}, "sweep", "true or false"),
        ({"sweep": False}, "sweep", "check nothing"),
        ({"namespace": "worker"}, "namespace", "starts with '/'"),
        ({"namespace": "/a?b"}, "namespace", "'?' starts a query"),
        ({"namespace": "/a,b"}, "namespace", "at the first ','"),
        ({"event": "connect"}, "event", "reserved Socket.IO event name"),
        ({"outputs": {"pdf": "x"}}, "outputs.pdf", "unknown key"),
        ({"outputs": {"html": ""}}, "outputs.html", "file name"),
        ({"outputs": {"junit": 1}}, "outputs.junit", "file name"),
    ],
)
def test_gate_file_errors_name_file_and_key(data, key, why):
    with pytest.raises(InputError) as info:
        parse_gate_config(data, "imdiag.toml", ".")
    assert f"imdiag.toml: key '{key}'" in str(info.value) and why in str(info.value)


@pytest.mark.parametrize("cause", ["session-unknown", "upgrade-blocked", "proxy-error"])
def test_the_path_causes_are_gate_causes(cause):
    rule = parse_rule(f"*@*:polling=dropped:{cause}")
    assert (rule.delivered, rule.cause) == (False, cause)
    live = report(cell(transport="polling", master="live", label="replay", index=0, delivered=False, cause=cause))
    assert run(f"*#replay@*:polling=dropped:{cause}", rep=live).passed
    assert not run("*#replay@*:polling=dropped:oversize-close", rep=live).passed
