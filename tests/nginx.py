"""Real nginx (the Debian package) in front of masters, for the tests of the path between worker
and master.

Each ``Nginx`` writes its config into a temp dir of its own (pid file, error and access logs,
body and proxy temp files all there), listens on an ephemeral loopback port, runs in the
foreground (``daemon off``) as a child of the test, and is stopped by its PID. Readiness is
awaited by connecting to the port in a bounded loop, never by a fixed sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from .helpers import TIMEOUT

START_ATTEMPTS = 3  # another process can take the free port between our check and nginx's bind


def nginx_missing() -> str | None:
    """Why the nginx tests cannot run here, or None."""
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        return "nginx not found (Debian: apt-get install nginx; `CI=true make test` installs it)"
    return None


def nginx_binary() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


@dataclass(frozen=True)
class Upstream:
    port: int
    weight: int = 1


@dataclass(frozen=True)
class ProxyConfig:
    """What the nginx in front of the masters does."""

    upstreams: tuple[Upstream, ...]
    body_limit: str | None = None  # client_max_body_size; None keeps nginx's default (1m)
    upgrade_headers: bool = True  # proxy_set_header Upgrade/Connection, proxy_http_version 1.1
    ip_hash: bool = False  # sticky by client address

    def render(self, prefix: Path, port: int) -> str:
        servers = "\n".join(f"        server 127.0.0.1:{u.port} weight={u.weight};" for u in self.upstreams)
        upgrade = (
            "            proxy_http_version 1.1;\n"
            "            proxy_set_header Upgrade $http_upgrade;\n"
            '            proxy_set_header Connection "upgrade";\n'
        ) if self.upgrade_headers else ""
        body = f"        client_max_body_size {self.body_limit};\n" if self.body_limit else ""
        return f"""
user {getpass.getuser()};
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream masters {{
{"        ip_hash;" if self.ip_hash else ""}
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
{body}        location / {{
            proxy_pass http://masters;
{upgrade}            proxy_read_timeout 120s;
        }}
    }}
}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _listening(port: int, proc: asyncio.subprocess.Process, deadline: float) -> bool:
    """Poll the port until nginx accepts (bounded by ``deadline``); False if nginx exited first."""
    for _ in range(10_000):  # bounded: each pass waits for one connect attempt
        if proc.returncode is not None or time.monotonic() > deadline:
            return False
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1.0)
        except (OSError, TimeoutError):
            await asyncio.sleep(0.02)  # sleep-ok: between two connect attempts while nginx starts
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False


class Nginx:
    """``async with Nginx(ProxyConfig(...)) as proxy:`` then point the client at ``proxy.url``."""

    def __init__(self, config: ProxyConfig):
        self.config = config
        self.dir = Path(tempfile.mkdtemp(prefix="imdiag-nginx-"))
        self.port = 0
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def error_log(self) -> str:
        path = self.dir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def start(self) -> None:
        for _ in range(START_ATTEMPTS):
            self.port = _free_port()
            conf = self.dir / "nginx.conf"
            conf.write_text(self.config.render(self.dir, self.port))
            self.proc = await asyncio.create_subprocess_exec(
                nginx_binary(), "-p", str(self.dir), "-e", str(self.dir / "error.log"), "-c", str(conf),
                "-g", "daemon off;", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
            if await _listening(self.port, self.proc, time.monotonic() + TIMEOUT):
                return
            await self.stop()
            if "Address already in use" not in self.error_log():
                break
        raise RuntimeError(f"nginx did not start: {self.error_log()[-2000:]}")

    async def stop(self) -> None:
        """Stop nginx by its PID: SIGTERM (fast shutdown, its workers follow), SIGKILL if it lingers."""
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), TIMEOUT)
        except TimeoutError:
            os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        try:
            await self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def upstreams(ports: Sequence[int], weights: Sequence[int] | None = None) -> tuple[Upstream, ...]:
    return tuple(Upstream(p, w) for p, w in zip(ports, weights or [1] * len(ports)))
