"""The server rules as data: what each limit counts, how it refuses, and the web server's own limit."""

from __future__ import annotations

import pytest

from imdiag.core.quirks import RULES, predicts_delivered, rule, web_server_limits
from imdiag.core.wire import LimitUnit, Transport

WS, POLLING = Transport.WEBSOCKET, Transport.POLLING


def test_every_reference_master_has_a_rule_per_transport_with_its_unit():
    assert {server for server, _, _ in RULES} == {"python", "node", "asgi"}
    assert {(s, t): r.unit for (s, t, _), r in RULES.items() if r.unit is LimitUnit.CHARACTERS} == {
        ("asgi", WS): LimitUnit.CHARACTERS}
    # Only a refusal that is not a 1009 needs the rule to be a size signal.
    assert [key for key, r in RULES.items() if r.size_close() is not None] == [("asgi", WS, False)]
    size_close = rule("asgi", WS).size_close()
    assert size_close is not None and (size_close.code, size_close.refuser) == (1000, "python-engineio under ASGI")


@pytest.mark.parametrize("server, transport, n_bytes, n_chars, limit, delivered", [
    ("python", WS, 999, 999, 1_000, True), ("python", WS, 1_000, 1_000, 1_000, False),  # aiohttp: < limit
    ("node", WS, 1_000, 1_000, 1_000, True), ("node", WS, 1_001, 400, 1_000, False),  # bytes, <= limit
    ("asgi", WS, 29_900, 9_994, 10_000, True), ("asgi", WS, 30_100, 10_062, 10_000, False),  # characters
    ("asgi", POLLING, 10_001, 3_367, 10_000, False),  # polling counts bytes
    # uvicorn's ws_max_size (16 MiB) applies whatever max_http_buffer_size, in bytes
    ("asgi", WS, 16_777_216, 5_592_406, 20_000_000, True), ("asgi", WS, 16_777_217, 5_592_406, 20_000_000, False),
])
def test_predictions_use_each_servers_unit_and_its_web_servers_limit(server, transport, n_bytes, n_chars, limit,
                                                                     delivered):
    assert predicts_delivered(server, transport, limit, n_bytes=n_bytes, n_chars=n_chars) is delivered


def test_uvicorns_limit_is_a_web_server_limit_of_the_asgi_master_only():
    (uvicorn,) = web_server_limits("asgi", WS)
    assert (uvicorn.web_server, uvicorn.setting, uvicorn.limit, uvicorn.unit, uvicorn.close) == (
        "uvicorn", "ws_max_size", 16 * 2**20, LimitUnit.BYTES, 1009)
    assert web_server_limits("asgi", POLLING) == () and web_server_limits("python", WS) == ()
