"""``imdiag doctor``: run the instruments against a live master, then let the core decide.

The probe (``imdiag.runners.probe``: handshake, namespace, limit per transport, who refused,
sticky sessions, the upgrade, ``--ack``) and, beside it, one Engine.IO v3 handshake GET, closed at
once: which protocol versions answer. Nothing else is sent; the capture is only sized. The
hypotheses come from ``imdiag.core.doctor.diagnose``; nothing here prints or judges.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from imdiag.clients.engineio import HandshakeRefused, NamespaceRefused, engineio_v3_handshake
from imdiag.core.doctor import (
    DoctorResult,
    DoctorSettings,
    ProtocolTry,
    TapEvidence,
    Unprobed,
    diagnose,
)
from imdiag.core.errors import TargetError
from imdiag.runners.probe import ProbeProgress, endpoint_for, partial_result, probe


async def try_engineio_v3(settings: DoctorSettings) -> ProtocolTry:
    """Does the URL answer an Engine.IO v3 handshake (socket.io-client 2.x)? One GET, and a CLOSE if it opened."""
    endpoint = endpoint_for(settings.probe)
    async with aiohttp.ClientSession() as session:
        try:
            answer, info = await engineio_v3_handshake(endpoint, session, settings.probe.timeout_s)
        except TargetError as exc:
            return ProtocolTry(None, None, str(exc))
    return ProtocolTry(answer, info)


async def doctor(settings: DoctorSettings, tap: TapEvidence | None = None,
                 progress: ProbeProgress | None = None) -> DoctorResult:
    """Every hypothesis about the master at ``settings.probe.url``; an unreachable master is a
    result (``not-reachable`` confirmed), not an error."""
    start = time.monotonic()
    progress = progress if progress is not None else ProbeProgress()
    eio3 = asyncio.create_task(try_engineio_v3(settings))
    unprobed = None
    result = None
    try:
        result = await probe(settings.probe, progress)
    except NamespaceRefused as exc:
        unprobed = Unprobed(str(exc), exc.open_info, exc.reason)
    except HandshakeRefused as exc:
        unprobed = Unprobed(str(exc), exc.open_info)
    except TargetError as exc:
        unprobed = Unprobed(str(exc))
    finally:
        if not eio3.done() and (result is None and unprobed is None):
            eio3.cancel()  # interrupted: the probe's error (or Ctrl-C) goes on up
    return diagnose(settings, result, unprobed=unprobed, eio3=await eio3, tap=tap,
                    elapsed_s=time.monotonic() - start)


def interrupted_result(settings: DoctorSettings, tap: TapEvidence | None, progress: ProbeProgress,
                       elapsed_s: float) -> DoctorResult:
    """After Ctrl-C: the hypotheses from what the probe had measured (most stay unknown)."""
    return diagnose(settings, partial_result(settings.probe, progress), tap=tap, elapsed_s=elapsed_s,
                    interrupted=True)
