"""Every command-line option that more than one command takes: its typer declaration and its parser.

One rule per option, here, for every command: sizes, limits, types, transports, masters,
namespaces, events, URLs, headers, auth. Parsers raise InputError (exit 2) with the value and
what would have been accepted.
"""

from __future__ import annotations

import json
import re
from typing import Annotated
from urllib.parse import SplitResult, urlsplit

import typer

from imdiag.core.captures import parse_json
from imdiag.core.catalog import TYPE_NAMES, message_type
from imdiag.core.errors import InputError
from imdiag.core.plan import MASTER_CHOICES, MASTER_CHOICES_TEXT
from imdiag.core.units import (
    FRAME_BOUND_WHY,
    LIMIT_BOUND_WHY,
    MAX_FRAME,
    MAX_LIMIT,
    parse_limit,
    parse_size,
)
from imdiag.core.urls import redact_url
from imdiag.core.wire import (
    WIRE_TRANSPORTS,
    Encoder,
    Transport,
    encode_json,
    event_problem,
    namespace_problem,
    printable,
)
from imdiag.core.worker import ClientKind

# What bounds each size option, for --help (the parsers refuse the rest with the same reason).
LIMIT_HELP = f"at most {MAX_LIMIT:,} B: {LIMIT_BOUND_WHY}."
FRAME_HELP = f"At most {MAX_FRAME:,} B (2GiB) each: {FRAME_BOUND_WHY}."

# --- parsers -----------------------------------------------------------------------------------


def split(values: list[str] | None) -> list[str]:
    """Repeated options and comma-separated lists, as one list."""
    out: list[str] = []
    for value in values or []:
        out += [v.strip() for v in value.split(",") if v.strip()]
    return out


def split_given(values: list[str] | None, option: str) -> list[str]:
    """``split()``, refusing an option given with nothing in it (``--limits ,``, ``--transports ''``),
    which would otherwise silently mean the default."""
    items = split(values)
    if values and not items:
        raise InputError(f"invalid {option} {values[0]!r}: empty; omit {option} for the default")
    return items


def parse_sizes(values: list[str] | None, default: tuple[int, ...], *, limit: bool = False) -> tuple[int, ...]:
    items = split_given(values, "--limits" if limit else "--sizes")
    if not items:
        return default
    parse = parse_limit if limit else parse_size
    sizes = tuple(sorted({parse(v) for v in items}))
    if not limit and sizes and sizes[0] < 1:
        raise InputError("sizes must be at least 1 byte")
    return sizes


def parse_types(values: list[str] | None) -> tuple[str, ...]:
    items = split_given(values, "--types")
    if not items:
        return TYPE_NAMES
    return tuple(message_type(v).name for v in items)


def parse_transports(values: list[str] | None, client: ClientKind = ClientKind.IMDIAG) -> tuple[Transport, ...]:
    """The transports to use; a client library also has its own default (polling, then the upgrade),
    and runs all three unless told otherwise."""
    library = client is not ClientKind.IMDIAG
    default = (*WIRE_TRANSPORTS, Transport.DEFAULT) if library else WIRE_TRANSPORTS
    items = split_given(values, "--transports") or [t.value for t in default]
    out = []
    for item in items:
        try:
            out.append(Transport(item))
        except ValueError:
            names = "websocket, polling or default" if library else "websocket or polling"
            raise InputError(f"unknown transport {item!r}; use {names}") from None
    if Transport.DEFAULT in out and not library:
        raise InputError("--transports default is a client library's own choice (polling, then the websocket "
                         "upgrade): it needs --client node or python (size-sweep, replay)")
    return tuple(dict.fromkeys(out))


def parse_client(value: str) -> ClientKind:
    try:
        return ClientKind(value)
    except ValueError:
        raise InputError(f"unknown client {value!r}; use imdiag, node or python") from None


def client_encoder(client: ClientKind, encoder: Encoder | None) -> Encoder:
    """The sender's encoder: a client library's own (it encodes the messages itself)."""
    own = {ClientKind.NODE: Encoder.NODE, ClientKind.PYTHON: Encoder.PYTHON}.get(client)
    if own is None:
        return encoder or Encoder.NODE
    if encoder is not None and encoder is not own:
        raise InputError(f"--client {client.value} encodes with its own JSON encoder ({own.value}): "
                         f"drop --encoder {encoder.value}, or send its bytes with --client imdiag")
    return own


def check_csr(csr: bool, masters: tuple[str, ...]) -> bool:
    if csr and "node" not in masters:
        raise InputError("--csr turns on the Node master's connectionStateRecovery: use it with --master node or both")
    return csr


def parse_namespace(value: str) -> str:
    problem = namespace_problem(value)
    if problem:
        raise InputError(f"invalid namespace {printable(value)!r}: {problem}")
    if printable(value) != value:  # control characters, or bytes the command line could not decode
        raise InputError(f"invalid namespace {printable(value)!r}: it holds control characters or bytes that "
                         "are not UTF-8")
    return value


def parse_masters(value: str) -> tuple[str, ...]:
    if value not in MASTER_CHOICES:
        raise InputError(f"unknown master {value!r}; use {MASTER_CHOICES_TEXT}")
    return MASTER_CHOICES[value]


