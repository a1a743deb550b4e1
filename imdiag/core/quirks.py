"""Each reference server's limit rules and known behaviours, as data (``servers.toml``).

Pure. These rules only *predict*; every one is checked at L-1, L and L+1 against the real
server by the integration and interop tests, and the sweep reports where the real server
does something the rule does not predict.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from imdiag.core.wire import Transport


@dataclass(frozen=True)
class LimitRule:
    server: str  # "python" or "node"
    transport: Transport
    accepts: str  # "<" or "<=": how a frame/body of n bytes compares with the limit to pass
    measured: str  # what is compared: frame payload or POST body, in bytes
    where: str  # where the rule lives in the server's code
    seen: str  # versions it was observed with
    rejection: str  # what the server does with a message over the limit
    compressed: bool = False  # the rule for permessage-deflate frames

    def predicts_delivered(self, n: int, limit: int) -> bool:
        return n < limit if self.accepts == "<" else n <= limit


def _load() -> tuple[dict[tuple[str, Transport, bool], LimitRule], dict[str, tuple[str, ...]], dict[str, dict[str, str]]]:
    data = tomllib.loads((Path(__file__).parent / "servers.toml").read_text(encoding="utf-8"))
    rules = {}
    for row in data["rule"]:
        limit_rule = LimitRule(**{**row, "transport": Transport(row["transport"])})
        rules[(limit_rule.server, limit_rule.transport, limit_rule.compressed)] = limit_rule
    behaviours = {server: tuple(lines) for server, lines in data["behaviours"].items()}
    reference = {server: {str(k): str(v) for k, v in packages.items()} for server, packages in data["reference"].items()}
    return rules, behaviours, reference


RULES, KNOWN_BEHAVIOURS, REFERENCE_VERSIONS = _load()

# Log messages with which python-socketio / python-engineio report that they received bytes
# but failed to decode or dispatch them. The reference master tags such log lines as decode
# errors; other error lines (e.g. 'Invalid session') are kept as context only.
PYTHON_DECODE_ERROR_LOGS = ("message async handler error", "post request handler error")

def rule(server: str, transport: Transport, *, compressed: bool = False) -> LimitRule:
    """The server's rule; ``compressed``: for a permessage-deflate frame (the plain rule when the
    server has no other)."""
    return RULES.get((server, transport, compressed)) or RULES[(server, transport, False)]


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
