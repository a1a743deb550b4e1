"""The path between a client and its master: sticky sessions, a blocked upgrade, a proxy's limit.

Pure. A load balancer that spreads the requests of one polling session over several master
nodes makes the master answer "Session ID unknown" to some of them; a proxy that does not
forward the Upgrade/Connection headers blocks the websocket upgrade; a proxy's body limit
can sit below the master's maxPayload. This module turns what was seen into findings and
fixes; who refused a request is ``imdiag.core.refusal``'s to say.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from imdiag.core.judge import refusal_of
from imdiag.core.model import Cause, Cell, HttpAnswer
from imdiag.core.refusal import Refuser, http_refusal

STICKINESS_REQUESTS = 20  # small POSTs on one polling session: enough to see a 1-in-6 node share

STICKY_FIX = ("make sessions sticky on the load balancer (nginx: ip_hash or a hash on a cookie; HAProxy: "
              "balance source or a cookie; ingress-nginx and cloud load balancers: cookie/session affinity), "
              "or have the clients use websocket only (transports: ['websocket'])")
UPGRADE_FIX = ("forward the upgrade (nginx: proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; "
               "proxy_set_header Connection \"upgrade\")")


@dataclass(frozen=True)
class StickinessCheck:
    """A bounded run of small requests on one polling session: how many reached another node."""

    requests: int  # requests sent on the session
    other_node: int  # answered by a master node that does not know the session
    failed: int  # refused otherwise, or not answered
    evidence: str = ""  # the first "other node" answer: status, Server, body
    refused_by: Refuser | None = None

    @property
    def broken(self) -> bool:
        return self.other_node > 0

    @property
    def share(self) -> float:
        return self.other_node / self.requests if self.requests else 0.0

    def finding(self) -> str:
        """One line: what was seen, what it does to clients, and the fix."""
        if not self.broken:
            return (f"sticky sessions: all {self.requests} requests on one polling session reached a node that "
                    "knows it")
        return (f"sticky sessions are broken: {self.other_node} of {self.requests} requests "
                f"({self.share:.0%}) on one polling session reached a master node that does not know the session "
                f"({self.evidence}); every client on polling loses messages of any size at random and "
                f"reconnects; fix: {STICKY_FIX}")


def stickiness(answers: Sequence[HttpAnswer | None], errors: int = 0) -> StickinessCheck:
    """``answers``: one per request, None when it was taken (HTTP 200); ``errors``: requests that
    got no HTTP answer at all."""
    other = [a for a in answers if a is not None and http_refusal(a.status, a.body, a.server).session_unknown]
    failed = sum(1 for a in answers if a is not None) - len(other) + errors
    first = other[0] if other else None
    evidence, by = "", None
    if first is not None:
        refusal = http_refusal(first.status, first.body, first.server)
        evidence, by = refusal.evidence(), refusal.by
    return StickinessCheck(len(answers) + errors, len(other), failed, evidence, by)


def body_limit_setting(server: str) -> str:
    """The setting that holds a proxy's request body limit, as precisely as its Server header says."""
    name = server.lower()
    if "nginx" in name or "openresty" in name:
        return "the proxy's body limit (nginx: client_max_body_size)"
    if "envoy" in name:
        return "the proxy's body limit (Envoy: the buffer filter's max_request_bytes)"
    if "traefik" in name:
        return "the proxy's body limit (Traefik: buffering maxRequestBodyBytes)"
    return "the proxy's request body limit"


def web_server_setting(server: str) -> str:
    """The setting that holds a web server's own websocket message limit (the master's web server)."""
    if server == "uvicorn":
        return "uvicorn's ws_max_size (uvicorn --ws-max-size; 16 MiB by default)"
    if server == "websockets":
        return "the websockets library's max_size (uvicorn --ws-max-size, when uvicorn runs on it)"
    return f"{server}'s message size limit"


def path_notes_of(cells: Sequence[Cell]) -> list[str]:
    """One line per transport and cause about the path (a replay against a live master): how many
    messages met it, the first one's evidence, and the fix."""
    out = []
    for transport in sorted({c.transport for c in cells}, key=lambda t: t.value):
        lane = [c for c in cells if c.transport is transport]
        for cause in (Cause.UPGRADE_BLOCKED, Cause.SESSION_UNKNOWN, Cause.PROXY_ERROR):
            met = [c for c in lane if c.cause is cause]
            if not met:
                continue
            refusal = refusal_of(met[0].observed)
            seen = f"{refusal.evidence()}, from {refusal.who()}" if refusal is not None else met[0].evidence
            name, count = transport.value, f"{len(met)} of {len(lane)} message(s)"
            if cause is Cause.UPGRADE_BLOCKED:
                out.append(f"{name}: {count} not sent: the websocket upgrade is refused between you and the master "
                           f"- a proxy without Upgrade/Connection headers? ({seen}); clients that start on polling "
                           f"(socket.io's default) stay on polling and its limit; fix: {UPGRADE_FIX}")
            elif cause is Cause.SESSION_UNKNOWN:
                out.append(f"{name}: {count} met a master node that does not know the session ({seen}): sticky "
                           f"sessions are broken, such messages are lost whatever their size; fix: {STICKY_FIX}")
            else:
                out.append(f"{name}: {count} refused by a proxy with no size signal ({seen})")
    return out
