import os

import aiohttp
import pytest

# One unit for every wait in the integration tests; CI may scale it (IMDIAG_TIMEOUT_SCALE=2).
TIMEOUT = 10.0 * float(os.environ.get("IMDIAG_TIMEOUT_SCALE", "1"))


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s
