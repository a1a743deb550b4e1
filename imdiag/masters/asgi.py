"""The ASGI master: python-socketio's ``ASGIApp`` under uvicorn, in a process of its own.

The way many Python users run a Socket.IO master (FastAPI's way): the same ``AsyncServer`` as
``PythonMaster``, served by uvicorn instead of aiohttp, in the python host
(``imdiag/masters/python_host.py uvicorn``). Its limits differ from the aiohttp master's, and
are observed, never patched: python-engineio compares a websocket message's ``len()`` (characters,
not bytes) with ``max_http_buffer_size`` and closes with 1000 (Normal Closure); uvicorn refuses a
message over its own ``ws_max_size`` (16 MiB) with 1009 before python-engineio sees it.
"""

from __future__ import annotations

import sys

from imdiag.masters.child import ChildMaster, HostCommand
from imdiag.masters.python import HOST_MODULE

SERVER_NAME = "asgi"


class AsgiMaster(ChildMaster):
    """python-socketio's ``ASGIApp`` under uvicorn, ``max_http_buffer_size`` = limit."""

    server = SERVER_NAME
    split_lanes = True  # python-socketio decodes with the stdlib json, as ``PythonMaster``

    def host_command(self) -> HostCommand:
        return HostCommand((sys.executable, "-m", HOST_MODULE, "uvicorn"), "the asgi master")
