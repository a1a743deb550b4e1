"""Write report files atomically: a reader never sees half a report, even after Ctrl-C."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from imdiag.core.errors import InputError


def check_writable(path: str | os.PathLike[str] | None, option: str) -> None:
    """Fail before anything is measured if ``path`` cannot be written later (InputError, exit 2)."""
    if not path:
        return
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise InputError(f"invalid {option} {target}: it is a directory")
    if not directory.is_dir():
        raise InputError(f"invalid {option} {target}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise InputError(f"invalid {option} {target}: directory {directory} is not writable")


def write_atomic(path: str | os.PathLike[str], content: str | bytes) -> Path:
    target = Path(path)
    data = content.encode("utf-8") if isinstance(content, str) else content
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(f"cannot write {target}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target
