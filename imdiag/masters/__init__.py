"""The masters imdiag starts: real Socket.IO servers on loopback, each with a ledger.

``imdiag.masters.kinds`` makes them (``new_master("python" | "node" | "asgi", limit)``) and starts
several at once (``started``). This package imports nothing itself: the python master's host
process (``python -m imdiag.masters.python_host``) loads only what it serves with.
"""
