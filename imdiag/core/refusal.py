"""Who refused a request or a frame on the path between a client and a Socket.IO master.

Pure: one function per kind of answer, from what the client saw (HTTP status, ``Server``
header, body; or a websocket close), and nothing else. The master is known by its own
answers: engine.io's error bodies (``{"code":1,"message":"Session ID unknown"}``), engine.io's
empty HTTP 413, python-engineio's JSON strings (``"Invalid session ..."``, ``"Bad Request"``).
A proxy is known by its own pages (an HTML or other non-Engine.IO body), by a gateway status
(502, 504), or by a ``Server`` header that names one (nginx, HAProxy, Envoy...) on an answer
that is not the master's. The web server a master runs in is known by the reason of its own
close (uvicorn's "Message exceeds the maximum size (N bytes)"): a limit of the server process,
before the master sees the message. What none of that decides stays ``unknown``.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass

from imdiag.core.wire import LimitUnit

BODY_EXCERPT = 80  # characters of a body kept as evidence

# engine.io's ``Server.errorMessages`` (engine.io 6.x, lib/server.ts): the body of its 400/403 answers.
ENGINEIO_ERRORS = {
    0: "Transport unknown",
    1: "Session ID unknown",
    2: "Bad handshake method",
    3: "Bad request",
    4: "Forbidden",
    5: "Unsupported protocol version",
}
ENGINEIO_SESSION_UNKNOWN = 1
ENGINEIO_BAD_REQUEST = 3

# python-engineio's answers (base_server._bad_request / _unauthorized: a JSON-encoded string;
# _method_not_found: plain text), by the start of their message.
PYTHON_ENGINEIO_MESSAGES = (
    "Invalid session",  # the session is not on this server
    "Bad Request",  # the generic answer, also to a POST over max_http_buffer_size
    "Invalid websocket upgrade",  # a websocket handshake without its Upgrade header
    "Invalid transport",
    "Not connected",
    "Unexpected HTTP request",
    "Invalid JSONP index number",
    "The client is using an unsupported version",
    "Unauthorized",
    "Method Not Found",
)
PYTHON_SESSION_UNKNOWN = "Invalid session"
PYTHON_BAD_UPGRADE = "Invalid websocket upgrade"
PYTHON_GENERIC = "Bad Request"

GATEWAY_STATUSES = frozenset({502, 504})  # a gateway could not get an answer from the master
# Server header values of proxies, load balancers and CDNs (lower case, matched as words).
PROXY_SERVERS = (
    "nginx", "openresty", "haproxy", "envoy", "istio-envoy", "traefik", "caddy", "apache", "httpd",
    "varnish", "squid", "cloudflare", "awselb", "elb", "google frontend", "gfe", "akamaighost", "kong",
    "microsoft-azure-application-gateway", "azure", "iis", "litespeed", "tengine", "h2o",
)
_PROXY_SERVER_RE = re.compile(r"\b(" + "|".join(re.escape(s) for s in PROXY_SERVERS) + r")\b", re.IGNORECASE)
_TITLE_RE = re.compile(r"<title>\s*(.*?)\s*</title>", re.IGNORECASE | re.DOTALL)

WS_MESSAGE_TOO_BIG = 1009
# The close reasons with which web servers refuse a websocket message over their own limit,
# whatever the Socket.IO master's: uvicorn's wsproto protocol (its ws_max_size, 16 MiB by
# default) and the websockets library's PayloadTooBig (uvicorn[standard] runs on it).
WEB_SERVER_CLOSE_REASONS = (
    ("uvicorn", re.compile(r"Message exceeds the maximum size \((\d+) bytes\)")),
    ("websockets", re.compile(r"frame (?:with \d+ bytes )?(?:after reading \d+ bytes )?exceeds limit of (\d+) bytes")),
)


class Refuser(str, enum.Enum):
    """Who refused: the Socket.IO master itself, something between (a proxy), or not known."""

    MASTER = "master"
    PROXY = "proxy"
    # The web server the master runs in (uvicorn): its own limit, enforced before the master sees
    # the message, in the same process.
    WEB_SERVER = "web-server"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SizeClose:
    """A websocket close other than 1009 that is a server's size refusal, and why that is known.

    python-engineio under ASGI refuses a message over its limit with a normal close (1000). Such a
    close is a size signal only where it is established, and the edge that knows says so: the
    server rules of a master imdiag started (``servers.toml``), or the probe, once a live master's
    boundary reproduced (maxPayload accepted, maxPayload + 1 closed, twice). It then counts as a
    refusal of a frame over the advertised maxPayload (in ``unit``), and of nothing else.
    """

    code: int  # the close code, 1000
    unit: LimitUnit  # what the limit counts: a frame is over maxPayload in this unit
    refuser: str  # who refuses so: "python-engineio under ASGI"
    evidence: str = ""  # how it was established, when it was measured ("reproduced at the boundary ...")

    def size(self, frame_bytes: int, frame_chars: int | None) -> int | None:
        """The frame's size in this unit (None: its characters are not known)."""
        return frame_bytes if self.unit is LimitUnit.BYTES else frame_chars

    def refuses(self, code: int | None, frame_bytes: int, frame_chars: int | None, advertised: int | None) -> bool:
        """A close with ``code`` after this frame is the size refusal: the code, over maxPayload."""
        size = self.size(frame_bytes, frame_chars)
        return code == self.code and size is not None and advertised is not None and size > advertised


