"""What a size sweep and a replay measure: limits, sizes, types, masters, timing. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from imdiag.core.catalog import TYPE_NAMES, TYPES
from imdiag.core.urls import redact_url
from imdiag.core.wire import Encoder, LimitUnit, Transport
from imdiag.core.worker import ClientKind

DEFAULT_LIMITS: tuple[int, ...] = (100_000, 1_000_000, 10_000_000)  # 1e6: Socket.IO's default
DEFAULT_LADDER: tuple[int, ...] = (
    1_000, 10_000, 100_000, 250_000, 500_000, 1_000_000, 2_000_000, 5_000_000, 10_000_000, 16_000_000,
)
# Every reference master kind, in the order reports show them: python-socketio on aiohttp, the
# Node.js socket.io server, python-socketio's ASGIApp under uvicorn.
MASTER_SERVERS: tuple[str, ...] = ("python", "node", "asgi")
# What --master (and the gate file's ``master``) accepts. ``both`` is the comparison the tool was
# built on, python against the incident's Node master; ``all`` adds the ASGI master as a third column.
MASTER_CHOICES: dict[str, tuple[str, ...]] = {
    **{server: (server,) for server in MASTER_SERVERS}, "both": ("python", "node"), "all": MASTER_SERVERS,
}
MASTER_CHOICES_TEXT = "python, node, asgi, both (python and node) or all"
# Types whose payload grows with the data (lists); the others are small by nature.
GROWING_TYPES: tuple[str, ...] = tuple(t.name for t in TYPES if t.list_key is not None)


@dataclass(frozen=True)
class SweepSettings:
    limits: tuple[int, ...] = DEFAULT_LIMITS
    sizes: tuple[int, ...] = DEFAULT_LADDER
    types: tuple[str, ...] = TYPE_NAMES
    ladder_types: tuple[str, ...] = GROWING_TYPES  # types that get the ladder and boundaries
    transports: tuple[Transport, ...] = (Transport.WEBSOCKET, Transport.POLLING)
    encoder: Encoder = Encoder.NODE
    namespace: str = "/"
    event: str = "message"
    seed: int = 1
    boundary: bool = True
    timeout_s: float = 10.0
    masters: tuple[str, ...] = ("python",)  # of MASTER_SERVERS
    client: ClientKind = ClientKind.IMDIAG  # the worker: imdiag's own client or a real library
    csr: bool = False  # the node master with connectionStateRecovery (and a tick per second)

    def to_dict(self) -> dict[str, object]:
        return {
            "limits": list(self.limits),
            "sizes": list(self.sizes),
            "types": list(self.types),
            "ladder_types": list(self.ladder_types),
            "transports": [t.value for t in self.transports],
            "encoder": self.encoder.value,
            "namespace": self.namespace,
            "event": self.event,
            "seed": self.seed,
            "boundary": self.boundary,
            "timeout_s": self.timeout_s,
            "masters": list(self.masters),
            "client": self.client.value,
            "csr": self.csr,
        }


@dataclass(frozen=True)
class Planned:
    """One message to send to a master at ``limit``: natural (target None) or sized."""

    type: str
    label: str  # "natural", "ladder", "L-1", "L", "L+1"
    target: int | None
    unit: LimitUnit = LimitUnit.BYTES  # what ``target`` counts


def boundary_sizes(limit: int) -> Sequence[tuple[str, int]]:
    return [(label, n) for label, n in (("L-1", limit - 1), ("L", limit), ("L+1", limit + 1)) if n > 0]


def plan_for_limit(settings: SweepSettings, limit: int, unit: LimitUnit = LimitUnit.BYTES) -> list[Planned]:
    """Every message one master at ``limit`` receives: natural sizes, the ladder (bytes), and the
    boundary in what the master's limit counts (``unit``): L-1, L, L+1 bytes or characters."""
    planned = [Planned(t, "natural", None) for t in settings.types]
    for type_name in settings.types:
        if type_name not in settings.ladder_types:
            continue
        targets: dict[tuple[int, LimitUnit], str] = {(n, LimitUnit.BYTES): "ladder" for n in settings.sizes}
        if settings.boundary:
            targets.update({(n, unit): label for label, n in boundary_sizes(limit)})
        planned += [Planned(type_name, label, n, u) for (n, u), label in sorted(targets.items())]
    return planned


# --- replay ----------------------------------------------------------------------------------

TIMINGS = ("fast", "original")
CLIENT_BATCHES = ("split", "whole")


@dataclass(frozen=True)
class ReplaySettings:
    path: str
    limits: tuple[int, ...] = (1_000_000,)
    transports: tuple[Transport, ...] = (Transport.WEBSOCKET, Transport.POLLING)
    encoder: Encoder = Encoder.NODE
    masters: tuple[str, ...] = ("python",)
    namespace: str | None = None  # None: the capture's own (first message, meta), else "/"
    event: str = "message"  # for records without their own "event"
    timing: str = "fast"
    max_gap_s: float = 2.0
    client_batch: str = "split"
    scales: tuple[int, ...] = (1,)
    timeout_s: float = 10.0
    # a live master instead of reference masters
    url: str | None = None
    path_prefix: str = "/socket.io/"
    headers: tuple[tuple[str, str], ...] = ()
    auth_json: str | None = None
    insecure: bool = False
    ack: bool = False
    client: ClientKind = ClientKind.IMDIAG
    csr: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": self.path,
            "limits": list(self.limits),
            "transports": [t.value for t in self.transports],
            "encoder": self.encoder.value,
            "masters": list(self.masters),
            "namespace": self.namespace,
            "event": self.event,
            "timing": self.timing,
            "max_gap_s": self.max_gap_s,
            "client_batch": self.client_batch,
            "scales": list(self.scales),
            "timeout_s": self.timeout_s,
            "client": self.client.value,
            "csr": self.csr,
        }
        if self.url is not None:
            out.update(url=redact_url(self.url), path=self.path_prefix, headers=[k for k, _ in self.headers],
                       auth=self.auth_json is not None, insecure=self.insecure, ack=self.ack)
            del out["limits"], out["masters"]
        return out
