"""The command line as a whole: every usage error is one line with what is allowed, exit 2."""

from __future__ import annotations

import pytest

from imdiag.cli.options import parse_auth

from ..helpers import assert_one_line_error, run_main

URL = "http://127.0.0.1:9/worker"


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["size-sweep", "--encoder", "rust"], ["invalid value for --encoder", "'rust' is not one of 'node', 'python'"]),
        (["size-sweep", "--seed", "abc"], ["invalid value for --seed", "'abc'", "integer"]),
        (["size", "--bogus", "x"], ["no such option --bogus", "imdiag size --help"]),
        (["size", "--limt", "1MB", "x"], ["no such option --limt; did you mean --limit?"]),
        (["size"], ["missing argument FILE", "JSON Lines"]),
        (["probe"], ["missing option --url", "http://host:3000/worker"]),
        (["replay", "--timing"], ["'--timing' requires an argument"]),
        (["size", "a", "b"], ["unexpected extra argument"]),
        (["fake-master", "--port", "x"], ["invalid value for --port", "'x'"]),
    ],
)
def test_typer_usage_errors_are_one_line_with_what_is_allowed(args, needles):
    code, _, stderr = run_main(*args)
    assert_one_line_error(code, stderr, 2, *needles)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["size", "x.json", "--limit", "1e999"], "at most 2,147,483,647 B: Node's ws reads maxPayload"),
        (["fake-master", "--limit", "1e999"], "at most 2,147,483,647 B"),
        (["size-sweep", "--limits", "10GB"], "invalid size '10GB': at most 2,147,483,647 B"),
        (["size-sweep", "--sizes", "10GB"], "invalid size '10GB': at most 2,147,483,648 B (2GiB)"),
        (["size-sweep", "--sizes", "1e999"], "invalid size '1e999'"),
        (["replay", "x.json", "--limit", "5GB"], "at most 2,147,483,647 B"),
        (["probe", "--url", URL, "--max-bytes", "3GB"], "at most 2,147,483,648 B"),
    ],
)
def test_sizes_past_what_servers_and_the_wire_take_are_refused(args, needle):
    code, _, stderr = run_main(*args)
    assert_one_line_error(code, stderr, 2, needle)


@pytest.mark.parametrize("command", [["probe"], ["replay", "x.json"]])
@pytest.mark.parametrize("url", ["http://[::1:3000/worker", "http://[/"])
def test_a_malformed_ipv6_url_is_a_usage_error(command, url):
    code, _, stderr = run_main(*command, "--url", url)
    assert_one_line_error(code, stderr, 2, f"invalid --url {url!r}", "Invalid IPv6 URL", "http://[::1]:3000/worker")


@pytest.mark.parametrize("command", [["probe"], ["replay", "x.json"]])
def test_credentials_in_the_url_and_an_authorization_header_conflict_in_the_options(command):
    code, _, stderr = run_main(*command, "--url", "http://u:pw@127.0.0.1:9/w", "-H", "Authorization: Bearer x")
    assert_one_line_error(code, stderr, 2, "carries credentials", "use one of them")
    assert "pw" not in stderr  # masked like every password imdiag prints


@pytest.mark.parametrize("command", [["probe"], ["replay", "x.json"]])
@pytest.mark.parametrize(
    ("header", "needles"),
    [
        ("Content-Length: 5", ["invalid --header 'Content-Length'", "set by imdiag's client per request"]),
        ("transfer-encoding: chunked", ["invalid --header 'transfer-encoding'", "per request"]),
        ("Connection: close", ["invalid --header 'Connection'", "per request"]),
        ("Upgrade: foo", ["invalid --header 'Upgrade'", "websocket upgrade"]),
        ("Sec-WebSocket-Key: abc", ["invalid --header 'Sec-WebSocket-Key'", "websocket upgrade"]),
        ("Expect: 100-continue", ["invalid --header 'Expect'", "100 Continue"]),
        ("X-A: a\x01b", ["invalid --header 'X-A'", "control characters"]),
        ("X-A: a\x7fb", ["invalid --header 'X-A'", "control characters"]),
        ("X(A): 1", ["invalid --header 'X(A): 1'", "expected 'Name: value'"]),
    ],
)
def test_a_header_that_would_break_the_transport_is_refused_in_the_options(command, header, needles):
    code, _, stderr = run_main(*command, "--url", URL, "-H", header)
    assert_one_line_error(code, stderr, 2, *needles)


@pytest.mark.parametrize(
    "command", [["size-sweep"], ["replay", "x.json"], ["probe", "--url", URL], ["size", "x.json"]],
)
def test_an_empty_event_is_refused_by_every_command(command):
    code, _, stderr = run_main(*command, "--event", "")
    assert_one_line_error(code, stderr, 2, "an event name must not be empty")


def test_auth_is_any_json_object_and_written_as_json_stringify_would():
    code, _, stderr = run_main("probe", "--url", URL, "--auth", "[" * 3000 + "]" * 3000)
    assert_one_line_error(code, stderr, 2, "invalid --auth JSON: nested too deeply")
    assert parse_auth('{"t": "a\\ud800", "n": 1e999, "big": ' + "9" * 5000 + "}") == '{"t":"a\\ud800","n":null,"big":null}'