def parse_choice(value: str, choices: tuple[str, ...], option: str) -> str:
    if value not in choices:
        raise InputError(f"invalid {option} {value!r}; use {' or '.join(choices)}")
    return value


def _http_url(url: str, option: str, example: str) -> tuple[SplitResult, int | None]:
    """An http(s)/ws(s) URL with a host and a valid port (or none); InputError naming the option
    (a password in the URL shown as ***)."""
    shown = repr(redact_url(url))
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as exc:  # "Invalid IPv6 URL": an unclosed '['
        raise InputError(f"invalid {option} {shown}: {exc}; an IPv6 address goes in brackets, "
                         "e.g. http://[::1]:3000/worker") from None
    if parts.scheme not in ("http", "https", "ws", "wss") or not hostname:
        raise InputError(f"invalid {option} {shown}: expected {example}")
    try:
        return parts, parts.port
    except ValueError:
        raise InputError(f"invalid {option} {shown}: the port is not a number from 0 to 65535") from None


def parse_url(url: str, headers: tuple[tuple[str, str], ...] = ()) -> str:
    """A live master's URL, namespace as its path: ``http://host:3000/worker``. A password in it
    is sent as ``Authorization: Basic``, so it cannot go with an Authorization header."""
    parts, _ = _http_url(url, "--url", "http(s)://host:port[/namespace], e.g. http://127.0.0.1:3000/worker")
    shown = repr(redact_url(url))
    if parts.query or parts.fragment:
        raise InputError(f"invalid --url {shown}: no query or fragment; the namespace is the URL path")
    problem = namespace_problem(parts.path.rstrip("/") or "/")  # the path is the namespace, as sent
    if problem:
        raise InputError(f"invalid --url {shown}: the namespace {parts.path!r}: {problem}")
    if (parts.username or parts.password) and any(name.lower() == "authorization" for name, _ in headers):
        raise InputError(f"--url {shown} carries credentials (sent as Authorization: Basic) and --header "
                         "Authorization is given too: use one of them")
    return url


def parse_path(path: str) -> str:
    """The Engine.IO path: ``socket.io`` and ``/socket.io`` are ``/socket.io/``, as servers
    mount it; a path must be plain (no query, fragment or spaces)."""
    if any(c in path for c in "?#") or any(c.isspace() for c in path):
        raise InputError(f"invalid --path {path!r}: expected a plain path such as /socket.io/")
    inner = path.strip("/")
    return f"/{inner}/" if inner else "/"


# Headers the client writes itself on each request, from the body or for the upgrade (aiohttp's
# ws_connect and its POSTs): a user's value would lie about the framing or break the transport,
# and the answer would be blamed on a proxy or the server. Host is allowed: proxies route by it.
_CLIENT_HEADERS = {
    "content-length": "set by imdiag's client per request, from the body",
    "transfer-encoding": "set by imdiag's client per request, from the body",
    "connection": "set by imdiag's client per request (keep-alive, or Upgrade for websocket)",
    "keep-alive": "a hop-by-hop header managed by imdiag's client",
    "te": "a hop-by-hop header managed by imdiag's client",
    "trailer": "a hop-by-hop header managed by imdiag's client",
    "upgrade": "set by imdiag's client for the websocket upgrade",
    "expect": "makes the client wait for a 100 Continue that Engine.IO servers do not send",
}
# RFC 9110 token characters: what a header name may hold.
_HEADER_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE_BAD_RE = re.compile("[\x00-\x08\x0a-\x1f\x7f]")  # control characters but tab


def parse_headers(values: list[str] | None) -> tuple[tuple[str, str], ...]:
    """``Name: value`` pairs, in order; a repeated name is sent repeated. A name is an HTTP token,
    a value holds no control characters, and headers the client sets itself are refused."""
    out = []
    for value in values or []:
        name, sep, content = value.partition(":")
        name = name.strip()
        if not sep or not _HEADER_NAME_RE.fullmatch(name):
            raise InputError(f"invalid --header {printable(value)!r}: expected 'Name: value', "
                             "e.g. 'Authorization: Bearer ...'")
        if _HEADER_VALUE_BAD_RE.search(content):
            raise InputError(f"invalid --header {printable(name)!r}: its value holds control characters, "
                             "which HTTP does not allow")
        why = _CLIENT_HEADERS.get(name.lower())
        if why is None and name.lower().startswith("sec-websocket-"):
            why = "set by imdiag's client for the websocket upgrade"
        if why:
            raise InputError(f"invalid --header {name!r}: {why}")
        out.append((name, content.strip()))
    return tuple(out)


_JSON_KINDS = {type(None): "null", bool: "boolean", int: "number", float: "number", str: "string", list: "array"}


