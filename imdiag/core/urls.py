"""URLs as imdiag shows them: a password in the URL is masked, like headers and --auth. Pure."""

from __future__ import annotations

import re

MASK = "***"
# scheme://user:password@ - matched as text, so a URL too malformed to parse is masked too.
_PASSWORD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#@:]*):[^/?#]*@")


def redact_url(url: str) -> str:
    """``http://user:secret@host/ns`` -> ``http://user:***@host/ns``; other URLs unchanged."""
    return _PASSWORD_RE.sub(lambda m: f"{m.group(1)}:{MASK}@", url, count=1)
