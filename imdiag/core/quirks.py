"""Each reference server's limit rules and known behaviours, as data (``servers.toml``).

Pure. These rules only *predict*; every one is checked at L-1, L and L+1 against the real
server by the integration and interop tests, and the sweep reports where the real server
does something the rule does not predict. A rule says what it counts (``LimitUnit``: bytes or
characters), how a refusal shows (the close code), and, for the web server a master runs in, a
limit of its own that applies whatever the master's (uvicorn's ``ws_max_size``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from imdiag.core.refusal import WS_MESSAGE_TOO_BIG, SizeClose
from imdiag.core.wire import LimitUnit, Transport


def _passes(accepts: str, n: int, limit: int) -> bool:
    """How a size compares with a limit to pass: ``"<"`` (under it) or ``"<="`` (up to it)."""
    return n < limit if accepts == "<" else n <= limit


@dataclass(frozen=True)
class LimitRule:
    server: str  # "python", "node" or "asgi"
    transport: Transport
    accepts: str  # "<" or "<=": how a frame/body of size n compares with the limit to pass
    unit: LimitUnit  # what n counts: UTF-8 bytes or characters (code points)
    measured: str  # what is compared: frame payload or POST body
    where: str  # where the rule lives in the server's code
    seen: str  # versions it was observed with
    rejection: str  # what the server does with a message over the limit
    close: int | None = None  # websocket: the close code of the refusal
    refuser: str = ""  # who refuses with that close, when it is not a 1009 ("python-engineio under ASGI")
    compressed: bool = False  # the rule for permessage-deflate frames

    def predicts_delivered(self, n: int, limit: int) -> bool:
        """Whether a frame/body of size ``n`` (in this rule's unit) passes a limit of ``limit``."""
        return _passes(self.accepts, n, limit)

    def size_close(self) -> SizeClose | None:
        """How this server's refusal shows when it is a close that is no size signal by itself
        (1000 under ASGI): for the observations of a master imdiag started with this rule."""
        if self.close is None or self.close == WS_MESSAGE_TOO_BIG:
            return None
        return SizeClose(self.close, self.unit, self.refuser or self.server)


@dataclass(frozen=True)
class WebServerLimit:
    """A limit of the web server a master runs in, enforced before the master sees a message."""

    server: str  # the master kind that runs in it ("asgi")
    transport: Transport
    web_server: str  # "uvicorn"
    setting: str  # its setting, "ws_max_size"
    limit: int  # its default, which the reference master keeps
    accepts: str
    unit: LimitUnit
    close: int | None
    measured: str
    where: str
    seen: str
    rejection: str

    def predicts_delivered(self, n: int) -> bool:
        return _passes(self.accepts, n, self.limit)


def _unit(row: dict[str, object]) -> dict[str, object]:
    return {**row, "transport": Transport(str(row["transport"])), "unit": LimitUnit(str(row["unit"]))}


def _load() -> tuple[dict[tuple[str, Transport, bool], LimitRule],
                     dict[tuple[str, Transport], tuple[WebServerLimit, ...]], dict[str, tuple[str, ...]],
                     dict[str, dict[str, str]]]:
    data = tomllib.loads((Path(__file__).parent / "servers.toml").read_text(encoding="utf-8"))
    rules = {}
    for row in data["rule"]:
        limit_rule = LimitRule(**_unit(row))  # type: ignore[arg-type]
        rules[(limit_rule.server, limit_rule.transport, limit_rule.compressed)] = limit_rule
    web: dict[tuple[str, Transport], tuple[WebServerLimit, ...]] = {}
    for row in data.get("web_server_limit", []):
        limit = WebServerLimit(**_unit(row))  # type: ignore[arg-type]
        web[(limit.server, limit.transport)] = (*web.get((limit.server, limit.transport), ()), limit)
    behaviours = {server: tuple(lines) for server, lines in data["behaviours"].items()}
    reference = {server: {str(k): str(v) for k, v in packages.items()} for server, packages in data["reference"].items()}
    return rules, web, behaviours, reference


RULES, WEB_SERVER_LIMITS, KNOWN_BEHAVIOURS, REFERENCE_VERSIONS = _load()

# Log messages with which python-socketio / python-engineio report that they received bytes
# but failed to decode or dispatch them. The reference master tags such log lines as decode
# errors; other error lines (e.g. 'Invalid session') are kept as context only.
PYTHON_DECODE_ERROR_LOGS = ("message async handler error", "post request handler error")

# The causes engine.io (Node) gives for a session it ends with "transport error" because of its
# limit (the description of its disconnect): a POST body over maxHttpBufferSize
# (transports/polling.js, onDataRequest: 413, then onError("payload too large")), a websocket
# frame over it (ws' receiver: RangeError). The master's own word that it refused for size, even
# when the client never read the 413 (the connection reset under the body still being written).
NODE_SIZE_DISCONNECT_CAUSES = ("payload too large", "RangeError: Max payload size exceeded")


def rule(server: str, transport: Transport, *, compressed: bool = False) -> LimitRule:
    """The server's rule; ``compressed``: for a permessage-deflate frame (the plain rule when the
    server has no other)."""
    return RULES.get((server, transport, compressed)) or RULES[(server, transport, False)]


def wire_rule(server: str, transport: Transport) -> LimitRule | None:
    """The server's rule for a wire transport; None for a client library's default transport
    (polling, then the upgrade: not one transport)."""
    return RULES.get((server, transport, False))


def limit_unit(server: str, transport: Transport) -> LimitUnit:
    """What the master's limit counts on this transport; a client library's default transport is
    planned in bytes."""
    plain = wire_rule(server, transport)
    return plain.unit if plain is not None else LimitUnit.BYTES


def web_server_limits(server: str, transport: Transport) -> tuple[WebServerLimit, ...]:
    return WEB_SERVER_LIMITS.get((server, transport), ())


def in_unit(unit: LimitUnit, n_bytes: int, n_chars: int | None) -> int:
    """A size in what a limit of ``unit`` counts (characters unknown: the bytes, an upper bound)."""
    return n_chars if unit is LimitUnit.CHARACTERS and n_chars is not None else n_bytes


def predicts_delivered(server: str, transport: Transport, limit: int, *, n_bytes: int, n_chars: int | None,
                       compressed: bool = False) -> bool:
    """The wire model's prediction for a frame (or POST body) of ``n_bytes`` bytes and ``n_chars``
    characters at a master's ``limit``: its own rule, in its unit, and every limit of the web server
    it runs in. ``compressed``: a permessage-deflate frame (sized inflated, as servers check it)."""
    master_rule = rule(server, transport, compressed=compressed)
    if not master_rule.predicts_delivered(in_unit(master_rule.unit, n_bytes, n_chars), limit):
        return False
    return all(web.predicts_delivered(in_unit(web.unit, n_bytes, n_chars))
               for web in web_server_limits(server, transport))


def unit_notes(server: str) -> list[str]:
    """What differs from a plain byte limit on this server: a transport that counts characters, a
    web server's own limit (``websocket counts characters (closed with 1000)``)."""
    out = []
    for (name, transport, compressed), limit_rule in RULES.items():
        if name == server and not compressed and limit_rule.unit is LimitUnit.CHARACTERS:
            closed = f", closed with {limit_rule.close}" if limit_rule.close is not None else ""
            out.append(f"{transport.value} counts characters{closed}")
    for (name, transport), limits in WEB_SERVER_LIMITS.items():
        if name == server:
            out += [f"{w.web_server}'s {w.setting} {w.limit:,} B on {transport.value}" for w in limits]
    return out


def version_drift(versions_by_server: Iterable[tuple[str, Mapping[str, str]]],
                  reference: Mapping[str, Mapping[str, str]] | None = None) -> str | None:
    """One line when a master ran other versions than the README's figures came from, else None.

    ``versions_by_server``: (server, versions) of each master that ran (``MasterInfo``).
    """
    expected = REFERENCE_VERSIONS if reference is None else reference
    differ: dict[str, dict[str, str]] = {}
    for server, versions in versions_by_server:
        for package, pinned in expected.get(server, {}).items():
            ran = versions.get(package)
            if ran is not None and ran != pinned:
                differ.setdefault(server, {})[package] = f"{package} {ran} (README: {pinned})"
    if not differ:
        return None
    parts = [f"the {server} master ran {', '.join(d.values())}" for server, d in differ.items()]
    return (f"note: {'; '.join(parts)}: results may differ from the README's figures "
            "(the versions they came from are pinned in constraints.txt and imdiag/node/package-lock.json)")
