"""Run a master standalone until cancelled (``imdiag fake-master``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from imdiag.core.entries import Entry
from imdiag.core.errors import TargetError
from imdiag.core.model import MasterInfo
from imdiag.masters.kinds import new_master
from imdiag.masters.ledger import Ledger
from imdiag.masters.record import Recorder


async def serve_forever(
    *, limit: int, host: str, port: int, namespace: str, path: str,
    on_entry: Callable[[Entry], None], on_ready: Callable[[MasterInfo], None],
    record: str | None = None, server: str = "python",
) -> None:
    """Serve until cancelled (Ctrl-C) or until the server dies on its own (TargetError)."""
    with contextlib.ExitStack() as stack:
        observe = on_entry
        if record is not None:
            recorder = Recorder(record)
            stack.callback(recorder.close)

            def observe(entry: Entry) -> None:
                recorder.on_entry(entry)
                on_entry(entry)

        # Streamed, not kept: the live log and the capture file are the record of a long session.
        ledger = Ledger(on_entry=observe, keep_messages=record is not None, retain=False)
        master = new_master(server, limit, namespace, host=host, port=port, path=path, ledger=ledger)
        async with master:
            on_ready(master.info)
            raise TargetError(await master.wait_died())