def parse_auth(value: str | None) -> str | None:
    """The Socket.IO auth payload: a JSON object, returned compact."""
    if value is None:
        return None
    try:
        auth = parse_json(value)
    except RecursionError:
        raise InputError("invalid --auth JSON: nested too deeply; expected an object, e.g. '{\"token\": \"...\"}'") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid --auth JSON: {exc.msg} at column {exc.colno}; expected an object, "
                         'e.g. \'{"token": "..."}\'') from None
    if not isinstance(auth, dict):
        kind = _JSON_KINDS.get(type(auth), type(auth).__name__)
        raise InputError(f"invalid --auth: a JSON {kind} is not an object; Socket.IO auth is an "
                         'object, e.g. \'{"token": "..."}\'')
    return encode_json(auth, Encoder.NODE)  # as socket.io-client writes it: a lone surrogate escaped, Infinity null


def parse_upstream(url: str) -> tuple[str, int, bool]:
    """``--upstream http(s)://host[:port]``: host, port, TLS. No path: the worker's paths pass through."""
    parts, port = _http_url(url, "--upstream", "http(s)://host:port, e.g. http://127.0.0.1:3000")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InputError(f"invalid --upstream {url!r}: no path, query or fragment; the worker's request paths "
                         "(and its namespace) pass through the tap as they are")
    tls = parts.scheme in ("https", "wss")
    assert parts.hostname is not None
    return parts.hostname, port if port is not None else (443 if tls else 80), tls


def parse_listen(text: str) -> tuple[str, int]:
    """``--listen``: ``127.0.0.1:3001``, ``0.0.0.0:3001``, ``[::1]:3001``, ``:3001`` or ``3001``."""
    value = text.strip()
    if value.startswith("["):
        host, _, port_text = value[1:].partition("]")
        port_text = port_text.removeprefix(":")
    elif ":" in value:
        host, _, port_text = value.rpartition(":")
    else:
        host, port_text = "", value
    if not port_text.isdigit() or int(port_text) > 65535:
        raise InputError(f"invalid --listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:3001 (port 0: any free port)")
    return host or "127.0.0.1", int(port_text)


def parse_event(event: str) -> str:
    problem = event_problem(event)
    if problem:
        raise InputError(f"invalid --event {printable(event)!r}: {problem}")
    return event


def parse_scales(values: list[str] | None) -> tuple[int, ...]:
    items = split(values) or ["1"]
    scales = []
    for item in items:
        try:
            scale = int(item.lower().removeprefix("x"))
        except ValueError:
            raise InputError(f"invalid scale {item!r}: use whole numbers, e.g. --scale 1,2,4,8") from None
        if not 1 <= scale <= 1000:
            raise InputError(f"invalid scale {item!r}: use 1 to 1000")
        scales.append(scale)
    return tuple(sorted(set(scales)))


# --- typer declarations shared by several commands ------------------------------------------------

TransportsOption = Annotated[
    list[str] | None,
    typer.Option("--transports", "--transport", metavar="TRANSPORTS", help="websocket, polling (default: both); "
                 "with --client node|python also default: the library's own (polling, then the upgrade), "
                 "and all three by default."),
]
ClientOption = Annotated[
    str, typer.Option(metavar="imdiag|node|python", help="The worker: imdiag's own client (exact bytes), "
                      "socket.io-client (node) or python-socketio's AsyncClient (python), with the worker's "
                      "view beside the master's.")
]
ClientEncoderOption = Annotated[
    Encoder | None, typer.Option("--encoder", help="JSON encoder of the sender: node (JSON.stringify) or python. "
                                 "Default: the client's own (node; python for --client python).")
]
CsrOption = Annotated[
    bool, typer.Option("--csr", help="The Node master with connectionStateRecovery, sending the worker one small "
                       "event per second (so that a session can be recovered).")
]
EncoderOption = Annotated[
    Encoder, typer.Option(help="JSON encoder of the sender: node (JSON.stringify) or python.")
]
MasterOption = Annotated[
    str, typer.Option(metavar="python|node|asgi|both|all", help="Which real server plays the master: python "
                      "(python-socketio on aiohttp), node (the pinned Node.js socket.io), asgi (python-socketio's "
                      "ASGIApp under uvicorn), both (python and node, side by side) or all three.")
]
EventOption = Annotated[str, typer.Option(metavar="EVENT", help="Event name the messages are emitted on.")]
TimeoutOption = Annotated[float, typer.Option(metavar="SECONDS", help="Seconds to wait for any one answer.")]
JsonOption = Annotated[str | None, typer.Option("--json", metavar="FILE", help="Write the JSON report to this file.")]
HtmlOption = Annotated[
    str | None,
    typer.Option("--html", metavar="FILE", help="Write the report as one self-contained HTML page (heatmaps, "
                 "evidence as tooltips; no script, no network) to this file."),
]
PathOption = Annotated[str, typer.Option(metavar="PATH", help="Engine.IO path (with --url); socket.io means /socket.io/.")]
HeaderOption = Annotated[
    list[str] | None,
    typer.Option("--header", "-H", metavar="'NAME: VALUE'", help="Extra HTTP header (with --url); repeatable."),
]
AuthOption = Annotated[
    str | None, typer.Option("--auth", metavar="JSON", help="Socket.IO auth payload, a JSON object (with --url).")
]
InsecureOption = Annotated[bool, typer.Option("--insecure", help="Accept self-signed TLS certificates (with --url).")]
