"""Run a reference master standalone until cancelled (``imdiag fake-master``)."""

from __future__ import annotations

from collections.abc import Callable

from imdiag.errors import TargetError
from imdiag.fake_master.ledger import Entry, Ledger
from imdiag.fake_master.server import MasterInfo, new_master


async def serve_forever(
    *, limit: int, host: str, port: int, namespace: str, path: str,
    on_entry: Callable[[Entry], None], on_ready: Callable[[MasterInfo], None],
    record: str | None = None, server: str = "python",
) -> None:
    recorder = None
    observe = on_entry
    if record is not None:
        from imdiag.fake_master.record import Recorder

        recorder = Recorder(record)

        def observe(entry: Entry) -> None:
            recorder.on_entry(entry)
            on_entry(entry)

    # Streamed, not kept: the live log and the capture file are the record of a long session.
    ledger = Ledger(on_entry=observe, keep_messages=recorder is not None, retain=False)
    master = new_master(server, limit, namespace, host=host, port=port, path=path, ledger=ledger)
    try:
        async with master:
            on_ready(master.info)
            # Until Ctrl-C cancels us, or the server dies on its own (the Node process can).
            raise TargetError(await master.wait_died())
    finally:
        if recorder is not None:
            recorder.close()
