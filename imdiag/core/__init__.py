"""The pure core: wire bytes, message catalog, captures, result model, judge, gate. No I/O.

Nothing in this package imports asyncio, sockets, aiohttp or socketio (``tests/core/test_purity.py``
checks it): every rule about sizes and verdicts is testable without a network.
"""
