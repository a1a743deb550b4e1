"""The core is pure: importing it must not pull in any I/O library."""

import subprocess
import sys

CORE = ["imdiag.wire", "imdiag.catalog", "imdiag.model", "imdiag.units", "imdiag.plan", "imdiag.quirks",
        "imdiag.render.json_report", "imdiag.errors", "imdiag.search",
        "imdiag.gate", "imdiag.render.junit", "imdiag.render.markdown",
        "imdiag.fixtures", "imdiag.sizing",
        "imdiag.probe.frames", "imdiag.probe.result", "imdiag.probe.verdicts", "imdiag.render.probe"]
IO_MODULES = ["asyncio", "aiohttp", "socketio", "engineio", "socket"]


def test_core_imports_no_io():
    code = (
        "import sys\n"
        f"for m in {CORE!r}: __import__(m)\n"
        f"print(','.join(m for m in {IO_MODULES!r} if m in sys.modules))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""
