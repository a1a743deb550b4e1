"""imdiag: find out, with evidence, why Socket.IO messages never reach the server."""

__version__ = "0.1.0"