@dataclass(frozen=True)
class Refusal:
    """One refusal: who refused, what they said, and the evidence it was told from."""

    by: Refuser
    how: str  # why that refuser: "an Engine.IO error body", "an HTML page", "Server: nginx/1.22.1"...
    status: int | None = None  # HTTP status
    close_code: int | None = None  # websocket close code
    server: str = ""  # the Server header
    body: str = ""  # the first BODY_EXCERPT characters of the body (or the close reason)
    engineio_code: int | None = None  # engine.io's error code, when its body said one
    message: str = ""  # what the refuser said: engine.io's message, python-engineio's, a page title

    @property
    def session_unknown(self) -> bool:
        """The master answering does not know the session: the request reached another node (or
        the session expired)."""
        return self.engineio_code == ENGINEIO_SESSION_UNKNOWN or (
            self.by is Refuser.MASTER and self.message.startswith(PYTHON_SESSION_UNKNOWN)
        )

    @property
    def bad_upgrade(self) -> bool:
        """The master refused a websocket handshake as a plain HTTP request: no Upgrade header reached it."""
        return self.engineio_code == ENGINEIO_BAD_REQUEST or (
            self.by is Refuser.MASTER and self.message.startswith(PYTHON_BAD_UPGRADE)
        )

    @property
    def generic(self) -> bool:
        """An answer that names no reason (python-engineio's "Bad Request", an empty body): a size
        refusal when the request was over the advertised maxPayload."""
        return (self.by is Refuser.MASTER and self.message == PYTHON_GENERIC) or (
            self.by is Refuser.UNKNOWN and not self.body
        )

    def evidence(self) -> str:
        """``HTTP 413, Server nginx/1.22.1, body '<html> <head><title>413 ...'``."""
        parts = [f"HTTP {self.status}" if self.status is not None else f"close {self.close_code}"]
        if self.server:
            parts.append(f"Server {self.server}")
        parts.append(f"body {self.body!r}" if self.body else "empty body")
        return ", ".join(parts)

    def party(self) -> str:
        """``the master``, ``a proxy (nginx/1.22.1)``, ``the master's web server (uvicorn)``, ``an unknown party``."""
        if self.by is Refuser.PROXY:
            return f"a proxy ({self.server})" if self.server else "a proxy"
        if self.by is Refuser.WEB_SERVER:
            return f"the master's web server ({self.server})"
        return "the master" if self.by is Refuser.MASTER else "an unknown party"

    def who(self) -> str:
        """``the master (HTTP 400 'Session ID unknown', via nginx/1.22.1)``, ``a proxy (nginx/1.22.1, HTTP 413)``."""
        what = f"HTTP {self.status}" if self.status is not None else f"close {self.close_code}"
        if self.by is Refuser.PROXY:
            return f"a proxy ({self.server + ', ' if self.server else ''}{what})"
        if self.by is Refuser.WEB_SERVER:
            return f"the master's web server ({self.server}, {what} {self.body!r})"
        if self.by is Refuser.MASTER:
            said = f" {self.message!r}" if self.message else ""
            via = f", via {self.server}" if _proxy_server(self.server) else ""
            return f"the master ({what}{said}{via})"
        return f"an unknown party ({what}: {self.how})"


def excerpt(body: str, limit: int = BODY_EXCERPT) -> str:
    """The first ``limit`` characters of a body, whitespace runs folded to one space."""
    return " ".join(body.split())[:limit]


def _engineio_error(body: str) -> tuple[int, str] | None:
    """engine.io's ``{"code": N, "message": "..."}``."""
    text = body.strip()
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # a body nested past python's parser is no such answer
        return None
    if isinstance(data, dict) and isinstance(data.get("code"), int) and isinstance(data.get("message"), str) \
            and data["code"] in ENGINEIO_ERRORS:
        return data["code"], data["message"]
    return None


