"""Run the real ``imdiag`` CLI in a subprocess from an async test, never outliving the test."""

from __future__ import annotations

import asyncio
import os
import sys


async def run_imdiag(*args: str, timeout: float) -> tuple[int, str, str]:
    """``python -m imdiag ARGS`` with NO_COLOR; returns (exit code, stdout, stderr)."""
    env = {**os.environ, "NO_COLOR": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "imdiag", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, stdout.decode(), stderr.decode()
