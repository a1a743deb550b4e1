"""Who refused a request or closed a websocket: the master, a proxy in front of it, or unknown.

Pure. Decided from what the refusal itself carries: the status, the ``Server`` header and the
body. Engine.IO servers answer with their own bodies (engine.io: JSON ``{"code", "message"}``,
or an empty 413; python-engineio: a JSON string such as ``"Bad Request"``); proxies answer with
an HTML page, a gateway status, or name themselves in ``Server``. Websocket close frames come
from the websocket's other end: proxies pass them through.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

MASTER, PROXY, UNKNOWN = "master", "proxy", "unknown"

ENGINEIO_ERRORS = {
    0: "Transport unknown", 1: "Session ID unknown", 2: "Bad handshake method", 3: "Bad request",
    4: "Forbidden", 5: "Unsupported protocol version",
}
PROXY_NAMES = ("nginx", "openresty", "haproxy", "envoy", "apache", "traefik", "caddy", "cloudflare", "awselb",
               "squid", "varnish", "istio", "kong")
GATEWAY_STATUSES = (502, 503, 504)
_HTML_MARKS = ("<html", "<!doctype", "<body", "<h1", "<center")


@dataclass(frozen=True)
class Refuser:
    who: str  # master, proxy or unknown
    evidence: str  # the status, Server header and body excerpt it was decided from


def _excerpt(body: str) -> str:
    flat = " ".join(body.split())
    return repr(flat[:80] + ("..." if len(flat) > 80 else ""))


def _engineio_body(body: str) -> str | None:
    """The server's own error text when ``body`` is an Engine.IO server's error body."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("code"), int) and "message" in data:
        return f"engine.io error {data['code']} ({data['message']})"
    if isinstance(data, str):
        return f"python-engineio error {data!r}"
    return None


def refused_by(*, status: int | None = None, server: str = "", body: str = "",
               close_code: int | None = None) -> Refuser:
    """Who answered with this refusal: an HTTP status (with its Server header and body), or a
    websocket close code."""
    if close_code is not None:
        return Refuser(MASTER, f"close frame {close_code} from the websocket's other end (proxies pass close frames on)")
    seen = f"HTTP {status}" + (f", Server {server!r}" if server else ", no Server header") + f", body {_excerpt(body)}"
    engineio = _engineio_body(body)
    if engineio is not None:
        return Refuser(MASTER, f"{seen}: {engineio}")
    lowered = body.lower()
    if any(mark in lowered for mark in _HTML_MARKS):
        return Refuser(PROXY, f"{seen}: an HTML page, not an Engine.IO answer")
    if status == 413 and not body.strip():
        return Refuser(MASTER, f"{seen}: engine.io answers an oversize POST with an empty 413")
    named = next((name for name in PROXY_NAMES if name in server.lower()), None)
    if status in GATEWAY_STATUSES:
        return Refuser(PROXY, f"{seen}: a gateway status")
    if named is not None:
        return Refuser(PROXY, f"{seen}: the Server header names {named}")
    return Refuser(UNKNOWN, seen)
