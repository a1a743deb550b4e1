"""The python master: a real python-socketio AsyncServer on aiohttp, in a process of its own.

The servers run in ``imdiag/masters/python_host.py`` (a few processes for the python masters of
a run, see ``hosts``), so the master's decoding and the worker's building and writing use both cores. What
python-socketio and aiohttp do at the limit is what this master does: its quirks are observed
and reported, never patched. The ledger holds what the handler received (type, id, canonical
digest, bytes), each connect and disconnect (with python-socketio's reason), and every error
the server logged (that is how a JSON decode error on a truncated polling body is seen).
"""

from __future__ import annotations

import sys

from imdiag.masters.child import ChildMaster, HostCommand

SERVER_NAME = "python"
HOST_MODULE = "imdiag.masters.python_host"


class PythonMaster(ChildMaster):
    """python-socketio's ``AsyncServer`` on aiohttp, ``max_http_buffer_size`` = limit."""

    server = SERVER_NAME
    # The stdlib json decodes about 4x slower than Node's JSON.parse, and one lane (10 MB,
    # websocket) is most of a default sweep's decoding: on one host, the other sat idle for the
    # last 1.5 s of a 3.2 s sweep. Split over both hosts, the sweep took 2.5 s.
    split_lanes = True

    def host_command(self) -> HostCommand:
        return HostCommand((sys.executable, "-m", HOST_MODULE, "aiohttp"), "the python master")