def _python_engineio_message(body: str) -> str | None:
    """python-engineio's answer: a JSON string (or plain text) that starts with one of its messages."""
    text = body.strip()
    if text.startswith('"'):
        try:
            decoded = json.loads(text)
        except (ValueError, RecursionError):
            return None
        text = decoded if isinstance(decoded, str) else ""
    if any(text.startswith(m) for m in PYTHON_ENGINEIO_MESSAGES):
        return text
    return None


def _proxy_server(server: str) -> bool:
    return bool(_PROXY_SERVER_RE.search(server))


def _html(body: str) -> bool:
    head = body.lstrip()[:200].lower()
    return head.startswith("<") and ("<html" in head or "<!doctype" in head or "<head" in head or "<body" in head)


def http_refusal(status: int, body: str, server: str = "") -> Refusal:
    """Who answered an HTTP request with ``status`` (not 200/101), from the answer alone."""

    def refused(by: Refuser, how: str, code: int | None = None, message: str = "") -> Refusal:
        return Refusal(by, how, status=status, server=server, body=excerpt(body), engineio_code=code, message=message)

    via = f", passed on by {server}" if _proxy_server(server) else ""
    found = _engineio_error(body)
    if found is not None:
        code, message = found
        return refused(Refuser.MASTER, f"engine.io's error body, code {code}{via}", code, message)
    python = _python_engineio_message(body)
    if python is not None:
        return refused(Refuser.MASTER, "python-engineio's answer", message=python)
    if status == 413 and not body.strip():
        # engine.io answers a POST over maxHttpBufferSize with an empty 413; a proxy's 413 is its page.
        return refused(Refuser.MASTER, f"engine.io's empty 413{via}")
    if status in GATEWAY_STATUSES:
        return refused(Refuser.PROXY, f"HTTP {status} from a gateway", message=_title(body))
    if _html(body):
        return refused(Refuser.PROXY, "an HTML page, not an Engine.IO answer", message=_title(body))
    if _proxy_server(server):
        return refused(Refuser.PROXY, f"Server: {server}, not an Engine.IO answer")
    if body.strip():
        return refused(Refuser.PROXY, "a body that is not an Engine.IO answer")
    return refused(Refuser.UNKNOWN, "an empty answer that names no server")


def web_server_limit(reason: str) -> tuple[str, int] | None:
    """The web server and its limit named by a close reason (``("uvicorn", 16777216)``), if one is."""
    for name, pattern in WEB_SERVER_CLOSE_REASONS:
        found = pattern.fullmatch(reason.strip())
        if found:
            return name, int(found.group(1))
    return None


def close_refusal(code: int, reason: str, frame_bytes: int, advertised_max_payload: int | None, *,
                  frame_chars: int | None = None, size_close: SizeClose | None = None) -> Refusal:
    """Who closed a websocket with ``code`` after a frame of ``frame_bytes`` (``frame_chars``).

    A close frame names no server, but its reason may: a web server's own limit (uvicorn). A 1009
    for a frame at or over the master's own advertised maxPayload is the master keeping its word
    (python-socketio refuses a frame of exactly it); below it, something between may have a smaller
    frame limit. Another code is the master's refusal only where ``size_close`` establishes it.
    """
    web = web_server_limit(reason) if code == WS_MESSAGE_TOO_BIG else None
    if web is not None:
        name, limit = web
        how = f"close {code} with {name}'s own reason: its limit of {limit:,} bytes, before the master"
        return Refusal(Refuser.WEB_SERVER, how, close_code=code, server=name, body=excerpt(reason))
    if code == WS_MESSAGE_TOO_BIG and advertised_max_payload is not None and frame_bytes >= advertised_max_payload:
        how = f"close {code} for a frame at or over its maxPayload {advertised_max_payload:,} B"
        return Refusal(Refuser.MASTER, how, close_code=code, body=excerpt(reason))
    if size_close is not None and size_close.refuses(code, frame_bytes, frame_chars, advertised_max_payload):
        assert advertised_max_payload is not None
        how = (f"close {code} for a frame over its maxPayload {advertised_max_payload:,} {size_close.unit.value}: "
               f"{size_close.refuser}")
        return Refusal(Refuser.MASTER, how, close_code=code, body=excerpt(reason))
    return Refusal(Refuser.UNKNOWN, f"close {code}: a close frame names no server", close_code=code,
                   body=excerpt(reason))


def _title(body: str) -> str:
    found = _TITLE_RE.search(body[:2000])
    return " ".join(found.group(1).split()) if found else ""
