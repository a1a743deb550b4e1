"""Relays: what imdiag puts between a worker and its master (``imdiag tap``).

``server.Relay`` listens and dials the upstream; ``connection.RelayedConnection`` moves one
connection's bytes both ways, unchanged, and reports what crossed it to a ``RelayObserver``
(``imdiag.core.tap.Tracker``).
"""
